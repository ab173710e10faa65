"""The consumer job's pure logic: options, durations, the batch result, progress offsets (no Spark, no Kafka)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from backend.aggregates.records import DeadLetter, KeyCount, WindowCounts
from backend.options.consumer import ConsumerOptions, LocalDefaults, parse_duration_ms, spark_interval
from backend.options.consumer_shape import local_folder, record_shape, shape_conflict
from backend.options.contract import OptionsError
from backend.settings import PROJECT_ROOT, Settings
from jobs.consumer.aggregation import LanguageGroup, batch_result, iso_from_ms
from jobs.consumer.kafka_source import explained, kafka_security_options
from jobs.consumer.options import build_parser, inside, validate
from jobs.consumer.progress import offsets_by_partition

STATE = Path("/var/state")
LOCAL = LocalDefaults(STATE, "127.0.0.1:9092", {"kafka.security.protocol": "PLAINTEXT"})


def options(*argv: str, defaults: LocalDefaults | None = LOCAL) -> ConsumerOptions:
    return validate(build_parser().parse_args(list(argv)), (lambda: defaults) if defaults else None)


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [
        ("1 minute", 60_000),
        ("2 minutes", 120_000),
        ("30 seconds", 30_000),
        ("1s", 1000),
        ("500ms", 500),
        ("1.5 s", 1500),
        ("1 hour", 3_600_000),
        ("0 seconds", 0),
        (" 1 Day ", 86_400_000),
    ],
)
def test_durations_are_read_with_their_unit(text: str, milliseconds: int) -> None:
    assert parse_duration_ms(text) == milliseconds


@pytest.mark.parametrize("text", ["", "1", "minute", "1 fortnight", "-1 s", "1.0001 s", "one minute"])
def test_durations_without_a_known_unit_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_spark_intervals() -> None:
    assert spark_interval(60_000) == "60 seconds"
    assert spark_interval(1500) == "1500 milliseconds"


def test_defaults_come_from_the_state_directory_and_the_settings() -> None:
    got = options()
    assert got.bootstrap == "127.0.0.1:9092"
    assert got.topic == "tweets"
    assert got.store == STATE / "aggregates.sqlite"
    assert got.checkpoint == str(STATE / "consumer" / "checkpoint")
    assert got.archive == str(STATE / "archive")
    assert got.status_file == STATE / "jobs" / "consumer" / "status.json"
    assert (got.window_ms, got.watermark_ms, got.trigger_ms, got.archive_every_ms) == (60_000, 120_000, 2000, 10_000)
    assert got.starting_offsets == "earliest"
    assert got.max_offsets_per_trigger is None
    assert got.master == "local[*]"
    assert got.kafka_options == {"kafka.security.protocol": "PLAINTEXT"}
    assert not got.available_now


def test_every_option_is_taken() -> None:
    got = options(
        *("--bootstrap", "broker:9093", "--topic", "t.1", "--store", "/s.sqlite", "--checkpoint", "dbfs:/ck"),
        *("--archive", "abfss://lake@acct.dfs.core.windows.net/raw", "--status-file", "/st.json"),
        *("--window", "30 seconds", "--watermark", "0s"),
        *("--available-now", "--starting-offsets", "latest", "--max-offsets-per-trigger", "500"),
        *("--master", "spark://h:7077", "--archive-every", "10 s"),
    )
    assert got == ConsumerOptions(
        bootstrap="broker:9093",
        topic="t.1",
        store=Path("/s.sqlite"),
        checkpoint="dbfs:/ck",
        archive="abfss://lake@acct.dfs.core.windows.net/raw",
        status_file=Path("/st.json"),
        window_ms=30_000,
        watermark_ms=0,
        trigger_ms=None,
        archive_every_ms=10_000,
        starting_offsets="latest",
        max_offsets_per_trigger=500,
        master="spark://h:7077",
    )
    assert got.available_now
    # Another cluster than the settings' one: the settings' security options do not apply.
    assert got.kafka_options == {}


def test_with_every_path_given_the_settings_are_never_read() -> None:
    def no_settings() -> LocalDefaults:
        raise AssertionError("the settings were read")

    args = build_parser().parse_args(
        ["--bootstrap", "b:1", "--store", "s", "--checkpoint", "c", "--archive", "a", "--status-file", "f"]
    )
    assert validate(args, no_settings).bootstrap == "b:1"


def test_on_a_cluster_without_settings_the_paths_are_required() -> None:
    with pytest.raises(OptionsError, match="--store"):
        options("--bootstrap", "b:1", defaults=None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window", "90"], "--window"),
        (["--window", "1500 ms"], "whole number of seconds"),
        (["--window", "2 days"], "at most 1 day"),
        (["--window", "0 s"], "at least"),
        (["--watermark", "soon"], "--watermark"),
        (["--trigger", "0 s"], "--trigger must be at least"),
        (["--max-offsets-per-trigger", "0"], "at least 1"),
        (["--topic", "no spaces"], "not a Kafka topic name"),
        (["--topic", ".."], "not a Kafka topic name"),
    ],
)
def test_wrong_options_are_refused_with_a_reason(argv: list[str], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        options(*argv)


def test_the_sink_is_sqlite_unless_delta_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert (options().sink, options().delta_location) == ("sqlite", None)
    local = options("--sink", "delta")
    assert (local.sink, local.table_prefix) == ("delta", "tweetstream_")
    assert local.delta_location == str(STATE / "delta")  # locally: folders in the state directory
    given = options("--sink", "delta", "--delta-location", "file:///lake/t", "--table-prefix", "main.ts.ts_")
    assert (given.delta_location, given.table_prefix) == ("file:///lake/t", "main.ts.ts_")
    # On a cluster without the console's settings, a local Delta sink needs its folder.
    paths = ["--bootstrap", "b:1", "--store", "s", "--checkpoint", "c", "--archive", "a", "--status-file", "f"]
    with pytest.raises(OptionsError, match="--delta-location with --sink delta"):
        validate(build_parser().parse_args(["--sink", "delta", *paths]), None)


def test_on_databricks_the_delta_tables_are_managed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "16.4")
    args = ["--sink", "delta", "--bootstrap", "b:1", "--store", "s", "--checkpoint", "dbfs:/c", "--archive", "a"]
    got = validate(build_parser().parse_args([*args, "--status-file", "f"]), None)
    assert got.delta_location is None


@pytest.mark.parametrize("prefix", ["tweet-stream_", "a.b.c.d_", "x; DROP TABLE y", "", "main..t_"])
def test_a_table_prefix_that_is_no_identifier_is_refused(prefix: str) -> None:
    with pytest.raises(OptionsError, match=r"--table-prefix .* cannot start a table name"):
        options("--sink", "delta", "--table-prefix", prefix)


def test_a_bad_table_prefix_exits_2_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.consumer",
            "--sink",
            "delta",
            "--table-prefix",
            "a-b",
            "--bootstrap",
            "127.0.0.1:1",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TWEETSTREAM_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--table-prefix 'a-b' cannot start a table name" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no status file, store, checkpoint or tables


def test_trigger_and_available_now_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--trigger", "1s", "--available-now"])


def test_help_documents_every_option_and_needs_no_spark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobs.consumer", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for option in build_parser()._option_string_actions:
        assert option in done.stdout
    for documented in ("--bootstrap", "--topic", "--store", "--checkpoint", "--archive", "--window", "--watermark"):
        assert documented in done.stdout
    for documented in ("--trigger", "--available-now", "--starting-offsets", "--max-offsets-per-trigger", "--master"):
        assert documented in done.stdout


def test_an_invalid_option_exits_2_before_spark_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobs.consumer", "--window", "soon", "--bootstrap", "127.0.0.1:1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TWEETSTREAM_STATE_DIR": str(tmp_path)},
    )
    assert done.returncode == 2
    assert "--window" in done.stderr
    assert not (tmp_path / "jobs").exists()


def test_kafka_security_options_from_the_settings() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ann",
        kafka_sasl_password=SecretStr('p"wä'),  # JAAS reads \" but no \u escapes
        kafka_ssl_ca_location=Path("/ca.pem"),
    )
    got = kafka_security_options(settings)
    assert got["kafka.security.protocol"] == "SASL_SSL"
    assert got["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert got["kafka.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="ann" password="p\\"wä";'
    )
    assert got["kafka.ssl.truststore.location"] == "/ca.pem"
    assert kafka_security_options(Settings()) == {"kafka.security.protocol": "PLAINTEXT"}


def test_query_folders_inside_a_path_or_a_uri() -> None:
    assert inside("/state/consumer/checkpoint", "aggregates") == "/state/consumer/checkpoint/aggregates"
    assert inside("abfss://c@a.dfs.core.windows.net/ck/", "archive") == "abfss://c@a.dfs.core.windows.net/ck/archive"


def test_offsets_of_a_progress_report() -> None:
    assert offsets_by_partition('{"tweets":{"1":40,"0":60}}', "tweets") == {"0": 60, "1": 40}
    assert offsets_by_partition('{"other":{"0":1}}', "tweets") == {}
    assert offsets_by_partition("None", "tweets") == {}  # a query's first batch has no start offsets
    assert offsets_by_partition(None, "tweets") == {}


def test_iso_from_ms() -> None:
    assert iso_from_ms(0) == "1970-01-01T00:00:00Z"
    assert iso_from_ms(1_795_802_400_000) == "2026-11-27T18:00:00Z"


def group(start: int, lang: str, tweets: int, sentiment: float, newest: int) -> LanguageGroup:
    return LanguageGroup(start, lang, tweets, tweets // 2, 1, 0, sentiment, newest)


def test_the_batch_result_sums_languages_into_windows_and_keeps_late_tweets_apart() -> None:
    minute = 60_000
    t0 = 1_795_802_400_000  # 2026-11-27T18:00:00Z
    result = batch_result(
        "q",
        3,
        minute,
        watermark_at_ms=t0,  # the window 17:59-18:00 is closed, 18:00-18:01 still open
        groups=[
            group(t0, "en", 4, 1.5, t0 + 10),
            group(t0, "und", 2, -0.5, t0 + 20),
            group(t0 + minute, "en", 1, 0.25, t0 + minute + 5),
            group(t0 - minute, "en", 3, 9.0, t0 - 1),
            group(t0 - minute, "ja", 1, 9.0, t0 - 2),
        ],
        hashtags=[(t0, "kafka", 3), (t0 + minute, "spark", 1), (t0 - minute, "late", 2)],
        dead_letters=[DeadLetter("tweets", 0, 7, "not JSON", "x")],
    )
    first, second = "2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z"
    assert result.windows == [
        WindowCounts(first, second, 6, 3, 2, 0, 1.0),
        WindowCounts(second, "2026-11-27T18:02:00Z", 1, 0, 1, 0, 0.25),
    ]
    assert sorted(result.languages, key=lambda k: (k.window_start, k.key)) == [
        KeyCount(first, "en", 4),
        KeyCount(first, "und", 2),
        KeyCount(second, "en", 1),
    ]
    assert result.hashtags == [KeyCount(first, "kafka", 3), KeyCount(second, "spark", 1)]
    assert result.late == [KeyCount("2026-11-27T17:59:00Z", "", 4)]
    assert result.dead_letters == [DeadLetter("tweets", 0, 7, "not JSON", "x")]
    assert result.max_event_time_ms == t0 + minute + 5
    assert (result.query_id, result.batch_id, result.watermark_ms) == ("q", 3, t0)


def test_without_a_watermark_no_window_is_closed() -> None:
    result = batch_result(
        "q", 0, 60_000, None, groups=[group(0, "en", 1, 0.0, 5)], hashtags=[(0, "a", 1)], dead_letters=[]
    )
    assert [w.tweets for w in result.windows] == [1]
    assert result.late == []
    assert result.hashtags == [KeyCount("1970-01-01T00:00:00Z", "a", 1)]


def test_an_empty_batch_adds_nothing() -> None:
    result = batch_result("q", 0, 60_000, None, groups=[], hashtags=[], dead_letters=[])
    assert (result.windows, result.languages, result.late, result.max_event_time_ms) == ([], [], [], None)


def test_local_checkpoint_folders_are_found_and_other_uris_are_left_alone():
    assert local_folder("/data/checkpoint") == Path("/data/checkpoint")
    assert local_folder("relative/checkpoint") == Path("relative/checkpoint")
    assert local_folder("file:///data/checkpoint") == Path("/data/checkpoint")
    assert local_folder("file:/data/checkpoint") == Path("/data/checkpoint")
    assert local_folder("file://localhost/data/checkpoint") == Path("/data/checkpoint")
    assert local_folder("file://otherhost/data/checkpoint") is None
    assert local_folder("abfss://c@account.dfs.core.windows.net/checkpoint") is None
    assert local_folder("dbfs:/checkpoints/tweets") is None


def test_a_start_with_another_window_or_topic_than_the_checkpoint_is_refused_before_writing(tmp_path):
    from backend.aggregates.records import BatchResult
    from backend.aggregates.sqlite_store import AggregatesStore

    state = LocalDefaults(tmp_path, "127.0.0.1:9092")
    first = validate(build_parser().parse_args([]), lambda: state)
    assert shape_conflict(first) is None  # nothing there yet
    record_shape(first)
    assert shape_conflict(first) is None  # the same shape again
    thirty = validate(build_parser().parse_args(["--window", "30 seconds"]), lambda: state)
    assert shape_conflict(thirty) is None  # a note, but no batch planned with it: nothing was counted

    offsets = Path(first.checkpoint) / "aggregates" / "offsets"
    offsets.mkdir(parents=True)
    (offsets / "0").write_text("v1\n")  # Spark's offsets log: batch 0 planned
    refusal = shape_conflict(thirty)
    assert refusal is not None and refusal.startswith("refusing to start: the checkpoint")
    assert "counted windows of 60 seconds" in refusal and "asks for windows of 30 seconds" in refusal
    other_topic = validate(build_parser().parse_args(["--topic", "tweets-v2"]), lambda: state)
    assert "reads topic 'tweets'" in shape_conflict(other_topic)

    # A note cut short (a crash while it was written, before the write became atomic) is refused, clearly.
    note = Path(first.checkpoint) / "tweetstream-job.json"
    note.write_text('{"topic": "twe')
    assert "cannot be read" in shape_conflict(first) and "Delete the note" in shape_conflict(first)

    # The store alone says it too (a checkpoint elsewhere, or one without the note).
    (Path(first.checkpoint) / "tweetstream-job.json").unlink()
    store = AggregatesStore(first.store)
    store.create()
    window = WindowCounts("2026-11-27T18:00:00Z", "2026-11-27T18:01:00Z", 1, 0, 0, 0, 0.5)
    store.write_batch(BatchResult("q", 0, windows=[window]))
    before = first.store.read_bytes()
    assert "the store " in shape_conflict(thirty) and "holds windows of 60 seconds" in shape_conflict(thirty)
    assert first.store.read_bytes() == before


def test_a_data_loss_error_is_explained_and_others_are_kept():
    spark = (
        "KafkaIllegalStateException: Some data may have been lost because they are not available in Kafka any more;\n"
        "If you don't want your streaming query to fail on such cases, set the source option failOnDataLoss to false.\n"
        "Reason: Could not read records in offset [250, 850) for topic partition tweets-1\n"
        "\tat org.apache.spark..."
    )
    said = explained(spark, options("--topic", "tweets"))
    assert "aged out by the topic's retention" in said and "--on-data-loss skip" in said and "'tweets'" in said
    assert said.endswith("; Could not read records in offset [250, 850) for topic partition tweets-1.")
    assert explained("AnalysisException: boom", options()) == "AnalysisException: boom"
    assert options().on_data_loss == "fail" and options("--on-data-loss", "skip").on_data_loss == "skip"
