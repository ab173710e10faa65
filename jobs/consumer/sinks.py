"""Where the aggregates go: the SQLite store or Delta tables, chosen once (sink_for), and the
foreachBatch writer that turns a micro-batch into one idempotent write to it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backend.aggregates.delta_store import DeltaStore  # no Spark imported here: the session comes later
from backend.aggregates.interfaces import DELTA_TABLES, AggregatesWriter, table_name
from backend.aggregates.sqlite_store import AggregatesStore
from backend.options.consumer import ConsumerOptions
from backend.options.consumer_shape import sink_description
from jobs.consumer.aggregation import sentiment_udf, summarise, windowed
from jobs.consumer.kafka_source import start_offsets_sampler
from jobs.consumer.parsing import parse_records

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("consumer")


class Sink:
    """One sink of the options: what messages and the status file call it, and how its store is made."""

    status: dict[str, Any]  # the status file's account of the sink: which, and its file or tables
    store_needs_spark = False  # whether the store (and so the shape check of it) is read through Spark only

    def __init__(self, options: ConsumerOptions) -> None:
        self.options = options
        self.description = sink_description(options)  # for messages: "the store <file>", "the Delta tables..."

    def writer(self, spark: Callable[[], SparkSession]) -> AggregatesWriter:
        """The store the batches go to (not created yet); ``spark`` gives the job's session."""
        raise NotImplementedError

    def start(self) -> None:
        """Start what runs beside the queries, once the store is created."""

    def close(self) -> None:
        """Stop what start() started."""


class SqliteSink(Sink):
    """The SQLite store the local console reads."""

    def __init__(self, options: ConsumerOptions) -> None:
        super().__init__(options)
        self.status = {"sink": "sqlite", "store": str(options.store)}

    def writer(self, spark: Callable[[], SparkSession]) -> AggregatesWriter:
        return AggregatesStore(self.options.store)


class DeltaSink(Sink):
    """Delta tables (a Databricks job's), with a thread sampling the topic's offsets into one of them:
    the console on Azure cannot reach the brokers to compute the lag itself."""

    store_needs_spark = True

    def __init__(self, options: ConsumerOptions) -> None:
        super().__init__(options)
        self.status = {
            "sink": "delta",
            "tables": [table_name(options.table_prefix, table) for table in DELTA_TABLES],
            "delta_location": options.delta_location,
        }
        self._store: DeltaStore | None = None
        self._sampler_stop = threading.Event()

    def writer(self, spark: Callable[[], SparkSession]) -> AggregatesWriter:
        options = self.options
        # The tables are read and written through Spark: the session starts before them.
        self._store = DeltaStore(
            spark(), options.table_prefix, options.delta_location, window_ms=options.window_ms, topic=options.topic
        )
        return self._store

    def start(self) -> None:
        assert self._store is not None, "writer() makes the store start() samples into"
        start_offsets_sampler(self._store, self.options, self._sampler_stop)

    def close(self) -> None:
        self._sampler_stop.set()


def sink_for(options: ConsumerOptions) -> Sink:
    """The sink the options ask for: the one place that tells SQLite from Delta."""
    return DeltaSink(options) if options.sink == "delta" else SqliteSink(options)


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
