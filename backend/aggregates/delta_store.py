"""The aggregates store as Delta tables: what the Spark consumer writes with ``--sink delta`` (on Databricks).

Each micro-batch appends its rows to the tables of ``DELTA_TABLES``, exactly once without a transaction across
tables: Delta's ``txnAppId``/``txnVersion`` skip an append a table already has, and the ``batches`` ledger is
appended last. Locally the tables live under ``location``; on Databricks they are managed tables (docs/design.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from backend.aggregates.interfaces import DELTA_TABLES, check_table_prefix, table_name
from backend.aggregates.records import MAX_RAW_CHARS, BatchResult, Progress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The order the tables of a batch are appended in: ``batches`` last (the ledger says "whole").
BATCH_TABLES = (
    "tweets_per_window",
    "hashtags_per_window",
    "languages_per_window",
    "late_tweets_per_window",
    "dead_letters",
    "batches",
)
Row = tuple[Any, ...]


def window_ms_of(result: BatchResult) -> int | None:
    """The window length of a batch's windows (None when it has none): a window's end minus its start."""
    from datetime import datetime

    for window in result.windows:
        start, end = (
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") for value in (window.window_start, window.window_end)
        )
        return int((end - start).total_seconds() * 1000)
    return None


def batch_rows(result: BatchResult, committed_at: float, window_ms: int | None = None) -> dict[str, list[Row]]:
    """The rows one micro-batch appends to each table, in the columns' order of DELTA_TABLES (pure).

    ``batches`` always gets its one row; a table with nothing from this batch gets an empty list.
    """
    q, b = result.query_id, result.batch_id
    return {
        "tweets_per_window": [
            (q, b, w.window_start, w.window_end, w.tweets, w.retweets, w.replies, w.quotes, float(w.sentiment_sum))
            for w in result.windows
        ],
        "hashtags_per_window": [(q, b, h.window_start, h.key, h.tweets) for h in result.hashtags],
        "languages_per_window": [(q, b, r.window_start, r.key, r.tweets) for r in result.languages],
        "late_tweets_per_window": [(q, b, r.window_start, r.tweets) for r in result.late],
        "dead_letters": [
            (q, b, d.topic, d.partition, d.offset, d.error, None if d.raw is None else d.raw[:MAX_RAW_CHARS])
            for d in result.dead_letters
        ],
        "batches": [ledger_row(result, committed_at, window_ms)],
    }


def ledger_row(result: BatchResult, committed_at: float, window_ms: int | None = None) -> Row:
    """The batch's row of ``batches``: its totals, watermark and window length (pure)."""
    return (
        result.query_id,
        result.batch_id,
        committed_at,
        sum(w.tweets for w in result.windows),
        sum(r.tweets for r in result.late),
        len(result.dead_letters),
        result.max_event_time_ms,
        result.watermark_ms,
        window_ms if window_ms is not None else window_ms_of(result),
    )


def progress_row(progress: Progress, topic: str | None, recorded_at: float) -> Row:
    """One ``query_progress`` row; offsets as JSON objects ``{"partition": offset}`` (pure)."""
    return (
        progress.query_id,
        progress.batch_id,
        progress.recorded_at or recorded_at,
        topic,
        progress.input_rows,
        float(progress.input_rows_per_second),
        float(progress.processed_rows_per_second),
        progress.batch_duration_ms,
        json.dumps(progress.start_offsets, sort_keys=True),
        json.dumps(progress.end_offsets, sort_keys=True),
    )


def topic_offset_rows(topic: str, offsets: Mapping[int, tuple[int, int]], sampled_at: float) -> list[Row]:
    """``topic_offsets`` rows from ``{partition: (low, high)}``, by partition (pure)."""
    return [(sampled_at, topic, int(p), int(low), int(high)) for p, (low, high) in sorted(offsets.items())]


