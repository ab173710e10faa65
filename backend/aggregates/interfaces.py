"""The aggregates store as two interfaces, so that pages and the Spark job never know which store they use.

``AggregatesWriter`` is what the Spark job's foreachBatch and progress listener call (SQLite, or Delta tables with
``--sink delta``); ``AggregatesReader`` is what pages read (SQLite, or the Delta tables through a SQL warehouse).
Both take and give the records of ``backend.aggregates.records``. The Delta tables (``DELTA_TABLES``) and how they
stay exactly once: docs/design.md, "The aggregates store".
"""

from __future__ import annotations

import re
from typing import Protocol

from backend.aggregates.records import BatchResult, DeadLetter, Progress, Ranked, TimeBound, WindowRow

SINKS = ("sqlite", "delta")
DEFAULT_TABLE_PREFIX = "tweetstream_"

# Table -> its columns as Spark SQL DDL. Names are these with the job's --table-prefix in front
# (a prefix may hold a catalog and schema: "main.tweetstream.tweetstream_").
DELTA_TABLES: dict[str, str] = {
    "tweets_per_window": (
        "query_id STRING, batch_id BIGINT, window_start STRING, window_end STRING, tweets BIGINT, "
        "retweets BIGINT, replies BIGINT, quotes BIGINT, sentiment_sum DOUBLE"
    ),
    "hashtags_per_window": "query_id STRING, batch_id BIGINT, window_start STRING, hashtag STRING, tweets BIGINT",
    "languages_per_window": "query_id STRING, batch_id BIGINT, window_start STRING, lang STRING, tweets BIGINT",
    "late_tweets_per_window": "query_id STRING, batch_id BIGINT, window_start STRING, tweets BIGINT",
    "dead_letters": (
        "query_id STRING, batch_id BIGINT, topic STRING, `partition` INT, `offset` BIGINT, error STRING, raw STRING"
    ),
    # The exactly-once ledger, appended last in a batch; window_ms lets a restart refuse another window length.
    "batches": (
        "query_id STRING, batch_id BIGINT, committed_at DOUBLE, tweets BIGINT, late_tweets BIGINT, "
        "dead_letters BIGINT, max_event_time_ms BIGINT, watermark_ms BIGINT, window_ms BIGINT"
    ),
    # Spark's progress report of each micro-batch; offsets as JSON objects {"partition": offset}.
    "query_progress": (
        "query_id STRING, batch_id BIGINT, recorded_at DOUBLE, topic STRING, input_rows BIGINT, "
        "input_rows_per_second DOUBLE, processed_rows_per_second DOUBLE, batch_duration_ms BIGINT, "
        "start_offsets STRING, end_offsets STRING"
    ),
    # The topic's first and next offsets per partition, sampled by the job where it reaches the brokers
    # (the console on a laptop cannot): the console's lag = high minus the processed offsets above.
    "topic_offsets": "sampled_at DOUBLE, topic STRING, `partition` INT, low BIGINT, high BIGINT",
}


# What a --table-prefix may be: letters, digits and "_", after up to two "identifier." parts (a schema, or
# a catalog and a schema). The job, the reader and the wizard's plan all check it with this one pattern.
TABLE_PREFIX = re.compile(r"(?:[A-Za-z0-9_]+\.){0,2}[A-Za-z0-9_]+")
TABLE_PREFIX_RULE = (
    "letters, digits and '_', optionally after a schema, or a catalog and a schema, each with a dot: "
    "'tweetstream_', 'main.tweetstream.tweetstream_'"
)


class ReadError(RuntimeError):
    """A read of the aggregates failed (a SQL warehouse that refused or did not answer in time): pages show it."""


def check_table_prefix(prefix: str) -> str:
    """``prefix`` when it makes valid table names (it is put into SQL as it is); else ValueError."""
    if not TABLE_PREFIX.fullmatch(prefix):
        raise ValueError(f"'{prefix}' is not a table prefix: {TABLE_PREFIX_RULE}")
    return prefix


def table_name(prefix: str, table: str) -> str:
    """``prefix`` + ``table``: ``tweetstream_batches``, ``main.tweetstream.tweetstream_batches``."""
    return f"{prefix}{table}"


class AggregatesWriter(Protocol):
    """What the Spark consumer writes through (one implementation per sink)."""

    def create(self) -> None:
        """Create the tables when missing (a no-op when they exist)."""

    def is_committed(self, query_id: str, batch_id: int) -> bool: ...

    def latest_query_id(self) -> str | None: ...

    def window_length_ms(self) -> int | None:
        """The window length the store's counts were made with; None when it holds none."""

    def max_event_time_ms(self) -> int | None:
        """The latest event time of the committed batches (the job's watermark counts back from it)."""

    def write_batch(self, result: BatchResult) -> bool:
        """Add one micro-batch; False when it was written before (a replay)."""

    def record_progress(self, progress: Progress) -> None: ...


class AggregatesReader(Protocol):
    """What the pages read (one implementation per target)."""

    def windows(self, since: TimeBound = None, until: TimeBound = None) -> list[WindowRow]: ...

    def latest_window_start(self) -> str | None: ...

    def top_hashtags(self, since: TimeBound = None, until: TimeBound = None, limit: int = 10) -> list[Ranked]: ...

    def languages(self, since: TimeBound = None, until: TimeBound = None) -> list[Ranked]: ...

    def late_tweets(self, since: TimeBound = None, until: TimeBound = None) -> int: ...

    def dead_letter_count(self) -> int: ...

    def dead_letter_sample(self, limit: int = 20) -> list[DeadLetter]: ...

    def progress(self, limit: int = 100) -> list[Progress]: ...

    def latest_progress(self) -> Progress | None: ...
