"""The Spark consumer job: tweets from Kafka -> windowed aggregates in the store, raw archive.

    python -m jobs.consumer [options]          (--help lists them)

Two streaming queries share one SparkSession and read the topic with Spark's own Kafka
source (spark-sql-kafka-0-10):

- **aggregates**: each micro-batch is parsed with an explicit schema (the topic message
  contract, DESIGN.md), records that break it become dead letters, and the valid tweets are
  counted per event-time window (tweets, retweets, replies, quotes, mean VADER sentiment,
  hashtags, languages). ``foreachBatch`` adds the batch's counts to the SQLite store in one
  transaction that also records the batch id: a batch Spark replays after a crash is skipped.
- **archive**: the raw records, as Parquet partitioned by date, through Spark's file sink
  (exactly once by its own metadata log).

With ``--sink delta`` (a Databricks job: it cannot write a SQLite file the console reads) the
same counts are appended to Delta tables instead (backend.aggregates.delta_store): one append per table and
batch, made idempotent by Delta's txnAppId/txnVersion, the ledger table last. A thread then also
samples the topic's offsets into a Delta table, as the console cannot reach the brokers there.

Why aggregate each micro-batch and *add* into SQLite, rather than keep windows in Spark's
state store (update mode) and upsert them: one Kafka read then serves the three aggregate
tables and the dead letters (Spark allows one stateful aggregation per query and foreachBatch
would only see its output); there is no state store to checkpoint every batch, which on two
cores costs more than the counting; and the store is the only state, so "exactly once" is
one SQLite transaction keyed by the batch id.

The watermark is applied here the way Spark applies it: the latest event time written so far
(kept in the store, so a replayed batch sees the same value) minus ``--watermark`` closes every
window that ends at or before it. A valid tweet for a closed window is not added to it (the
dashboard already shows it as final) but counted in ``late_tweets_per_window``, and its raw
record is in the archive like every other: nothing is silently lost.

The same file runs under spark-submit on a cluster and as a Databricks Python job, where the
Kafka connector is installed and a SparkSession already exists: the project's local helpers
(backend.runtime.spark, backend.settings) are imported only for the local master and for defaults.
On a cluster, ship the ``backend`` package (``--py-files backend.zip``: the store, the job
files, the message contract and the sentiment scorer the Python workers import) and install
vaderSentiment, pandas and pyarrow. As a Databricks job it ships ``backend`` and ``jobs`` to the
executors itself (a zip through the SparkContext, ship_packages) and never stops the cluster's
session, which other runs share.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file (spark-submit jobs/consumer.py): make `backend` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # at module level: pyspark resolves the UDF's type hints in these globals

from backend.aggregates.delta_store import DeltaStore  # no Spark imported here: the session comes later
from backend.aggregates.interfaces import DEFAULT_TABLE_PREFIX, SINKS, TABLE_PREFIX, TABLE_PREFIX_RULE, AggregatesWriter
from backend.aggregates.records import BatchResult, DeadLetter, KeyCount, Progress, WindowCounts, iso_utc
from backend.aggregates.sqlite_store import AggregatesStore, default_store_path
from backend.runtime.job_files import JobFiles, pid_and_lock_files, write_status

# The contract's limits, shared with the producer: a value over MAX_MESSAGE_BYTES is never parsed.
from backend.tweets.contract import (
    EVENT_TIME_MAX_MS,
    EVENT_TIME_MIN_MS,
    MAX_MESSAGE_BYTES,
    REFERENCE_TYPES,
    RFC3339_PATTERN,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("consumer")

DEFAULT_TOPIC = "tweets"
AGGREGATES_QUERY = "tweetstream-aggregates"
ARCHIVE_QUERY = "tweetstream-archive"
# A dead letter keeps the first bytes of its value only (the store cuts it again, in characters).
MAX_RAW_BYTES = 4000
# Seconds SIGTERM waits for the running micro-batch to finish before it stops the query anyway
# (safe either way: an unfinished batch is replayed at the next start, a written one skipped).
STOP_GRACE_SECONDS = 60.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_WINDOW_MS = 86_400_000
# Written in a local checkpoint folder: the topic and window length its store counts with.
JOB_SHAPE_FILE = "tweetstream-job.json"
# How Spark's Kafka source says that offsets it had to read are gone from the topic.
_DATA_LOSS = "Some data may have been lost because they are not available in Kafka any more"

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.consumer",
        description=(
            "Read tweets from a Kafka topic with Spark Structured Streaming; count them per event-time window "
            "(tweets, retweets, replies, quotes, mean VADER sentiment, hashtags, languages) into the SQLite "
            "aggregates store (or Delta tables: --sink delta), exactly once; keep records that break the message "
            "contract as dead letters; "
            "archive the raw records as Parquet. Runs until SIGTERM or Ctrl+C, which stop it after the current "
            "micro-batch; with --available-now it processes what the topic holds and exits. Kafka security "
            "(SSL, SASL) comes from the settings (TWEETSTREAM_KAFKA_* variables), never from flags. "
            "Exit codes: 0 stopped or done, 1 the query failed, 2 invalid options."
        ),
    )
    kafka = parser.add_argument_group("Kafka")
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

    files = parser.add_argument_group("files (defaults: in the state directory, TWEETSTREAM_STATE_DIR)")
    files.add_argument("--store", type=Path, help="SQLite aggregates store (default: <state dir>/aggregates.sqlite)")
    files.add_argument("--checkpoint", help="Spark checkpoint folder or URI (default: <state dir>/consumer/checkpoint)")
    files.add_argument("--archive", help="Parquet raw archive, by date: folder or URI (default: <state dir>/archive)")
    files.add_argument(
        "--status-file", type=Path, help="job status file (default: <state dir>/jobs/consumer/status.json)"
    )

    sink = parser.add_argument_group("where the aggregates go")
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

    timing = parser.add_argument_group("windows and triggers")
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

    spark = parser.add_argument_group("Spark")
    spark.add_argument(
        "--master",
        default="local[*]",
        help="Spark master (default: %(default)s); ignored under spark-submit (its --master counts) and where a "
        "SparkSession already exists (Databricks)",
    )
    return parser


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


def local_defaults() -> LocalDefaults:
    """Defaults from the console's settings (imported here: a cluster may not have them)."""
    try:
        from backend.settings import load_settings

        settings = load_settings()
    except Exception as error:  # ImportError on a bare cluster, pydantic's ValidationError on a bad variable
        raise OptionsError(f"cannot read the console's settings for the defaults: {error}") from error
    return LocalDefaults(settings.state_dir, settings.bootstrap, kafka_security_options(settings))


