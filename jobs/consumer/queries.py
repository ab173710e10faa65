"""The job's two streaming queries (aggregates through foreachBatch, the raw Parquet archive):
starting them, waiting for them, and stopping them between micro-batches."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from backend.options.consumer import ConsumerOptions, spark_interval
from jobs.consumer.kafka_source import read_topic
from jobs.consumer.options import inside

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from jobs.consumer.sinks import BatchWriter

AGGREGATES_QUERY = "tweetstream-aggregates"
ARCHIVE_QUERY = "tweetstream-archive"
# Seconds SIGTERM waits for the running micro-batch to finish before it stops the query anyway
# (safe either way: an unfinished batch is replayed at the next start, a written one skipped).
STOP_GRACE_SECONDS = 60.0


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
