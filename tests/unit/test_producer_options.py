import pytest

from backend.settings import Settings
from jobs.producer import kafka_producer_config, parse_options


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    return Settings(state_dir=tmp_path, kafka_port=19092)


def refused(argv, settings, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv, settings)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_defaults(settings):
    options = parse_options([], settings)
    assert options.bootstrap == "127.0.0.1:19092"
    assert options.topic == "tweets"
    assert options.source == "synthetic"
    # 100 events/s, the console's rate (the job's was 0, as fast as possible, before issue 17).
    assert options.rate == 100 and options.count is None and options.duration is None
    assert options.status_file == settings.state_dir / "jobs" / "producer" / "status.json"
    assert options.failed_file == settings.state_dir / "jobs" / "producer" / "failed.jsonl"
    assert parse_options(["--seed", "5"], settings).seed == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "-1"], "--rate must be 0 (no limit) or positive"),
        (["--count", "0"], "--count must be at least 1"),
        (["--duration", "-3"], "--duration must be positive"),
        (["--malformed-rate", "1.5"], "--malformed-rate must be between 0 and 1"),
        (["--topic", "bad topic!"], "topic"),
        (["--source", "replay"], "--source replay needs --file"),
        (["--source", "replay", "--file", "/nonexistent/tweets.jsonl"], "replay file not found"),
        (["--file", "x.jsonl"], "belong to --source replay"),
        (["--source", "x"], "X_BEARER_TOKEN"),
        (["--query", "#Azure"], "--query belongs to --source x"),
        (["--source", "nope"], "invalid choice"),
    ],
)
def test_wrong_options_are_refused_with_the_reason(argv, message, settings, capsys):
    assert message in refused(argv, settings, capsys)


def test_replay_speed_and_rate_exclude_each_other(settings, capsys, tmp_path):
    replay = tmp_path / "t.jsonl"
    replay.write_text("{}\n")
    message = refused(["--source", "replay", "--file", str(replay), "--speed", "2", "--rate", "5"], settings, capsys)
    assert "exclude each other" in message
    # Without --rate, --speed keeps the file's own timing: the default rate does not stand in its way.
    timed = parse_options(["--source", "replay", "--file", str(replay), "--speed", "2"], settings)
    assert timed.speed == 2 and timed.rate == 0


def test_x_needs_a_query_to_search(settings, capsys, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "canary-token")
    with_token = Settings(state_dir=settings.state_dir)
    assert "--x-mode search needs --query" in refused(["--source", "x", "--x-mode", "search"], with_token, capsys)
    assert parse_options(["--source", "x", "--query", "#Azure"], with_token).query == "#Azure"


@pytest.mark.parametrize("seconds", ["0.01", "0.0005"])
def test_a_delivery_timeout_librdkafka_would_refuse_or_read_as_infinite_is_refused(settings, capsys, seconds):
    message = refused(["--delivery-timeout", seconds], settings, capsys)
    assert "--delivery-timeout must be more than 0.02 s" in message
    # The smallest accepted value makes a producer librdkafka accepts, with a finite timeout.
    from confluent_kafka import Producer

    config = kafka_producer_config(parse_options(["--delivery-timeout", "0.021"], settings), settings)
    assert config["message.timeout.ms"] == 21 > config["linger.ms"]
    Producer({key: config[key] for key in ("bootstrap.servers", "linger.ms", "message.timeout.ms")})


def test_kafka_config_never_loses_nor_duplicates(settings):
    config = kafka_producer_config(parse_options(["--delivery-timeout", "12"], settings), settings)
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["message.timeout.ms"] == 12_000
    assert config["bootstrap.servers"] == "127.0.0.1:19092"


def test_a_fatal_kafka_error_ends_the_job_failed_with_exit_1(settings, capsys):
    """librdkafka's fatal errors (e.g. a fenced idempotent producer) end the run as failed, never as finished."""
    from confluent_kafka import KafkaError, Producer

    from backend.runtime.job_files import read_status
    from jobs.producer import ProducerJob

    options = parse_options(["--count", "5"], settings)
    job = ProducerJob(options, settings)
    job.producer = Producer({"bootstrap.servers": options.bootstrap})  # nothing queued: the drain is instant
    job._on_error(KafkaError(KafkaError._FATAL, "the idempotent producer was fenced", fatal=True))
    assert job.stop.is_set()

    assert job._drain(None) == 1
    status = read_status(options.status_file)
    assert status["state"] == "failed"
    assert "fatal Kafka error" in status["last_error"] and "fenced" in status["last_error"]
    assert "error: fatal Kafka error" in capsys.readouterr().err


def test_no_message_of_the_producer_shows_the_sasl_password(settings, capsys):
    from confluent_kafka import KafkaError
    from pydantic import SecretStr

    from jobs.producer import ProducerJob

    password = "pw-canary-producer-31c9"
    with_password = settings.model_copy(update={"kafka_sasl_password": SecretStr(password)})
    job = ProducerJob(parse_options(["--count", "5"], with_password), with_password)
    job._on_error(KafkaError(KafkaError._TRANSPORT, f"the broker echoed {password}"))
    assert job.counters.last_error == "broker unreachable, retrying: the broker echoed ***"
    assert job.kafka_errors.explain(job.options.bootstrap, 10) == (
        f"cannot reach Kafka at {job.options.bootstrap}: the broker echoed ***"
    )


@pytest.mark.parametrize("query", ["-is:retweet", "-is:retweet lang:en", "-x=1"])
def test_a_query_starting_with_a_dash_reaches_the_job_as_typed(settings, query):
    # Issue 19, item 7: argparse took "-is:retweet" for an option. Since issue 17 the console emits
    # --name=value for every value, so the job gets the query as typed.
    from backend.console.job_requests import ProducerRequest, check_producer

    token = Settings(state_dir=settings.state_dir, kafka_port=19092, x_bearer_token="x-token-canary")
    arguments = check_producer(ProducerRequest(source="x", query=query, x_mode="search"), token)
    assert f"--query={query}" in arguments
    assert parse_options(arguments, token).query == query