def kafka_security_options(settings: Any) -> dict[str, str]:
    """The Kafka source's security options (``kafka.*``) for the settings' cluster."""
    options = {"kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism is not None:
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if settings.kafka_sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        # Spark redacts option values that contain "password" from its plans and logs.
        options["kafka.sasl.jaas.config"] = (
            # Kafka's JAAS parser reads a quoted string with backslash escapes, but no \\u escapes:
            # non-ASCII characters must stay as they are.
            f"{module} required username={json.dumps(settings.kafka_sasl_username or '', ensure_ascii=False)} "
            f"password={json.dumps(password, ensure_ascii=False)};"
        )
    if settings.kafka_ssl_ca_location is not None:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_ca_location)
    return options


KAFKA_CHECK_TIMEOUT_S = 10.0


def kafka_problem(options: ConsumerOptions, timeout_s: float = KAFKA_CHECK_TIMEOUT_S) -> str | None:
    """Why the topic's cluster cannot be read (unreachable, login refused), or None when it answers.

    Asked once before Spark starts: Spark's Kafka source retries an unreachable cluster forever
    and reports a wrong password only after its own retries. None also where the console's
    helpers cannot check (a bare cluster without them, a bootstrap list they do not parse).
    """
    try:
        from backend.kafka.connection import ConnectionProfile, active_profile, test_connection
        from backend.settings import load_settings
    except ImportError:
        return None
    try:
        # kafka_options are the settings' (their cluster and its security); else --bootstrap, no security.
        profile = (
            active_profile(load_settings())
            if options.kafka_options
            else ConnectionProfile(bootstrap_servers=options.bootstrap)
        )
    except ValueError:
        return None
    result = test_connection(profile, timeout_s)
    return None if result.ok else result.message


# -- the message schema and the parsing (pure DataFrame transformations) --------------------

# The topic message contract (DESIGN.md) as Spark's JSON reader reads it. Spark turns any
# JSON value into a string when the schema says STRING (7 becomes "7", ["a"] becomes '["a"]'),
# so the fields the contract types are VARIANT leaves, which keep their JSON type for the checks
# in ERROR_SQL. The items of the lists stay STRING: checking each item's type would take a
# higher-order function (exists, transform), and one of those switches Spark's code generation
# off for the whole projection, which made parsing about 3 times slower here. So a referenced
# tweet's type must still be one of three words (only a JSON string can be), but a hashtag or a
# mention written as a number counts as its text ("7") instead of making the record a dead letter.
MESSAGE_SCHEMA = (
    "data STRUCT<"
    "id VARIANT, text VARIANT, created_at VARIANT, author_id VARIANT, lang VARIANT, "
    "entities STRUCT<hashtags ARRAY<STRUCT<tag STRING>>, mentions ARRAY<STRUCT<username STRING>>>, "
    "referenced_tweets ARRAY<STRUCT<type STRING>>"
    ">, "
    "_corrupt_record STRING"
)
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}


def _is_string(variant: str) -> str:
    return f"(schema_of_variant({variant}) = 'STRING')"


def _optional_string_check(name: str) -> str:
    leaf = f"message.data.{name}"
    return f"WHEN {leaf} IS NOT NULL AND NOT {_is_string(leaf)} THEN 'data.{name} is not a string'"


def _has_null(array: str) -> str:
    """True when ``array`` holds a NULL (an item without the field), without a higher-order function."""
    return f"(size(array_distinct({array})) > size(array_except({array}, array(CAST(NULL AS STRING)))))"


# Why a record is a dead letter, or NULL when it keeps the contract: the checks of
# backend.tweets.contract.contract_problem (which the producer and the tests use), in the same order
# (the reasons' wording may differ: an empty value is "no data.id string" here, "not JSON"
# there), then one the value alone cannot tell: a record without created_at takes its
# Kafka timestamp as its event time, which must be in the range windows can hold.
# Columns it reads: value (binary), value_text, utf8 (is value_text valid UTF-8), message
# (MESSAGE_SCHEMA), created_at_text, created_at_shaped (it has RFC 3339's shape), created_at_ms.
ERROR_SQL = f"""
CASE
  WHEN value IS NULL THEN 'empty value'
  WHEN length(value) > {MAX_MESSAGE_BYTES}
    THEN concat('oversize: ', length(value), ' bytes, more than {MAX_MESSAGE_BYTES}')
  WHEN NOT utf8 THEN 'not UTF-8'
  WHEN message._corrupt_record IS NOT NULL AND try_parse_json(value_text) IS NULL THEN 'not JSON'
  WHEN message._corrupt_record IS NOT NULL THEN 'not the message schema (an object or a list of the wrong shape)'
  WHEN message.data.id IS NULL OR NOT {_is_string("message.data.id")}
       OR try_variant_get(message.data.id, '$', 'string') = ''
    THEN 'no data.id string'
  {_optional_string_check("text")}
  {_optional_string_check("created_at")}
  {_optional_string_check("author_id")}
  {_optional_string_check("lang")}
  WHEN created_at_text IS NOT NULL AND (NOT created_at_shaped OR created_at_ms IS NULL)
    THEN 'data.created_at is not RFC 3339'
  WHEN NOT created_at_ms BETWEEN {EVENT_TIME_MIN_MS} AND {EVENT_TIME_MAX_MS - 1}
    THEN 'data.created_at is out of range (1970 to 9998)'
  WHEN {_has_null("message.data.entities.hashtags.tag")} THEN 'data.entities.hashtags is malformed'
  WHEN {_has_null("message.data.entities.mentions.username")} THEN 'data.entities.mentions is malformed'
  WHEN size(array_except(message.data.referenced_tweets.type, array{REFERENCE_TYPES})) > 0
    THEN 'data.referenced_tweets is malformed'
  WHEN created_at_text IS NULL AND NOT unix_millis(timestamp) BETWEEN {EVENT_TIME_MIN_MS} AND {EVENT_TIME_MAX_MS - 1}
    THEN 'no data.created_at, and the Kafka timestamp is out of range (1970 to 9998)'
END
"""

# Joins a tweet's hashtags into one string for normalising (no hashtag contains it).
_TAG_SEPARATOR = "\x01"


def normalised_hashtags(tags: Column) -> Column:
    """Distinct, lower-case, without leading ``#``; never NULL.

    All tags at once: join them, rewrite the one string, split it again (for the same reason
    as above, rather than transform() over the list).
    """
    from pyspark.sql import functions as F

    joined = F.lower(F.array_join(tags, _TAG_SEPARATOR))
    stripped = F.regexp_replace(joined, f"(^|{_TAG_SEPARATOR})#+", "$1")
    distinct = F.array_remove(F.array_distinct(F.split(stripped, _TAG_SEPARATOR)), "")
    return F.coalesce(distinct, F.array().cast("array<string>"))


