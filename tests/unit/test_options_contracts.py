"""The jobs' option contracts (backend/options): the CLI's parser, the checks and the argv from one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.console.job_requests import ConsumerRequest, ProducerRequest, RequestError, check_consumer, check_producer
from backend.kafka.topic_names import DEFAULT_TOPIC
from backend.options import consumer
from backend.options.consumer import CONSUMER, DEFAULT_TRIGGER, LocalDefaults
from backend.options.consumer_shape import local_folder, record_shape, shape_conflict
from backend.options.contract import Contract, OptionsError
from backend.options.create_topic import CREATE_TOPIC
from backend.options.producer import DEFAULT_RATE, PRODUCER, rate_of
from backend.settings import Settings
from jobs.producer import parse_options

X = "--source x (bearer token from the X_BEARER_TOKEN environment variable)"
FILES = "files (defaults: in the state directory, TWEETSTREAM_STATE_DIR)"

# (section, flag, default, choices, required, metavar, type) as the jobs' hand-written parsers had them
# before issue 17; the two defaults made equal to the console's on purpose are marked.
PRODUCER_OPTIONS = [
    ("Kafka", "--bootstrap", None, None, False, None, None),
    ("Kafka", "--topic", "tweets", None, False, None, None),
    ("Kafka", "--create-topic", False, None, False, None, None),
    ("Kafka", "--delivery-timeout", 300.0, None, False, "S", "float"),
    ("Kafka", "--flush-timeout", 30.0, None, False, "S", "float"),
    ("what and how much", "--source", "synthetic", ("synthetic", "replay", "x"), False, None, None),
    ("what and how much", "--rate", None, None, False, None, "float"),  # was 0.0; now 100/s unless --speed
    ("what and how much", "--count", None, None, False, None, "int"),
    ("what and how much", "--duration", None, None, False, "S", "float"),
    ("--source synthetic", "--seed", None, None, False, None, "int"),
    ("--source synthetic", "--malformed-rate", 0.0, None, False, "F", "float"),
    ("--source synthetic", "--authors", 3000, None, False, None, "int"),
    ("--source replay", "--file", None, None, False, None, "Path"),
    ("--source replay", "--loop", False, None, False, None, None),
    ("--source replay", "--speed", None, None, False, "X", "float"),
    (X, "--query", None, None, False, None, None),
    (X, "--x-mode", "stream", ("stream", "search"), False, None, None),
    ("files", "--status-file", None, None, False, None, "Path"),
]
CONSUMER_OPTIONS = [
    ("Kafka", "--bootstrap", None, None, False, None, None),
    ("Kafka", "--topic", "tweets", None, False, None, None),
    ("Kafka", "--starting-offsets", "earliest", ("earliest", "latest"), False, None, None),
    ("Kafka", "--max-offsets-per-trigger", None, None, False, "N", "int"),
    ("Kafka", "--on-data-loss", "fail", ("fail", "skip"), False, None, None),
    (FILES, "--store", None, None, False, None, "Path"),
    (FILES, "--checkpoint", None, None, False, None, None),
    (FILES, "--archive", None, None, False, None, None),
    (FILES, "--status-file", None, None, False, None, "Path"),
    ("where the aggregates go", "--sink", "sqlite", ("sqlite", "delta"), False, None, None),
    ("where the aggregates go", "--table-prefix", "tweetstream_", None, False, None, None),
    ("where the aggregates go", "--delta-location", None, None, False, None, None),
    ("windows and triggers", "--window", "1 minute", None, False, None, None),
    ("windows and triggers", "--watermark", "2 minutes", None, False, None, None),
    ("windows and triggers", "--trigger", "2 seconds", None, False, None, None),  # was 5 seconds
    ("windows and triggers", "--available-now", False, None, False, None, None),
    ("windows and triggers", "--archive-every", "10 seconds", None, False, None, None),
    ("Spark", "--master", "local[*]", None, False, None, None),
]
CREATE_TOPIC_OPTIONS = [
    ("options", "--bootstrap-servers", None, None, True, None, None),
    ("options", "--topic", None, None, True, None, None),
    ("options", "--partitions", None, None, True, None, "int"),
    ("options", "--replication", None, None, True, None, "int"),
    ("options", "--retention-ms", None, None, False, None, "int"),
    ("options", "--timeout", 60.0, None, False, None, "float"),
]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    return Settings(state_dir=tmp_path, kafka_port=19092)


def cli_refusal(contract: Contract, argv: list[str], capsys: pytest.CaptureFixture[str], context: object = None) -> str:
    """What the CLI prints after ``error: `` for ``argv`` (it exits 2)."""
    with pytest.raises(SystemExit) as exit_info:
        contract.parse(argv, context)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1].split(" error: ", 1)[1]


@pytest.mark.parametrize(
    ("contract", "expected"),
    [(PRODUCER, PRODUCER_OPTIONS), (CONSUMER, CONSUMER_OPTIONS), (CREATE_TOPIC, CREATE_TOPIC_OPTIONS)],
)
def test_each_parser_has_the_options_the_jobs_had(contract: Contract, expected: list[tuple]) -> None:
    parser = contract.build_parser()
    found = [
        (
            group.title,
            a.option_strings[0],
            a.default,
            a.choices,
            a.required,
            a.metavar,
            getattr(a.type, "__name__", None),
        )
        for group in parser._action_groups
        for a in group._group_actions
        if a.dest != "help"
    ]
    assert found == expected
    assert parser.prog == contract.prog


def test_the_help_says_each_default_once_and_right() -> None:
    producer_help = " ".join(PRODUCER.build_parser().format_help().split())
    assert "events per second (default: 100; with --speed, the file's own timing); 0: as fast as possible" in (
        producer_help
    )
    consumer_help = " ".join(CONSUMER.build_parser().format_help().split())
    assert "start a micro-batch this often, e.g. 1s (default: 2 seconds)" in consumer_help
    assert "[--trigger TRIGGER | --available-now]" in consumer_help  # still excluding each other


@pytest.mark.parametrize(
    ("given", "argv"),
    [
        ({"rate": -1.0}, ["--rate", "-1"]),
        ({"count": 0}, ["--count", "0"]),
        ({"duration": -3.0}, ["--duration", "-3"]),
        ({"malformed_rate": 1.5}, ["--malformed-rate", "1.5"]),
        ({"authors": 0}, ["--authors", "0"]),
        ({"delivery_timeout": 0.0}, ["--delivery-timeout", "0"]),
        ({"delivery_timeout": 0.01}, ["--delivery-timeout", "0.01"]),
        ({"topic": "bad topic!"}, ["--topic", "bad topic!"]),
        ({"source": "replay"}, ["--source", "replay"]),
        (
            {"source": "replay", "file": Path("/nonexistent/t.jsonl")},
            ["--source", "replay", "--file", "/nonexistent/t.jsonl"],
        ),
        ({"file": Path("x.jsonl")}, ["--file", "x.jsonl"]),
        ({"source": "x"}, ["--source", "x"]),
        ({"query": "#Azure"}, ["--query", "#Azure"]),
        (
            {"seed": 3, "source": "replay", "file": Path(__file__)},
            ["--seed", "3", "--source", "replay", "--file", __file__],
        ),
        ({"source": "nope"}, ["--source", "nope"]),
        ({"rate": "fast"}, ["--rate", "fast"]),
    ],
)
def test_the_producer_refuses_in_process_with_the_clis_own_message(given, argv, settings, capsys) -> None:
    with pytest.raises(OptionsError) as refused:
        PRODUCER.validate(given, settings)
    assert str(refused.value) == cli_refusal(PRODUCER, argv, capsys, settings)


def test_speed_and_rate_exclude_each_other_but_speed_alone_keeps_the_files_timing(settings, tmp_path) -> None:
    replay = tmp_path / "t.jsonl"
    replay.write_text("{}\n")
    with pytest.raises(OptionsError, match="exclude each other"):
        PRODUCER.validate({"source": "replay", "file": replay, "speed": 2.0, "rate": 5.0}, settings)
    timed = PRODUCER.validate({"source": "replay", "file": replay, "speed": 2.0}, settings)
    assert rate_of(timed) == 0.0
    assert rate_of(PRODUCER.validate({}, settings)) == DEFAULT_RATE == 100.0


def test_the_x_source_needs_the_token_from_the_settings(settings, monkeypatch) -> None:
    with pytest.raises(OptionsError, match="X_BEARER_TOKEN"):
        PRODUCER.validate({"source": "x", "query": "#a"}, settings)
    monkeypatch.setenv("X_BEARER_TOKEN", "canary-token")
    with_token = Settings(state_dir=settings.state_dir)
    with pytest.raises(OptionsError, match="--x-mode search needs --query"):
        PRODUCER.validate({"source": "x", "x_mode": "search"}, with_token)
    assert PRODUCER.validate({"source": "x", "query": "#a"}, with_token)["query"] == "#a"


def test_argv_round_trips_through_the_cli_even_a_value_starting_with_a_dash(settings, monkeypatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", "canary-token")
    with_token = Settings(state_dir=settings.state_dir)
    given = {"source": "x", "query": "-is:retweet lang:en", "rate": 2.5, "count": 7, "create_topic": True}
    argv = PRODUCER.argv(given)
    assert argv == ["--create-topic", "--source=x", "--rate=2.5", "--count=7", "--query=-is:retweet lang:en"]
    assert PRODUCER.parse(argv, with_token) == PRODUCER.validate(given, with_token)

    odd = {"topic": "-tweets", "window": "30 seconds", "delta_location": "/data/-x", "max_offsets_per_trigger": 5}
    assert CONSUMER.parse(CONSUMER.argv(odd)) == CONSUMER.validate(odd)
    floats = {"rate": 0.1 + 0.2, "duration": 1e20, "malformed_rate": 0.05}
    assert PRODUCER.parse(PRODUCER.argv(floats), settings) == PRODUCER.validate(floats, settings)


def test_the_consumer_refuses_in_process_with_the_clis_own_message(capsys) -> None:
    cases = [
        ({"window": "2 days"}, ["--window", "2 days"], "--window must be at most 1 day (got '2 days')"),
        ({"window": "1500ms"}, ["--window", "1500ms"], "--window must be a whole number of seconds (got '1500ms')"),
        ({"window": "500ms"}, ["--window", "500ms"], "--window must be at least 1 seconds (got '500ms')"),
        ({"trigger": "soon"}, ["--trigger", "soon"], None),
        ({"topic": "a/b"}, ["--topic", "a/b"], None),
        ({"max_offsets_per_trigger": 0}, ["--max-offsets-per-trigger", "0"], None),
        ({"table_prefix": "a-b"}, ["--table-prefix", "a-b"], None),
        ({"delta_location": "it's"}, ["--delta-location", "it's"], None),
        ({"trigger": "1s", "available_now": True}, ["--trigger", "1s", "--available-now"], None),
        ({"sink": "csv"}, ["--sink", "csv"], None),
    ]
    for given, argv, message in cases:
        with pytest.raises(OptionsError) as refused:
            CONSUMER.validate(given)
        assert str(refused.value) == cli_refusal(CONSUMER, argv, capsys)
        if message is not None:
            assert str(refused.value) == message
    assert "not a duration" in _refusal(CONSUMER, {"trigger": "soon"})
    assert _refusal(CONSUMER, {"topic": "a/b"}).startswith("--topic 'a/b' is not a Kafka topic name: topic name")
    assert _refusal(CONSUMER, {"trigger": "1s", "available_now": True}) == (
        "argument --available-now: not allowed with argument --trigger"
    )
    assert CONSUMER.validate({"available_now": True})["available_now"] is True  # with the default trigger


def _refusal(contract: Contract, given: dict) -> str:
    with pytest.raises(OptionsError) as refused:
        contract.validate(given)
    return str(refused.value)


def test_the_consumers_defaults_are_resolved_from_the_settings(tmp_path) -> None:
    local = LocalDefaults(tmp_path, "127.0.0.1:9092", {"kafka.security.protocol": "SSL"})
    options = consumer.validate({}, lambda: local)
    assert options.bootstrap == "127.0.0.1:9092" and options.topic == DEFAULT_TOPIC
    assert options.store == tmp_path / "aggregates.sqlite"
    assert options.checkpoint == str(tmp_path / "consumer" / "checkpoint")
    assert options.status_file == tmp_path / "jobs" / "consumer" / "status.json"
    assert options.trigger_ms == 2000 and options.window_ms == 60_000 and options.watermark_ms == 120_000
    assert options.kafka_options == {"kafka.security.protocol": "SSL"}
    assert consumer.validate({"bootstrap": "elsewhere:9092"}, lambda: local).kafka_options == {}
    assert consumer.validate({"available_now": True}, lambda: local).available_now
    with pytest.raises(OptionsError, match="without the local settings, --bootstrap, --store"):
        consumer.validate({})


def test_create_topic_writes_and_checks_what_the_wizard_asks(capsys) -> None:
    given = {"bootstrap_servers": "10.0.0.12:9092,10.0.0.13:9092", "topic": "tweets", "partitions": 4, "replication": 3}
    argv = CREATE_TOPIC.argv(given)
    assert argv == [
        "--bootstrap-servers=10.0.0.12:9092,10.0.0.13:9092",
        "--topic=tweets",
        "--partitions=4",
        "--replication=3",
    ]
    assert CREATE_TOPIC.parse(argv) == CREATE_TOPIC.validate(given)
    for bad, cli in [
        ({**given, "bootstrap_servers": "host"}, ["--bootstrap-servers", "host"]),
        ({**given, "partitions": 0}, ["--partitions", "0"]),
        ({**given, "replication": 40000}, ["--replication", "40000"]),
        ({**given, "retention_ms": 0}, ["--retention-ms", "0"]),
        ({**given, "timeout": 0.0}, ["--timeout", "0"]),
    ]:
        rest = [a for a in argv if a.split("=")[0] != cli[0]]
        with pytest.raises(OptionsError) as refused:
            CREATE_TOPIC.validate(bad)
        assert str(refused.value) == cli_refusal(CREATE_TOPIC, [*rest, *cli], capsys)
    assert _refusal(CREATE_TOPIC, {"topic": "t"}) == (
        "the following arguments are required: --bootstrap-servers, --partitions, --replication"
    )


def test_the_consoles_requests_default_to_what_the_cli_defaults_to(settings) -> None:
    cli = parse_options([], settings)
    request = PRODUCER.validate(ProducerRequest().values(), settings)
    assert rate_of(request) == cli.rate == DEFAULT_RATE
    assert request["topic"] == cli.topic == DEFAULT_TOPIC
    assert request["source"] == cli.source and request["x_mode"] == cli.x_mode
    consumer_cli = CONSUMER.parse([])
    for name, value in ConsumerRequest().values().items():
        assert value == consumer_cli[name], name
    assert ConsumerRequest().trigger == DEFAULT_TRIGGER == "2 seconds"


def test_the_consoles_start_refuses_another_window_than_the_store_holds(settings) -> None:
    from backend.aggregates.records import BatchResult, WindowCounts
    from backend.aggregates.sqlite_store import AggregatesStore

    state = LocalDefaults(settings.state_dir, settings.bootstrap)
    first = consumer.validate({}, lambda: state)
    record_shape(first)
    assert check_consumer(ConsumerRequest(), settings)  # the same shape again
    offsets = Path(first.checkpoint) / "aggregates" / "offsets"
    offsets.mkdir(parents=True)
    (offsets / "0").write_text("v1\n")  # Spark's offsets log: batch 0 planned
    with pytest.raises(RequestError, match=re.escape("counted windows of 60 seconds")):
        check_consumer(ConsumerRequest(window="30 seconds"), settings)
    with pytest.raises(RequestError, match="reads topic 'tweets'"):
        check_consumer(ConsumerRequest(topic="tweets-v2"), settings)

    (Path(first.checkpoint) / "tweetstream-job.json").unlink()
    store = AggregatesStore(first.store)
    store.create()
    window = WindowCounts("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", 1, 0, 0, 0, 0.5)
    store.write_batch(BatchResult("q", 0, windows=[window]))
    before = first.store.read_bytes()
    thirty = consumer.validate({"window": "30 seconds"}, lambda: state)
    assert "the store " in shape_conflict(thirty) and "holds windows of 60 seconds" in shape_conflict(thirty)
    assert first.store.read_bytes() == before
    assert local_folder("dbfs:/checkpoints/tweets") is None


def test_the_consoles_start_writes_the_producers_argv(settings, tmp_path) -> None:
    replay = tmp_path / "-dash.jsonl"
    replay.write_text('{"data": {"id": "1", "text": "hi"}}\n')
    arguments = check_producer(ProducerRequest(source="replay", file=replay, speed=2.5), settings)
    assert arguments == ["--topic=tweets", "--create-topic", "--source=replay", f"--file={replay}", "--speed=2.5"]
    assert parse_options(arguments, settings).speed == 2.5
