"""The consumer job's options (python -m jobs.consumer): names, defaults, help and rules, once.

``CONSUMER`` checks the values; ``resolve`` fills in what the console's settings give (the
state directory's files, the settings' Kafka cluster) and returns the job's ``ConsumerOptions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.aggregates.interfaces import DEFAULT_TABLE_PREFIX, SINKS, TABLE_PREFIX, TABLE_PREFIX_RULE
from backend.aggregates.sqlite_store import default_store_path
from backend.kafka.topic_names import DEFAULT_TOPIC, topic_name_problem
from backend.options.contract import Contract, Option, OptionsError, Values
from backend.runtime.job_files import JobFiles

MAX_WINDOW_MS = 86_400_000
# How often a micro-batch starts when none is said: quick enough for the console's live charts.
DEFAULT_TRIGGER = "2 seconds"

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


def _duration_problem(name: str, text: str, minimum_ms: int) -> str | None:
    try:
        value = parse_duration_ms(text)
    except ValueError as error:
        return f"--{name}: {error}"
    if value < minimum_ms:
        return f"--{name} must be at least {spark_interval(minimum_ms)} (got '{text}')"
    return None


def _duration(name: str, minimum_ms: int) -> Callable[[str], str | None]:
    return lambda text: _duration_problem(name, text, minimum_ms)


def _window_problem(text: str) -> str | None:
    problem = _duration_problem("window", text, 1000)
    if problem is not None:
        return problem
    if parse_duration_ms(text) % 1000:
        return f"--window must be a whole number of seconds (got '{text}')"
    if parse_duration_ms(text) > MAX_WINDOW_MS:  # event times go up to 9998: a window's end must stay a date
        return f"--window must be at most 1 day (got '{text}')"
    return None


def _topic_problem(topic: str) -> str | None:
    problem = topic_name_problem(topic)
    return None if problem is None else f"--topic '{topic}' is not a Kafka topic name: {problem}"


def _delta_location_problem(location: str) -> str | None:
    if "'" in location or not location.strip():
        return f"--delta-location '{location}' must be a folder or URI without quotes"
    return None


# -- the contract --------------------------------------------------------------------------

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
_FILES = "files (defaults: in the state directory, TWEETSTREAM_STATE_DIR)"
_SINK = "where the aggregates go"
_TIMING = "windows and triggers"

CONSUMER = Contract(
    prog="python -m jobs.consumer",
    description=DESCRIPTION,
    options=(
        Option(
            "--bootstrap",
            group="Kafka",
            help="bootstrap servers of a cluster without security (default: the settings' cluster, "
            "TWEETSTREAM_BOOTSTRAP_SERVERS, else the local broker; only the settings' cluster gets the "
            "settings' SSL and SASL options)",
        ),
        Option(
            "--topic",
            default=DEFAULT_TOPIC,
            group="Kafka",
            help="topic to read (default: %(default)s)",
            rule=_topic_problem,
        ),
        Option(
            "--starting-offsets",
            choices=("earliest", "latest"),
            default="earliest",
            group="Kafka",
            help="where a new checkpoint starts reading (default: %(default)s); a restart resumes from its checkpoint",
        ),
        Option(
            "--max-offsets-per-trigger",
            int,
            metavar="N",
            group="Kafka",
            help="read at most N records per micro-batch (default: all that are available)",
            rule=lambda n: None if n >= 1 else f"--max-offsets-per-trigger must be at least 1 (got {n})",
        ),
        Option(
            "--on-data-loss",
            choices=("fail", "skip"),
            default="fail",
            group="Kafka",
            help="when records the job has not read yet are gone from the topic (aged out by its retention while "
            "the job was stopped or behind, or the topic deleted): fail stops the job with a message saying so; "
            "skip goes on from the earliest records still there (default: %(default)s)",
        ),
        Option("--store", Path, group=_FILES, help="SQLite aggregates store (default: <state dir>/aggregates.sqlite)"),
        Option(
            "--checkpoint",
            group=_FILES,
            help="Spark checkpoint folder or URI (default: <state dir>/consumer/checkpoint)",
        ),
        Option(
            "--archive", group=_FILES, help="Parquet raw archive, by date: folder or URI (default: <state dir>/archive)"
        ),
        Option(
            "--status-file", Path, group=_FILES, help="job status file (default: <state dir>/jobs/consumer/status.json)"
        ),
        Option(
            "--sink",
            choices=SINKS,
            default="sqlite",
            group=_SINK,
            help="sqlite: the SQLite store (--store) the local console reads; delta: Delta tables, appended once "
            "per micro-batch (what a Databricks job writes; the console reads them through a SQL warehouse) "
            "(default: %(default)s)",
        ),
        Option(
            "--table-prefix",
            default=DEFAULT_TABLE_PREFIX,
            group=_SINK,
            help="--sink delta: the Delta tables' names start with this, which may name a schema or a catalog and a "
            "schema: 'main.tweetstream.tweetstream_' (default: %(default)s)",
            rule=lambda prefix: (
                None
                if TABLE_PREFIX.fullmatch(prefix)
                else f"--table-prefix '{prefix}' cannot start a table name: {TABLE_PREFIX_RULE}"
            ),
        ),
        Option(
            "--delta-location",
            group=_SINK,
            help="--sink delta: the folder or URI the tables' folders go in (default: <state dir>/delta; on "
            "Databricks none: managed tables)",
            rule=_delta_location_problem,
        ),
        Option(
            "--window",
            default="1 minute",
            group=_TIMING,
            help="event-time window length, whole seconds (default: %(default)s)",
            rule=_window_problem,
        ),
        Option(
            "--watermark",
            default="2 minutes",
            group=_TIMING,
            help="a window takes tweets until the latest event time seen is this far past its end; tweets for "
            "a window closed by then are counted in late_tweets_per_window (default: %(default)s)",
            rule=_duration("watermark", 0),
        ),
        Option(
            "--trigger",
            default=DEFAULT_TRIGGER,
            group=_TIMING,
            exclusive="when",
            help="start a micro-batch this often, e.g. 1s (default: %(default)s)",
            rule=_duration("trigger", 1),
        ),
        Option(
            "--available-now",
            bool,
            group=_TIMING,
            exclusive="when",
            help="process what the topic holds now, then exit 0",
        ),
        Option(
            "--archive-every",
            default="10 seconds",
            group=_TIMING,
            help="how often the archive query writes its Parquet files: less often makes fewer, larger files "
            "but bigger bursts of work (default: %(default)s; ignored with --available-now)",
            rule=_duration("archive-every", 1),
        ),
        Option(
            "--master",
            default="local[*]",
            group="Spark",
            help="Spark master (default: %(default)s); ignored under spark-submit (its --master counts) and where a "
            "SparkSession already exists (Databricks)",
        ),
    ),
)

# -- the job's options, defaults resolved --------------------------------------------------


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


@dataclass(frozen=True)
class LocalDefaults:
    """What the console's settings say: where its files live and which Kafka cluster to read."""

    state_dir: Path
    bootstrap: str
    kafka_options: dict[str, str] = field(default_factory=dict, repr=False)