def parse_records(raw: DataFrame) -> DataFrame:
    """Kafka rows -> one row per record: where it came from, ``error`` (NULL when valid), the fields.

    ``raw`` has the Kafka source's columns (value, topic, partition, offset, timestamp).
    Fields: ``event_time`` (created_at, else the Kafka timestamp), ``text``, ``lang`` (``und``
    when missing), ``hashtags`` (distinct, lower-case, without ``#``), ``is_retweet``,
    ``is_reply``, ``is_quote``; ``raw`` holds the start of the value for dead letters only.
    """
    from pyspark.sql import functions as F

    def text_of(leaf: str) -> Column:
        return F.try_variant_get(F.col(f"message.data.{leaf}"), "$", "string")

    def referenced(kind: str) -> Column:
        return F.coalesce(F.array_contains("message.data.referenced_tweets.type", kind), F.lit(False))

    value_text = F.col("value").cast("string")
    decoded = raw.select(
        "topic",
        "partition",
        "offset",
        "timestamp",
        "value",
        value_text.alias("value_text"),
        F.is_valid_utf8(value_text).alias("utf8"),  # once: checking 600 bytes a record shows in a profile
    )
    parseable = (F.length("value") <= MAX_MESSAGE_BYTES) & F.col("utf8")
    # Oversize and invalid UTF-8 values are never handed to the JSON parser.
    parsed = decoded.select(
        "*", F.when(parseable, F.from_json("value_text", MESSAGE_SCHEMA, JSON_OPTIONS)).alias("message")
    )
    # created_at is parsed once, for the checks and the event time (CASE branches share no
    # evaluated expression). regexp_extract rather than RLIKE: Java's "$" also matches before
    # a final newline, Python's fullmatch does not.
    with_text = parsed.select("*", text_of("created_at").alias("created_at_text"))
    timed = with_text.select(
        "*",
        (F.regexp_extract("created_at_text", f"^({RFC3339_PATTERN})", 1) == F.col("created_at_text")).alias(
            "created_at_shaped"
        ),
        F.unix_millis(F.try_to_timestamp("created_at_text")).alias("created_at_ms"),
    )
    checked = timed.withColumn("error", F.expr(ERROR_SQL))
    valid = F.col("error").isNull()
    return checked.select(
        "topic",
        "partition",
        "offset",
        "error",
        F.when(~valid, F.make_valid_utf8(F.substring("value", 1, MAX_RAW_BYTES).cast("string"))).alias("raw"),
        F.coalesce(F.timestamp_millis("created_at_ms"), F.col("timestamp")).alias("event_time"),
        F.when(valid, text_of("text")).alias("text"),
        F.coalesce(F.nullif(text_of("lang"), F.lit("")), F.lit("und")).alias("lang"),
        normalised_hashtags(F.col("message.data.entities.hashtags.tag")).alias("hashtags"),
        referenced("retweeted").alias("is_retweet"),
        referenced("replied_to").alias("is_reply"),
        referenced("quoted").alias("is_quote"),
    )


def sentiment_udf() -> Callable[[Column], Column]:
    """VADER's compound score of a text column, as an Arrow (pandas) UDF: whole batches per call."""
    from pyspark.sql import functions as F

    @F.pandas_udf("double")  # type: ignore[call-overload]
    def vader_compound(texts: pd.Series) -> pd.Series:
        # Imported on the Python worker, where the scorer's lexicon is loaded once per process.
        from backend.tweets.sentiment import compound_scores

        return pd.Series(compound_scores(texts), index=texts.index, dtype="float64")

    return vader_compound


def windowed(records: DataFrame, window_ms: int) -> DataFrame:
    """Add each record's window start, in ms since the epoch.

    Tumbling windows aligned on the epoch, as Spark's window() makes them. The start stays a
    number here: it becomes an ISO string only per aggregated row (formatting a timestamp
    for every record showed in the profile), and the watermark is applied per window in
    batch_result (a watermark literal in the plan would change Spark's generated code every
    batch, and recompiling it cost more than the batch).
    """
    from pyspark.sql import functions as F

    event_ms = F.unix_millis("event_time")
    return records.select("*", (event_ms - F.pmod(event_ms, F.lit(window_ms))).alias("window_start_ms"))


def iso_from_ms(milliseconds: int) -> str:
    """``1795806000000`` -> ``2026-11-27T18:00:00Z`` (the store's window start format)."""
    return iso_utc(datetime.fromtimestamp(milliseconds / 1000, tz=UTC))


@dataclass(frozen=True)
class LanguageGroup:
    """One aggregated row of a batch: the valid tweets of one window in one language."""

    window_start_ms: int
    lang: str
    tweets: int
    retweets: int
    replies: int
    quotes: int
    sentiment_sum: float
    max_event_time_ms: int


def batch_result(
    query_id: str,
    batch_id: int,
    window_ms: int,
    watermark_at_ms: int | None,
    groups: Sequence[LanguageGroup],
    hashtags: Sequence[tuple[int, str, int]],
    dead_letters: Sequence[DeadLetter],
) -> BatchResult:
    """What one batch adds to the store, from its aggregated rows (pure: no Spark here).

    ``groups`` per (window, language) give the languages table and, summed over the
    languages, the windows table; ``hashtags`` are (window start ms, hashtag, tweets). A
    window that ends at or before the watermark is closed: its tweets count as late only.
    """

    def closed(start: int) -> bool:
        return watermark_at_ms is not None and start + window_ms <= watermark_at_ms

    windows: dict[int, list[LanguageGroup]] = {}
    late: dict[int, int] = {}
    for group in groups:
        if closed(group.window_start_ms):
            late[group.window_start_ms] = late.get(group.window_start_ms, 0) + group.tweets
        else:
            windows.setdefault(group.window_start_ms, []).append(group)
    return BatchResult(
        query_id=query_id,
        batch_id=batch_id,
        windows=[
            WindowCounts(
                window_start=iso_from_ms(start),
                window_end=iso_from_ms(start + window_ms),
                tweets=sum(g.tweets for g in parts),
                retweets=sum(g.retweets for g in parts),
                replies=sum(g.replies for g in parts),
                quotes=sum(g.quotes for g in parts),
                sentiment_sum=math.fsum(g.sentiment_sum for g in parts),
            )
            for start, parts in sorted(windows.items())
        ],
        languages=[
            KeyCount(iso_from_ms(g.window_start_ms), g.lang, g.tweets) for parts in windows.values() for g in parts
        ],
        hashtags=[KeyCount(iso_from_ms(start), tag, tweets) for start, tag, tweets in hashtags if not closed(start)],
        late=[KeyCount(iso_from_ms(start), "", tweets) for start, tweets in sorted(late.items())],
        dead_letters=list(dead_letters),
        max_event_time_ms=max((g.max_event_time_ms for g in groups), default=None),
        watermark_ms=watermark_at_ms,
    )


