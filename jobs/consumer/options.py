"""The consumer's options: the command line, its checks and defaults, and durations.

Light on purpose (no Spark or Kafka import): the console validates a Start with it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.aggregates.interfaces import DEFAULT_TABLE_PREFIX, SINKS, TABLE_PREFIX, TABLE_PREFIX_RULE
from backend.aggregates.sqlite_store import default_store_path
from backend.runtime.job_files import JobFiles

DEFAULT_TOPIC = "tweets"
MAX_WINDOW_MS = 86_400_000

# -- durations ---------------------------------------------------------------------------

_UNITS_MS = {
    "ms": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


def parse_duration_ms(text: str) -> int:
    """``"1 minute"``, ``"30 seconds"``, ``"1s"``, ``"500ms"``... in milliseconds. Raises ValueError."""
    match = _DURATION.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS_MS:
        raise ValueError(f"'{text}' is not a duration: write a number and a unit, e.g. '1 minute', '30 seconds', '1s'")
    milliseconds = float(match.group(1)) * _UNITS_MS[unit]
    if milliseconds != int(milliseconds):
        raise ValueError(f"'{text}' is not a whole number of milliseconds")
    return int(milliseconds)


def spark_interval(milliseconds: int) -> str:
    """A duration as Spark's interval strings write it, e.g. ``60 seconds``, ``1500 milliseconds``."""
    if milliseconds % 1000 == 0:
        return f"{milliseconds // 1000} seconds"
    return f"{milliseconds} milliseconds"


def inside(folder: str, name: str) -> str:
    """``folder/name`` for a path or a URI (pathlib would turn ``abfss://`` into ``abfss:/``)."""
    return f"{folder.rstrip('/')}/{name}"


# -- options -----------------------------------------------------------------------------

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")  # Kafka's rule (backend.kafka.topics needs confluent-kafka)


def _on_databricks() -> bool:
    from backend.runtime.spark import on_databricks

    return on_databricks()


@dataclass(frozen=True)
class ConsumerOptions:
    """The job's validated options (defaults already resolved)."""

    bootstrap: str
    topic: str
    store: Path
    checkpoint: str  # a folder or a URI (hdfs://, abfss://, dbfs:/...): Spark writes these, not Python
    archive: str
    status_file: Path
    window_ms: int
    watermark_ms: int
    trigger_ms: int | None  # None: --available-now
    archive_every_ms: int
    starting_offsets: str
    max_offsets_per_trigger: int | None
    master: str
    on_data_loss: str = "fail"  # or "skip": Spark's failOnDataLoss false
    sink: str = "sqlite"  # or "delta": Delta tables (backend.aggregates.delta_store), what a Databricks job writes
    table_prefix: str = DEFAULT_TABLE_PREFIX  # --sink delta: the tables' names start with it
    delta_location: str | None = None  # --sink delta: the tables' parent folder or URI; None: managed tables
    kafka_options: dict[str, str] = field(default_factory=dict, repr=False)  # security, from the settings

    @property
    def available_now(self) -> bool:
        return self.trigger_ms is None