class DeltaStore:
    """The Delta tables ``{table_prefix}{table}`` written through ``session`` (an AggregatesWriter).

    ``location``: a folder or URI under which each table has its folder (local runs); None for
    managed tables (Databricks). ``window_ms``: the job's window length, kept in each ledger row so
    that a restart with another one is refused (else taken from the batch's windows).
    """

    def __init__(
        self,
        session: SparkSession,
        table_prefix: str,
        location: str | None,
        window_ms: int | None = None,
        topic: str | None = None,
    ) -> None:
        self.session = session
        self.prefix = check_table_prefix(table_prefix)
        self.location = None if location is None else location.rstrip("/")
        self.window_ms = window_ms
        self.topic = topic
        # The ledger as far as this job needs it, read once and then kept up to date by write_batch:
        # reading the Delta table before every batch cost 1-2 s a batch on 2 cores. Exactly once does
        # not rest on it: were it stale (another job appending to the same tables), Delta's
        # txnAppId/txnVersion would still skip a batch's second append.
        self._committed: dict[str, set[int]] = {}  # query id -> its batch ids in the ledger
        self._max_event_time_ms: int | None = None
        self._max_event_time_read = False

    def name(self, table: str) -> str:
        return table_name(self.prefix, table)

    def create(self) -> None:
        """Create (or, locally, register again) every table; a no-op for those that exist."""
        schema = self.prefix.rpartition(".")[0]
        if schema and self.location is not None:
            # The local in-memory catalog starts empty; on Databricks the schema is an admin's to make.
            self.session.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, columns in DELTA_TABLES.items():
            where = f" LOCATION '{self.location}/{table}'" if self.location is not None else ""
            self.session.sql(f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({columns}) USING delta{where}")

    # -- reads of the ledger -----------------------------------------------------------------

    def _batches(self) -> DataFrame | None:
        """The ledger, or None while there is none (nothing is created by reading)."""
        name = self.name("batches")
        if self.session.catalog.tableExists(name):
            return self.session.table(name)
        if self.location is None:
            return None
        try:  # a folder written by an earlier run, not registered in this session's catalog yet
            return self.session.read.format("delta").load(f"{self.location}/batches")
        except Exception:  # AnalysisException: no such path, or not a Delta table
            return None

    def is_committed(self, query_id: str, batch_id: int) -> bool:
        from pyspark.sql import functions as F

        if query_id not in self._committed:
            batches = self._batches()
            rows = [] if batches is None else batches.where(F.col("query_id") == query_id).select("batch_id").collect()
            self._committed[query_id] = {int(row[0]) for row in rows}
        return batch_id in self._committed[query_id]

    def _latest(self, column: str) -> Any:
        """``column`` of the latest ledger row that has it, or None."""
        from pyspark.sql import functions as F

        batches = self._batches()
        if batches is None:
            return None
        row = batches.where(F.col(column).isNotNull()).orderBy(F.col("committed_at").desc()).select(column).first()
        return None if row is None else row[0]

    def latest_query_id(self) -> str | None:
        """The query (Spark checkpoint) that wrote the latest batch, if any."""
        return self._latest("query_id")

    def window_length_ms(self) -> int | None:
        """The window length of the latest batch (None while there is none); reads only."""
        value = self._latest("window_ms")
        return None if value is None else int(value)

    def max_event_time_ms(self) -> int | None:
        """The latest event time of any batch written so far (the watermark's base)."""
        from pyspark.sql import functions as F

        if not self._max_event_time_read:
            batches = self._batches()
            row = None if batches is None else batches.agg(F.max("max_event_time_ms")).first()
            self._max_event_time_ms = None if row is None or row[0] is None else int(row[0])
            self._max_event_time_read = True
        return self._max_event_time_ms

    # -- appends -----------------------------------------------------------------------------

    def _append(self, table: str, rows: list[Row], app_id: str | None = None, version: int | None = None) -> None:
        frame = self.session.createDataFrame(rows, schema=DELTA_TABLES[table])
        writer = frame.write.format("delta").mode("append")
        if app_id is not None and version is not None:
            # Delta skips this append when the table has a transaction of app_id at this version or later.
            writer = writer.option("txnAppId", app_id).option("txnVersion", version)
        writer.saveAsTable(self.name(table))

    def write_batch(self, result: BatchResult) -> bool:
        """Append one micro-batch to every table, ``batches`` last; False when the ledger has it already."""
        if self.is_committed(result.query_id, result.batch_id):
            return False
        rows = batch_rows(result, time.time(), self.window_ms)
        # The tables before the ledger at once, each its own Delta commit: a commit is mostly the
        # driver's waiting (log, files), so two cores overlap them. A table without rows from this
        # batch gets no append: a later batch's txnVersion is higher all the same.
        parts = [table for table in BATCH_TABLES[:-1] if rows[table]]
        with ThreadPoolExecutor(max_workers=max(1, len(parts)), thread_name_prefix="delta-append") as pool:
            for done in [pool.submit(self._append, t, rows[t], result.query_id, result.batch_id) for t in parts]:
                done.result()  # the first failure fails the batch, before its ledger row: Spark replays it
        # Stamped now: the end-to-end latency is measured to the ledger's append.
        self._append("batches", [ledger_row(result, time.time(), self.window_ms)], result.query_id, result.batch_id)
        self._committed.setdefault(result.query_id, set()).add(result.batch_id)
        if result.max_event_time_ms is not None and self._max_event_time_read:
            self._max_event_time_ms = max(self._max_event_time_ms or result.max_event_time_ms, result.max_event_time_ms)
        return True

    def record_progress(self, progress: Progress) -> None:
        """Append Spark's report of a batch (a replayed batch's second report is skipped by Delta)."""
        row = progress_row(progress, self.topic, time.time())
        self._append("query_progress", [row], f"{progress.query_id}-progress", progress.batch_id)

    def record_topic_offsets(self, topic: str, offsets: Mapping[int, tuple[int, int]], sampled_at: float) -> None:
        """Append the topic's first and next offsets per partition, sampled at ``sampled_at`` (s since the epoch)."""
        rows = topic_offset_rows(topic, offsets, sampled_at)
        if rows:
            self._append("topic_offsets", rows)