# One pass over a micro-batch, one Spark action: each parsed and scored record (the view
# {records}) is counted in two groupings at once (GROUPING SETS):
#   - per window and language, which also gives the window's totals: each valid record once;
#   - per window and hashtag, and per dead letter: posexplode_outer makes one row per hashtag
#     (one, with a NULL hashtag, when there is none), so ``first_row`` marks the row that
#     counts the record; a dead letter's rows have a NULL hashtag and its own dead_* keys
#     (NULL for valid records), so each dead letter is a group of its own.
# Groups with nothing to count (a NULL hashtag, a language of dead letters only) come back
# too and are dropped in Python. Measured against caching the batch and collecting each
# table in its own job: ~30 % less time per micro-batch, most on small ones. Every aggregate
# is a number (the dead letter's reason and raw value are grouping keys, not max() of a
# string), so Spark can hash-aggregate: a string aggregate made it sort every row, ~13 % of
# the executors' time in a profile of a 1M-record batch.
AGGREGATE_SQL = """
SELECT
  CASE WHEN grouping(lang) = 0 THEN 'lang' WHEN dead_error IS NOT NULL THEN 'dead' ELSE 'hashtag' END AS kind,
  window_start_ms, lang, hashtag, dead_topic AS topic, dead_partition AS `partition`, dead_offset AS `offset`,
  dead_error AS error, dead_raw AS raw,
  count_if(first_row) AS tweets,
  count_if(first_row AND is_retweet) AS retweets,
  count_if(first_row AND is_reply) AS replies,
  count_if(first_row AND is_quote) AS quotes,
  sum(IF(first_row, sentiment, 0D)) AS sentiment_sum,
  max(IF(error IS NULL, unix_millis(event_time), NULL)) AS max_event_time_ms,
  count(hashtag) AS hashtag_tweets
FROM (
  SELECT *,
         error IS NULL AND coalesce(position, 0) = 0 AS first_row,
         IF(error IS NULL, tag, NULL) AS hashtag,
         IF(error IS NULL, NULL, topic) AS dead_topic,
         IF(error IS NULL, NULL, `partition`) AS dead_partition,
         IF(error IS NULL, NULL, `offset`) AS dead_offset,
         error AS dead_error,
         raw AS dead_raw
  FROM (SELECT r.*, h.position, h.tag FROM {records} r LATERAL VIEW OUTER posexplode(r.hashtags) h AS position, tag)
)
GROUP BY GROUPING SETS (
  (window_start_ms, lang), (window_start_ms, hashtag, dead_topic, dead_partition, dead_offset, dead_error, dead_raw)
)
"""


def summarise(
    records: DataFrame, query_id: str, batch_id: int, window_ms: int, watermark_at_ms: int | None
) -> BatchResult:
    """Collect what one batch adds to the store (``records``: parsed, windowed and scored)."""
    rows = records.sparkSession.sql(AGGREGATE_SQL, records=records).collect()
    return batch_result(
        query_id,
        batch_id,
        window_ms,
        watermark_at_ms,
        groups=[
            LanguageGroup(
                r.window_start_ms,
                r.lang,
                r.tweets,
                r.retweets,
                r.replies,
                r.quotes,
                r.sentiment_sum,
                r.max_event_time_ms,
            )
            for r in rows
            if r.kind == "lang" and r.tweets > 0
        ],
        hashtags=[(r.window_start_ms, r.hashtag, r.hashtag_tweets) for r in rows if r.kind == "hashtag" and r.hashtag],
        dead_letters=[DeadLetter(r.topic, r.partition, r.offset, r.error, r.raw) for r in rows if r.kind == "dead"],
    )