DESCRIPTION = (
    "Read tweets from a Kafka topic with Spark Structured Streaming; count them per event-time window "
    "(tweets, retweets, replies, quotes, mean VADER sentiment, hashtags, languages) into the SQLite "
    "aggregates store (or Delta tables: --sink delta), exactly once; keep records that break the message "
    "contract as dead letters; "
    "archive the raw records as Parquet. Runs until SIGTERM or Ctrl+C, which stop it after the current "
    "micro-batch; with --available-now it processes what the topic holds and exits. Kafka security "
    "(SSL, SASL) comes from the settings (TWEETSTREAM_KAFKA_* variables), never from flags. "
    "Exit codes: 0 stopped or done, 1 the query failed, 2 invalid options."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.consumer", description=DESCRIPTION)
    _kafka_arguments(parser.add_argument_group("Kafka"))
    _file_arguments(parser.add_argument_group("files (defaults: in the state directory, TWEETSTREAM_STATE_DIR)"))
    _sink_arguments(parser.add_argument_group("where the aggregates go"))
    _timing_arguments(parser.add_argument_group("windows and triggers"))
    parser.add_argument_group("Spark").add_argument(
        "--master",
        default="local[*]",
        help="Spark master (default: %(default)s); ignored under spark-submit (its --master counts) and where a "
        "SparkSession already exists (Databricks)",
    )
    return parser


def _kafka_arguments(kafka: argparse._ArgumentGroup) -> None:
    kafka.add_argument(
        "--bootstrap",
        help="bootstrap servers of a cluster without security (default: the settings' cluster, "
        "TWEETSTREAM_BOOTSTRAP_SERVERS, else the local broker; only the settings' cluster gets the "
        "settings' SSL and SASL options)",
    )
    kafka.add_argument("--topic", default=DEFAULT_TOPIC, help="topic to read (default: %(default)s)")
    kafka.add_argument(
        "--starting-offsets",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a new checkpoint starts reading (default: %(default)s); a restart resumes from its checkpoint",
    )
    kafka.add_argument(
        "--max-offsets-per-trigger",
        type=int,
        metavar="N",
        help="read at most N records per micro-batch (default: all that are available)",
    )
    kafka.add_argument(
        "--on-data-loss",
        choices=("fail", "skip"),
        default="fail",
        help="when records the job has not read yet are gone from the topic (aged out by its retention while "
        "the job was stopped or behind, or the topic deleted): fail stops the job with a message saying so; "
        "skip goes on from the earliest records still there (default: %(default)s)",
    )


def _file_arguments(files: argparse._ArgumentGroup) -> None:
    files.add_argument("--store", type=Path, help="SQLite aggregates store (default: <state dir>/aggregates.sqlite)")
    files.add_argument("--checkpoint", help="Spark checkpoint folder or URI (default: <state dir>/consumer/checkpoint)")
    files.add_argument("--archive", help="Parquet raw archive, by date: folder or URI (default: <state dir>/archive)")
    files.add_argument(
        "--status-file", type=Path, help="job status file (default: <state dir>/jobs/consumer/status.json)"
    )


def _sink_arguments(sink: argparse._ArgumentGroup) -> None:
    sink.add_argument(
        "--sink",
        choices=SINKS,
        default="sqlite",
        help="sqlite: the SQLite store (--store) the local console reads; delta: Delta tables, appended once "
        "per micro-batch (what a Databricks job writes; the console reads them through a SQL warehouse) "
        "(default: %(default)s)",
    )
    sink.add_argument(
        "--table-prefix",
        default=DEFAULT_TABLE_PREFIX,
        help="--sink delta: the Delta tables' names start with this, which may name a schema or a catalog and a "
        "schema: 'main.tweetstream.tweetstream_' (default: %(default)s)",
    )
    sink.add_argument(
        "--delta-location",
        help="--sink delta: the folder or URI the tables' folders go in (default: <state dir>/delta; on "
        "Databricks none: managed tables)",
    )


def _timing_arguments(timing: argparse._ArgumentGroup) -> None:
    timing.add_argument(
        "--window", default="1 minute", help="event-time window length, whole seconds (default: %(default)s)"
    )
    timing.add_argument(
        "--watermark",
        default="2 minutes",
        help="a window takes tweets until the latest event time seen is this far past its end; tweets for "
        "a window closed by then are counted in late_tweets_per_window (default: %(default)s)",
    )
    when = timing.add_mutually_exclusive_group()
    when.add_argument(
        "--trigger", default="5 seconds", help="start a micro-batch this often, e.g. 1s (default: %(default)s)"
    )
    when.add_argument("--available-now", action="store_true", help="process what the topic holds now, then exit 0")
    timing.add_argument(
        "--archive-every",
        default="10 seconds",
        help="how often the archive query writes its Parquet files: less often makes fewer, larger files "
        "but bigger bursts of work (default: %(default)s; ignored with --available-now)",
    )


class OptionsError(ValueError):
    """An option that cannot work; the message says which and why."""


def validate(args: argparse.Namespace, defaults: Callable[[], LocalDefaults] | None = None) -> ConsumerOptions:
    """Check the parsed arguments and fill in the defaults; raises OptionsError.

    ``defaults`` gives the local defaults (the settings' bootstrap and state directory); it
    is called only when an option that needs one is missing.
    """

    def duration(name: str, text: str, minimum_ms: int) -> int:
        try:
            value = parse_duration_ms(text)
        except ValueError as error:
            raise OptionsError(f"--{name}: {error}") from None
        if value < minimum_ms:
            raise OptionsError(f"--{name} must be at least {spark_interval(minimum_ms)} (got '{text}')")
        return value

    if not _TOPIC_NAME.fullmatch(args.topic) or args.topic in (".", ".."):
        raise OptionsError(f"--topic '{args.topic}' is not a Kafka topic name (letters, digits, '.', '_', '-')")
    window_ms = duration("window", args.window, 1000)
    if window_ms % 1000:
        raise OptionsError(f"--window must be a whole number of seconds (got '{args.window}')")
    if window_ms > MAX_WINDOW_MS:  # event times go up to 9998: a window's end must stay a date
        raise OptionsError(f"--window must be at most 1 day (got '{args.window}')")
    watermark_ms = duration("watermark", args.watermark, 0)
    trigger_ms = None if args.available_now else duration("trigger", args.trigger, 1)
    archive_every_ms = duration("archive-every", args.archive_every, 1)
    if args.max_offsets_per_trigger is not None and args.max_offsets_per_trigger < 1:
        raise OptionsError(f"--max-offsets-per-trigger must be at least 1 (got {args.max_offsets_per_trigger})")
    sink = getattr(args, "sink", "sqlite")
    table_prefix = getattr(args, "table_prefix", DEFAULT_TABLE_PREFIX)
    if not TABLE_PREFIX.fullmatch(table_prefix):
        raise OptionsError(f"--table-prefix '{table_prefix}' cannot start a table name: {TABLE_PREFIX_RULE}")
    delta_location = getattr(args, "delta_location", None)
    if delta_location is not None and ("'" in delta_location or not delta_location.strip()):
        raise OptionsError(f"--delta-location '{delta_location}' must be a folder or URI without quotes")
    # Locally the Delta tables need a folder; on Databricks none means managed tables.
    wants_location = sink == "delta" and delta_location is None and not _on_databricks()

    needed = [args.bootstrap, args.store, args.checkpoint, args.archive, args.status_file]
    if wants_location:
        needed.append(None)
    local = defaults() if defaults is not None and None in needed else None
    if local is None and None in needed:
        raise OptionsError(
            "without the local settings, --bootstrap, --store, --checkpoint, --archive and --status-file are needed"
            + (" (and --delta-location with --sink delta)" if wants_location else "")
        )
    return ConsumerOptions(
        bootstrap=args.bootstrap or local.bootstrap,
        topic=args.topic,
        store=args.store or default_store_path(local.state_dir),
        checkpoint=args.checkpoint or str(local.state_dir / "consumer" / "checkpoint"),
        archive=args.archive or str(local.state_dir / "archive"),
        status_file=args.status_file or JobFiles(local.state_dir, "consumer").status_file,
        window_ms=window_ms,
        watermark_ms=watermark_ms,
        trigger_ms=trigger_ms,
        archive_every_ms=archive_every_ms,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        master=args.master,
        on_data_loss=args.on_data_loss,
        sink=sink,
        table_prefix=table_prefix,
        delta_location=str(local.state_dir / "delta") if wants_location else delta_location,
        # The settings' security applies to the settings' cluster only.
        kafka_options=dict(local.kafka_options) if local is not None and not args.bootstrap else {},
    )


@dataclass(frozen=True)
class LocalDefaults:
    """What the console's settings say: where its files live and which Kafka cluster to read."""

    state_dir: Path
    bootstrap: str
    kafka_options: dict[str, str] = field(default_factory=dict, repr=False)