def _on_databricks() -> bool:
    from backend.runtime.spark import on_databricks

    return on_databricks()


def resolve(values: Values, defaults: Callable[[], LocalDefaults] | None = None) -> ConsumerOptions:
    """The job's options from checked values (``CONSUMER.validate`` or ``CONSUMER.parse``); raises OptionsError.

    ``defaults`` gives the local defaults (the settings' bootstrap and state directory); it
    is called only when an option that needs one is missing.
    """
    sink, delta_location = values["sink"], values["delta_location"]
    # Locally the Delta tables need a folder; on Databricks none means managed tables.
    wants_location = sink == "delta" and delta_location is None and not _on_databricks()
    needed = [values[name] for name in ("bootstrap", "store", "checkpoint", "archive", "status_file")]
    if wants_location:
        needed.append(None)
    local = defaults() if defaults is not None and None in needed else None
    if local is None and None in needed:
        raise OptionsError(
            "without the local settings, --bootstrap, --store, --checkpoint, --archive and --status-file are needed"
            + (" (and --delta-location with --sink delta)" if wants_location else "")
        )
    return ConsumerOptions(
        bootstrap=values["bootstrap"] or local.bootstrap,
        topic=values["topic"],
        store=values["store"] or default_store_path(local.state_dir),
        checkpoint=values["checkpoint"] or str(local.state_dir / "consumer" / "checkpoint"),
        archive=values["archive"] or str(local.state_dir / "archive"),
        status_file=values["status_file"] or JobFiles(local.state_dir, "consumer").status_file,
        window_ms=parse_duration_ms(values["window"]),
        watermark_ms=parse_duration_ms(values["watermark"]),
        trigger_ms=None if values["available_now"] else parse_duration_ms(values["trigger"]),
        archive_every_ms=parse_duration_ms(values["archive_every"]),
        starting_offsets=values["starting_offsets"],
        max_offsets_per_trigger=values["max_offsets_per_trigger"],
        master=values["master"],
        on_data_loss=values["on_data_loss"],
        sink=sink,
        table_prefix=values["table_prefix"],
        delta_location=str(local.state_dir / "delta") if wants_location else delta_location,
        # The settings' security applies to the settings' cluster only.
        kafka_options=dict(local.kafka_options) if local is not None and not values["bootstrap"] else {},
    )


def validate(given: Values, defaults: Callable[[], LocalDefaults] | None = None) -> ConsumerOptions:
    """``given`` (option dest -> value, the rest defaults) checked and resolved; raises OptionsError."""
    return resolve(CONSUMER.validate(given), defaults)