class BatchWriter:
    """The foreachBatch function: one micro-batch -> one store transaction (or none if already written)."""

    def __init__(
        self,
        store: AggregatesWriter,
        options: ConsumerOptions,
        on_batch: Callable[[dict], None],
        cores: int | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.on_batch = on_batch
        self.cores = cores
        self._sentiment = sentiment_udf()
        self._query_id: str | None = None
        self._started = threading.Event()

    def set_query_id(self, query_id: str) -> None:
        """The query's id (kept in its checkpoint, the same after a restart): batch ids are per query."""
        self._query_id = query_id
        self._started.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # The first batch may start before start() has returned the query's id to us.
        if not self._started.wait(timeout=120):
            raise RuntimeError("the streaming query's id never arrived")
        assert self._query_id is not None
        if self.store.is_committed(self._query_id, batch_id):
            log.info("batch %d was already written to the store (a replay after a restart): skipped", batch_id)
            return
        began = time.monotonic()
        latest = self.store.max_event_time_ms()
        watermark_at_ms = None if latest is None else latest - self.options.watermark_ms
        if self.cores:
            # At most one task per core: a topic with more partitions than cores would otherwise
            # run its tasks in waves, each paying a task's fixed cost (~0.25 s less for a small
            # batch of a 4-partition topic on 2 cores; no slower for a large one).
            batch = batch.coalesce(self.cores)
        records = windowed(parse_records(batch), self.options.window_ms)
        records = records.withColumn("sentiment", self._sentiment("text")).drop("text")
        result = summarise(records, self._query_id, batch_id, self.options.window_ms, watermark_at_ms)
        computed = time.monotonic()
        written = self.store.write_batch(result)
        done = time.monotonic()
        tweets = sum(w.tweets for w in result.windows)
        late = sum(r.tweets for r in result.late)
        log.info(
            "batch %d: %d tweets in %d windows, %d late, %d dead letters; computed in %.2f s, written in %.3f s%s",
            batch_id,
            tweets,
            len(result.windows),
            late,
            len(result.dead_letters),
            computed - began,
            done - computed,
            "" if written else " (already written: skipped)",
        )
        self.on_batch(
            {"batch_id": batch_id, "tweets": tweets, "late_tweets": late, "dead_letters": len(result.dead_letters)}
        )


# -- progress and status ---------------------------------------------------------------------


def offsets_by_partition(offsets_json: str | None, topic: str) -> dict[str, int]:
    """Spark's ``{"topic": {"0": 12, ...}}`` offsets -> ``{"0": 12, ...}`` for our topic."""
    try:
        parsed = json.loads(offsets_json or "")
    except ValueError:  # the first batch of a query has no start offsets ("None")
        return {}
    return {str(p): int(o) for p, o in parsed.get(topic, {}).items()} if isinstance(parsed, dict) else {}


class StatusFile:
    """The job's status file, updated from the main thread and from Spark's listener thread."""

    def __init__(self, path: Path, initial: dict[str, Any]) -> None:
        self.path = path
        self._status = dict(initial)
        self._lock = threading.Lock()

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._status.update(changes)
            write_status(self.path, self._status)


class ProgressRecorder:
    """Keeps every micro-batch's progress in the store and the status file (Spark's listener calls it)."""

    def __init__(self, store: AggregatesWriter, status: StatusFile, topic: str) -> None:
        self.store = store
        self.status = status
        self.topic = topic
        self._recorded: dict[str, int] = {}  # query id -> latest batch id recorded
        self._changed = threading.Condition()

    def record(self, progress: Any) -> None:
        if progress.name not in (AGGREGATES_QUERY, ARCHIVE_QUERY):  # another query of a shared session
            return
        try:
            source = progress.sources[0] if progress.sources else None
            row = Progress(
                query_id=str(progress.id),
                batch_id=int(progress.batchId),
                input_rows=int(progress.numInputRows),
                input_rows_per_second=float(progress.inputRowsPerSecond or 0.0),
                processed_rows_per_second=float(progress.processedRowsPerSecond or 0.0),
                batch_duration_ms=int(progress.batchDuration),
                start_offsets=offsets_by_partition(source.startOffset if source else None, self.topic),
                end_offsets=offsets_by_partition(source.endOffset if source else None, self.topic),
                recorded_at=time.time(),
            )
            summary = {
                "batch_id": row.batch_id,
                "input_rows": row.input_rows,
                "input_rows_per_second": row.input_rows_per_second,
                "processed_rows_per_second": row.processed_rows_per_second,
                "batch_duration_ms": row.batch_duration_ms,
                "end_offsets": row.end_offsets,
            }
            if progress.name == AGGREGATES_QUERY:
                self.store.record_progress(row)
                self.status.update(last_batch=summary)
            else:
                self.status.update(archive_last_batch=summary)
        except Exception:  # a listener must never take the query down
            log.exception("could not record the progress of a batch")
        finally:
            with self._changed:
                self._recorded[str(progress.id)] = int(progress.batchId)
                self._changed.notify_all()

    def wait_until_recorded(self, queries: Sequence[StreamingQuery], timeout: float = 10.0) -> None:
        """Wait for the reports of the queries' last batches: Spark delivers them asynchronously,
        and stopping the session would drop those still queued."""
        deadline = time.monotonic() + timeout
        with self._changed:
            for query in queries:
                last = query.lastProgress
                if last is None:
                    continue
                while self._recorded.get(str(query.id), -1) < last["batchId"] and time.monotonic() < deadline:
                    self._changed.wait(max(0.0, deadline - time.monotonic()))


def make_listener(recorder: ProgressRecorder) -> Any:
    """The StreamingQueryListener that hands each progress report to ``recorder``."""
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressListener(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:
            pass

        def onQueryProgress(self, event: Any) -> None:
            recorder.record(event.progress)

        def onQueryIdle(self, event: Any) -> None:
            pass

        def onQueryTerminated(self, event: Any) -> None:
            pass

    return ProgressListener()


# -- the topic's offsets, sampled where the brokers are reachable ------------------------------

# How often --sink delta samples the topic's first and next offsets (the console's lag on Azure).
OFFSETS_SAMPLE_SECONDS = 10.0


def admin_config(options: ConsumerOptions) -> dict[str, Any] | None:
    """librdkafka settings for an admin client of the job's cluster; None when they cannot be made.

    The settings' cluster gets the settings' security (as the Kafka source does); --bootstrap none.
    """
    if not options.kafka_options:
        return {"bootstrap.servers": options.bootstrap}
    try:
        from backend.kafka.connection import active_profile, client_config_for
        from backend.settings import load_settings

        config = client_config_for(active_profile(load_settings()))
    except Exception as error:  # ImportError on a bare cluster, ValueError for settings that are no profile
        log.warning("the topic's offsets will not be sampled: no Kafka client settings (%s)", type(error).__name__)
        return None
    return {**config, "bootstrap.servers": options.bootstrap}


def topic_offsets(admin: Any, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """``{partition: (first offset, next offset)}`` of ``topic``, asked with confluent-kafka's AdminClient."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    metadata = admin.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"topic '{topic}': {metadata.error.str()}")
    found: dict[int, list[int]] = {p: [0, 0] for p in metadata.partitions}
    for index, spec in enumerate((OffsetSpec.earliest(), OffsetSpec.latest())):
        answers = admin.list_offsets(
            {TopicPartition(topic, p): spec for p in metadata.partitions}, request_timeout=timeout_s
        )
        for partition, future in answers.items():
            found[partition.partition][index] = future.result(timeout=timeout_s).offset
    return {p: (low, high) for p, (low, high) in found.items()}


def sample_offsets_forever(
    store: DeltaStore, options: ConsumerOptions, stop: threading.Event, every_s: float = OFFSETS_SAMPLE_SECONDS
) -> None:
    """Append the topic's offsets to ``topic_offsets`` every ``every_s`` until ``stop``; failures are logged.

    The console on a laptop cannot reach HDInsight's brokers, the job can: so the job samples them.
    """
    config = admin_config(options)
    if config is None:
        return
    try:
        from confluent_kafka.admin import AdminClient

        # librdkafka would log every failed reconnect to the job's log; the samples' own failures are logged,
        # throttled, below.
        admin = AdminClient({**config, "log_level": 0, "error_cb": lambda _error: None})
    except Exception as error:  # confluent-kafka missing on the cluster, or a setting it refuses
        log.warning("the topic's offsets will not be sampled: %s: %s", type(error).__name__, error)
        return
    failures = 0
    while not stop.is_set():
        try:
            sampled_at = time.time()
            store.record_topic_offsets(options.topic, topic_offsets(admin, options.topic), sampled_at)
            failures = 0
        except Exception as error:  # never fatal: the aggregates go on without the lag
            failures += 1
            if failures in (1, 10) or failures % 60 == 0:  # not a line every 10 s for a long outage
                log.warning("could not sample the offsets of '%s' (%d in a row): %s", options.topic, failures, error)
        stop.wait(every_s)


def start_offsets_sampler(store: DeltaStore, options: ConsumerOptions, stop: threading.Event) -> threading.Thread:
    """The daemon thread of sample_offsets_forever (a daemon: it never holds the job's exit)."""
    thread = threading.Thread(
        target=sample_offsets_forever, args=(store, options, stop), name="topic-offsets", daemon=True
    )
    thread.start()
    return thread


# -- the Spark session and the two queries ---------------------------------------------------


@dataclass(frozen=True)
class SessionPlan:
    """Where the job's session comes from, and what the job may do to it and to its environment."""

    source: str  # "active", "databricks", "spark-submit", "local" or "master"
    stop_at_exit: bool  # only a session this job started: never the cluster's (Databricks) or a host's
    set_worker_environment: bool  # PYSPARK_PYTHON and PYTHONPATH for local mode's Python workers


def session_plan(master: str, has_active_session: bool, environ: Mapping[str, str]) -> SessionPlan:
    """Decide how to get the session; pure (no Spark), so every case is testable.

    On Databricks the cluster's SparkContext is shared with other runs: stopping it at the
    job's exit would stop theirs, and its Python workers' environment is the cluster's.
    """
    from backend.runtime.spark import on_databricks

    if has_active_session:  # an embedding program (or a Databricks notebook): its session, its master
        return SessionPlan("active", stop_at_exit=False, set_worker_environment=False)
    if on_databricks(environ):  # a Databricks job: the cluster's session, whatever --master says
        return SessionPlan("databricks", stop_at_exit=False, set_worker_environment=False)
    if "PYSPARK_GATEWAY_PORT" in environ:  # started by spark-submit: its --master, --jars and --conf count
        return SessionPlan("spark-submit", stop_at_exit=True, set_worker_environment=False)
    if master.startswith("local"):
        return SessionPlan("local", stop_at_exit=True, set_worker_environment=True)
    return SessionPlan("master", stop_at_exit=True, set_worker_environment=False)


def spark_session(options: ConsumerOptions) -> tuple[SparkSession, bool]:
    """The session to use, and whether we created it (then we also stop it)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    plan = session_plan(options.master, active is not None, os.environ)
    if active is not None:
        session = active
    elif plan.source == "databricks":  # the cluster's own session: nothing set on the builder
        session = SparkSession.builder.getOrCreate()
    elif plan.source == "spark-submit":
        session = SparkSession.builder.appName("tweetstream-consumer").getOrCreate()
    elif plan.source == "local":
        from backend.runtime.spark import local_spark_session
        from backend.settings import PROJECT_ROOT

        if plan.set_worker_environment:
            # The Python workers run this interpreter (not whatever python3 the PATH has) and
            # import backend.tweets.sentiment: they inherit these variables.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            paths = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
            os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        # Local mode runs everything in the driver's JVM: its heap holds the cached micro-batch.
        conf = {"spark.driver.memory": "2g"}
        if options.sink == "delta" and options.delta_location:
            # The local catalog's own folder (Spark makes it at the start): beside the tables, not in the cwd.
            conf["spark.sql.warehouse.dir"] = inside(options.delta_location, "_warehouse")
        session = local_spark_session("tweetstream-consumer", options.master, conf, delta=options.sink == "delta")
    else:
        session = SparkSession.builder.appName("tweetstream-consumer").master(options.master).getOrCreate()
    for key, value in runtime_conf().items():
        session.conf.set(key, value)
    return session, plan.stop_at_exit


# The folder holding backend/ and jobs/ (the repository here, the job bundle's folder on Databricks).
PROJECT_DIR = Path(__file__).resolve().parent.parent
SHIPPED_PACKAGES = ("backend", "jobs")


def packages_zip(root: Path, folder: Path, packages: Sequence[str] = SHIPPED_PACKAGES) -> Path:
    """Zip the ``.py`` files of ``packages`` under ``root`` into ``folder``; the zip's path.

    The name carries a digest of the content: Spark refuses to replace a file it already
    serves under the same name, and an unchanged bundle reuses its zip. Entries have a fixed
    date, so equal files make equal bytes.
    """
    entries = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                entries.append((path.relative_to(root).as_posix(), path.read_bytes()))
    if not entries:
        raise FileNotFoundError(f"no Python files of {', '.join(packages)} under {root}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(entries):
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"tweetstream-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not target.exists():
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


def ship_packages(
    session: Any, root: Path = PROJECT_DIR, environ: Mapping[str, str] | None = None, folder: Path | None = None
) -> Path | None:
    """On Databricks, send ``backend`` and ``jobs`` to the executors' Python workers as a zip; the zip.

    The launcher puts the bundle's folder on the driver's ``sys.path`` only, and the pandas UDF
    imports backend.tweets.sentiment on the workers. Databricks Runtime 13.3 LTS and above distribute
    folders added to ``sys.path`` themselves; the zip makes it not depend on that. Through the
    SparkContext where one is reachable (dedicated access mode), else as a Spark Connect
    artifact. Elsewhere nothing happens: local mode's workers get PYTHONPATH, and spark-submit
    takes ``--py-files``. None when nothing was shipped.
    """
    from backend.runtime.spark import on_databricks

    if not on_databricks(environ):
        return None
    try:
        zipped = packages_zip(root, folder or Path(tempfile.gettempdir()) / "tweetstream-pyfiles")
    except OSError:  # FileNotFoundError too: the runtime's own distribution may still do
        log.warning("could not zip %s for the executors", ", ".join(SHIPPED_PACKAGES), exc_info=True)
        return None
    try:
        context = session.sparkContext
    except Exception:  # Spark Connect (standard access mode, serverless) has no SparkContext
        context = None
    try:
        if context is not None:
            context.addPyFile(str(zipped))
        elif hasattr(session, "addArtifacts"):
            session.addArtifacts(str(zipped), pyfile=True)
        else:
            log.warning("cannot ship %s to the executors: no SparkContext and no addArtifacts", zipped)
            return None
    except Exception:  # the runtime's own sys.path distribution (13.3 LTS and above) may still do
        log.warning("could not ship %s to the executors", zipped, exc_info=True)
        return None
    log.info("shipped %s to the executors", zipped)
    return zipped


def spark_master(session: SparkSession) -> str | None:
    """The master the session runs on (``local[2]``, ``spark://...``), or None where it does not tell."""
    try:
        return str(session.sparkContext.master)
    except Exception:  # Spark Connect (Databricks serverless) has no SparkContext
        return None


def core_count(session: SparkSession) -> int | None:
    """The cores Spark runs tasks on, or None where the session does not tell (serverless)."""
    try:
        return int(session.sparkContext.defaultParallelism)
    except Exception:
        return None


def runtime_conf() -> dict[str, str]:
    """Settings that may change on a running session (a Databricks one too)."""
    return {
        # Window starts are written as UTC strings: no machine's zone may leak in.
        "spark.sql.session.timeZone": "UTC",
        # An idle stream runs no empty micro-batch: the watermark lives in the store, not in Spark.
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        # One shuffle partition. Our shuffles carry partial aggregates only (a few rows per
        # window, language and hashtag; the map side, one task per Kafka partition, keeps the
        # cores busy), so every further reduce task only adds its fixed cost to each micro-batch.
        # Measured on a batch of 8 000 records, 2 cores: 200 partitions ~1.6-2.2 s (adaptive
        # execution coalesces most), 2 partitions ~1.35 s, 1 partition ~1.2 s.
        "spark.sql.shuffle.partitions": "1",
    }


def read_topic(session: SparkSession, options: ConsumerOptions) -> DataFrame:
    reader = (
        session.readStream.format("kafka")
        .option("kafka.bootstrap.servers", options.bootstrap)
        .option("subscribe", options.topic)
        .option("startingOffsets", options.starting_offsets)
        .option("failOnDataLoss", "true" if options.on_data_loss == "fail" else "false")
    )
    for key, value in options.kafka_options.items():
        reader = reader.option(key, value)
    if options.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load()


def inside(folder: str, name: str) -> str:
    """``folder/name`` for a path or a URI (pathlib would turn ``abfss://`` into ``abfss:/``)."""
    return f"{folder.rstrip('/')}/{name}"


def start_queries(
    session: SparkSession, options: ConsumerOptions, writer: BatchWriter
) -> tuple[StreamingQuery, StreamingQuery]:
    from pyspark.sql import functions as F

    records = read_topic(session, options)

    def trigger(every_ms: int) -> dict[str, Any]:
        return {"availableNow": True} if options.available_now else {"processingTime": spark_interval(every_ms)}

    aggregates = (
        records.writeStream.queryName(AGGREGATES_QUERY)
        .foreachBatch(writer)
        .option("checkpointLocation", inside(options.checkpoint, "aggregates"))
        .trigger(**trigger(options.trigger_ms or 0))
        .start()
    )
    writer.set_query_id(str(aggregates.id))
    archive = (
        records.select(
            "key",
            "value",
            "topic",
            "partition",
            "offset",
            "timestamp",
            F.to_date("timestamp").alias("date"),  # of the Kafka timestamp: a raw record may have no other
        )
        # One writer task: one file per date and batch rather than one per Kafka partition, and
        # the archive never takes more than one core from the aggregates (latency stays even).
        .coalesce(1)
        .writeStream.queryName(ARCHIVE_QUERY)
        .format("parquet")
        .option("path", options.archive)
        # Keys and values are unique per record: Parquet's dictionary encoding of them only
        # fills a dictionary to throw it away (the same file size; writing 250 000 records
        # took 25-40 % less time without it); topic, partition and date keep theirs.
        .option("parquet.enable.dictionary#key", "false")
        .option("parquet.enable.dictionary#value", "false")
        .option("checkpointLocation", inside(options.checkpoint, "archive"))
        .partitionBy("date")
        .trigger(**trigger(options.archive_every_ms))
        .start()
    )
    return aggregates, archive


def stop_at_batch_boundary(query: StreamingQuery, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """Stop ``query`` between two micro-batches (after ``grace_seconds``, wherever it is)."""
    deadline = time.monotonic() + grace_seconds
    with contextlib.suppress(Exception):
        while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
            time.sleep(0.05)
    query.stop()


def wait_for(
    queries: Sequence[StreamingQuery], stop_requested: threading.Event, on_stop: Callable[[], None]
) -> str | None:
    """Wait until the queries end (--available-now) or a stop is requested; the first error, if any.

    ``on_stop`` runs here, when a requested stop begins (not in the signal handler, which
    may interrupt anything, a status-file write included).
    """
    while any(query.isActive for query in queries):
        failed = [query for query in queries if query.exception() is not None]
        if failed or stop_requested.is_set():
            if stop_requested.is_set():
                on_stop()
            for query in queries:
                if query.isActive:
                    stop_at_batch_boundary(query)
            break
        stop_requested.wait(0.5)
    errors = [str(query.exception()) for query in queries if query.exception() is not None]
    return errors[0] if errors else None


def run(options: ConsumerOptions) -> int:
    status = StatusFile(
        options.status_file,
        {
            "state": "starting",
            "pid": os.getpid(),
            "topic": options.topic,
            "bootstrap": options.bootstrap,
            **sink_status(options),
            "trigger": "available-now" if options.available_now else spark_interval(options.trigger_ms or 0),
            "last_batch": None,
            "last_error": None,
            "on_data_loss": options.on_data_loss,
        },
    )
    status.update()
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop_requested.set()  # only this: the main thread may be inside a log or status write

    def stopping() -> None:
        log.info("stop requested: stopping after the current micro-batch")
        status.update(state="stopping")

    # Before the Kafka check, which may take its 10 s: a Stop meanwhile is a stop, not a kill.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    problem = kafka_problem(options)
    if problem is not None:  # nothing started: no store, checkpoint or Spark session
        status.update(state="failed", last_error=problem)
        log.error("the consumer cannot read Kafka: %s", problem)
        return EXIT_FAILED
    if stop_requested.is_set():
        status.update(state="stopped")
        log.info("the consumer stopped before it started")
        return EXIT_OK

    session = None
    created = False
    listener = None
    sampler_stop = threading.Event()
    queries: tuple[StreamingQuery, ...] = ()
    try:
        store: AggregatesWriter
        if options.sink == "delta":
            session, created = spark_session(options)
            store = DeltaStore(
                session, options.table_prefix, options.delta_location, window_ms=options.window_ms, topic=options.topic
            )
            # The Delta ledger is read through Spark: checked here, before anything is created or noted.
            conflict = shape_conflict(options, store)
            if conflict is not None:
                status.update(state="failed", last_error=conflict)
                log.error("%s", conflict)
                return EXIT_USAGE
            store.create()
            record_shape(options)
            start_offsets_sampler(store, options, sampler_stop)
        else:
            store = AggregatesStore(options.store)
            store.create()
            record_shape(options)
            session, created = spark_session(options)
        ship_packages(session)  # before any query: the UDF's workers import backend.tweets.sentiment
        writer = BatchWriter(
            store, options, on_batch=lambda summary: status.update(last_written=summary), cores=core_count(session)
        )
        recorder = ProgressRecorder(store, status, options.topic)
        listener = make_listener(recorder)
        session.streams.addListener(listener)
        previous_query = store.latest_query_id()
        queries = start_queries(session, options, writer)
        if previous_query not in (None, str(queries[0].id)):
            log.warning(
                "the store was written by another query (checkpoint) than %s: records it reads again "
                "(from --starting-offsets) are counted again, or as late",
                options.checkpoint,
            )
        status.update(
            state="running",
            master=spark_master(session),
            query_id=str(queries[0].id),
            archive_query_id=str(queries[1].id),
        )
        log.info("reading '%s' from %s into %s", options.topic, options.bootstrap, sink_description(options))
        error = wait_for(queries, stop_requested, on_stop=stopping)
        recorder.wait_until_recorded(queries)
    except Exception as exception:  # startup failures: a clear line in the log and the status file
        log.exception("the consumer failed")
        error = f"{type(exception).__name__}: {exception}"
    finally:
        sampler_stop.set()
        # A session we did not create (Databricks) goes on: leave it as we found it.
        for query in queries:
            with contextlib.suppress(Exception):
                if query.isActive:
                    query.stop()
        if session is not None and listener is not None:
            with contextlib.suppress(Exception):
                session.streams.removeListener(listener)
        if session is not None and created:
            with contextlib.suppress(Exception):
                session.stop()
    if error is not None:
        error = explained(error, options)
        status.update(state="failed", last_error=error)
        log.error("the consumer failed: %s", error)
        return EXIT_FAILED
    state = "stopped" if stop_requested.is_set() else "finished"
    status.update(state=state)
    log.info("the consumer %s", state)
    return EXIT_OK


# -- what a checkpoint and a store were written with --------------------------------------


def local_folder(location: str) -> Path | None:
    """A checkpoint location as a local folder (a path or a file: URI); None for other URIs."""
    if location.startswith("file://"):
        host, _, path = location.removeprefix("file://").partition("/")
        return Path("/" + path) if host in ("", "localhost") else None  # file://host/... is not this machine
    if location.startswith("file:"):
        return Path(location.removeprefix("file:"))
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:", location) else Path(location)


def sink_description(options: ConsumerOptions) -> str:
    """Where the aggregates go, for messages: the SQLite file, or the Delta tables."""
    if options.sink == "delta":
        where = f" in {options.delta_location}" if options.delta_location else " (managed)"
        return f"the Delta tables {options.table_prefix}*{where}"
    return f"the store {options.store}"


def sink_status(options: ConsumerOptions) -> dict[str, Any]:
    """The status file's account of the sink: which, and its file or tables."""
    if options.sink == "delta":
        from backend.aggregates.interfaces import DELTA_TABLES, table_name

        return {
            "sink": "delta",
            "tables": [table_name(options.table_prefix, table) for table in DELTA_TABLES],
            "delta_location": options.delta_location,
        }
    return {"sink": "sqlite", "store": str(options.store)}


def shape_problems(
    options: ConsumerOptions, stored_window_ms: int | None, recorded: dict[str, Any] | None
) -> list[str]:
    """What differs between this start and what the store holds / the checkpoint's note says."""
    found = []
    if stored_window_ms is not None and stored_window_ms != options.window_ms:
        found.append(
            f"{sink_description(options)} hold{'' if options.sink == 'delta' else 's'} windows of "
            f"{spark_interval(stored_window_ms)}"
        )
    if recorded is not None:
        if recorded.get("window_ms") != options.window_ms:
            found.append(
                f"the checkpoint {options.checkpoint} counted windows of {spark_interval(recorded['window_ms'])}"
            )
        if recorded.get("topic") != options.topic:
            found.append(f"the checkpoint {options.checkpoint} reads topic '{recorded.get('topic')}'")
    return found


def shape_conflict(options: ConsumerOptions, store: AggregatesWriter | None = None) -> str | None:
    """Why the store and checkpoint cannot take this start's counts (another window length or
    topic), or None. Reads only: a refused start writes nothing.

    ``store``: the writer whose window length counts; by default the SQLite store. Delta tables are
    read through Spark: without their ``DeltaStore`` only the checkpoint's note is compared.
    """
    folder = local_folder(options.checkpoint)
    recorded = None
    # The note counts once the checkpoint has planned a batch: a start that failed before any
    # left a note, but nothing counted with it.
    if folder is not None and (folder / JOB_SHAPE_FILE).exists() and any((folder / "aggregates" / "offsets").glob("*")):
        try:
            recorded = json.loads((folder / JOB_SHAPE_FILE).read_text())
            if not isinstance(recorded, dict) or not isinstance(recorded.get("window_ms"), int):
                raise ValueError("not a note of this job")
        except (OSError, ValueError) as error:
            return (
                f"refusing to start: the checkpoint's note {folder / JOB_SHAPE_FILE} cannot be read ({error}), so "
                "whether this start counts like the last one is unknown. Delete the note if the --window and "
                "--topic are the ones the checkpoint was written with, or give a new --store and --checkpoint."
            )
    if store is None and options.sink == "sqlite":
        store = AggregatesStore(options.store)
    found = shape_problems(options, None if store is None else store.window_length_ms(), recorded)
    if not found:
        return None
    new_store = "--table-prefix (or --delta-location)" if options.sink == "delta" else "--store"
    return (
        f"refusing to start: {'; '.join(found)}, but this start asks for windows of "
        f"{spark_interval(options.window_ms)} on topic '{options.topic}'. Going on would mix two countings in one "
        f"store. Start with the --window and --topic they were written with, or give a new {new_store} and "
        "--checkpoint (or delete both to count the topic again from the start)."
    )


def record_shape(options: ConsumerOptions) -> None:
    """Note the topic and window length in a local checkpoint folder, for the next start's check."""
    folder = local_folder(options.checkpoint)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shape = {"topic": options.topic, "window_ms": options.window_ms}
        # Written aside and renamed: a kill -9 mid-write leaves the old note or the new one, never half.
        partial = folder / f".{JOB_SHAPE_FILE}.{os.getpid()}"
        partial.write_text(json.dumps(shape) + "\n")
        os.replace(partial, folder / JOB_SHAPE_FILE)


def explained(error: str, options: ConsumerOptions) -> str:
    """Spark's error, with what it means and what to do when it is a known one."""
    if _DATA_LOSS in error:
        reason = re.search(r"^Reason: (.+)$", error, re.MULTILINE)
        return (
            f"records the job had not read yet are gone from topic '{options.topic}': aged out by the topic's "
            "retention while the job was stopped or behind (or the topic was deleted, or its partitions changed). "
            "The job stops rather than skip them (--on-data-loss fail). Keep the topic's retention (retention.ms) "
            "longer than the job's pauses; to go on from the earliest records still there, start it with "
            f"--on-data-loss skip. Spark said: {_DATA_LOSS}" + (f"; {reason.group(1).strip()}." if reason else ".")
        )
    return error


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per callback otherwise
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = validate(args, local_defaults)
    except OptionsError as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    conflict = shape_conflict(options)
    if conflict is not None:
        print(f"error: {conflict}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from backend.runtime import processes  # psutil: on a bare cluster there may be none, nor a console
    except ImportError:
        return run(options)
    # One consumer per status file (and so per checkpoint the console uses): the console's
    # Start and a terminal cannot both run one.
    try:
        with processes.hold_pid_file(*pid_and_lock_files(options.status_file)):
            return run(options)
    except processes.AlreadyRunning as error:
        print(f"error: the consumer is {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
