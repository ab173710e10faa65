"""``python -m bench consumer``: our Spark job against a Spark query that only parses and counts.

Each reads the same filled topic with ``--available-now`` from a new checkpoint, as its own process with the same
Spark settings; the time is the sum of Spark's micro-batch durations (JVM start-up left out), with each process's
wall time beside it. Printed, never asserted. What each side does: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.support import median, print_table, send_synthetic, temporary_broker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOPIC = "bench-consumer"
MASTER = "local[2]"


def run_timed(command: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` in the project folder, its output captured; and its wall seconds."""
    began = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    return done, time.monotonic() - began


def run_ours(bootstrap: str, topic: str, work: Path) -> tuple[float, float, int, list[str]]:
    """(query seconds, wall seconds, tweets counted, the job's batch log lines) of one run of our job."""
    store = work / "aggregates.sqlite"
    done, wall = run_timed(
        [
            *(sys.executable, "-m", "jobs.consumer", "--bootstrap", bootstrap, "--topic", topic),
            *("--available-now", "--master", MASTER, "--store", str(store)),
            *("--checkpoint", str(work / "checkpoint"), "--archive", str(work / "archive")),
            *("--status-file", str(work / "status.json")),
        ]
    )
    if done.returncode != 0:
        raise RuntimeError(f"our consumer failed ({done.returncode}): {done.stdout[-3000:]}")
    with sqlite3.connect(store) as connection:
        (query_ms,) = connection.execute("SELECT SUM(batch_duration_ms) FROM query_progress").fetchone()
        (tweets,) = connection.execute("SELECT COALESCE(SUM(tweets), 0) FROM tweets_per_window").fetchone()
    lines = [line for line in done.stdout.splitlines() if " consumer: batch " in line]
    return query_ms / 1000, wall, tweets, lines


def run_baseline(bootstrap: str, topic: str, work: Path) -> tuple[float, float, int]:
    """(query seconds, wall seconds, events counted) of one run of the baseline query."""
    done, wall = run_timed(
        [sys.executable, "-m", "bench.consumer", "--baseline", bootstrap, topic, str(work / "checkpoint")]
    )
    if done.returncode != 0:
        raise RuntimeError(f"the baseline failed ({done.returncode}): {done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary["query_s"], wall, summary["events"]


def baseline_query(bootstrap: str, topic: str, checkpoint: str) -> None:
    """The baseline, in its own process: parse created_at, count per window, print a JSON summary."""
    from pyspark.sql import functions as F

    from backend.options.consumer import ConsumerOptions
    from jobs.consumer.kafka_source import read_topic
    from jobs.consumer.session import spark_session

    options = ConsumerOptions(
        bootstrap=bootstrap,
        topic=topic,
        store=Path(),
        checkpoint=checkpoint,
        archive="",
        status_file=Path(),
        window_ms=60_000,
        watermark_ms=120_000,
        trigger_ms=None,
        archive_every_ms=10_000,
        starting_offsets="earliest",
        max_offsets_per_trigger=None,
        master=MASTER,
    )
    session, _created = spark_session(options)  # the same session settings as our job's
    records = read_topic(session, options)
    parsed = records.select(
        F.from_json(F.col("value").cast("string"), "data STRUCT<created_at STRING>").alias("message"), "timestamp"
    )
    event_time = F.coalesce(F.try_to_timestamp("message.data.created_at"), F.col("timestamp")).alias("event_time")
    counts = (
        parsed.select(event_time)
        .withWatermark("event_time", "2 minutes")
        .groupBy(F.window("event_time", "1 minute"))
        .count()
    )
    counted: list[int] = []

    def collect(batch, _batch_id: int) -> None:
        counted.append(sum(row["count"] for row in batch.collect()))

    query = (
        counts.writeStream.outputMode("update")
        .foreachBatch(collect)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    query_ms = sum(progress["batchDuration"] for progress in query.recentProgress)
    events = sum(progress["numInputRows"] for progress in query.recentProgress)
    session.stop()
    print(json.dumps({"query_s": query_ms / 1000, "events": events, "windows_updated": sum(counted)}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the topic (default: 1000000)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each program, in turns (default: 1)")
    args = parser.parse_args(argv)

    print(f"events: {args.events:,}; topic of 4 partitions, one local broker; Spark master {MASTER}")
    load_at_start = os.getloadavg()[0]  # other work on the machine shows in every number here
    ours: list[float] = []
    theirs: list[float] = []
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="tweetstream-bench-consumer-") as folder, temporary_broker() as broker:
        from confluent_kafka.admin import AdminClient

        from backend.kafka.topics import TopicSpec, create_topic

        work = Path(folder)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        create_topic(admin, TopicSpec(TOPIC, partitions=4))
        del admin  # its connections close now, not with refusals when the broker stops
        rate = send_synthetic(broker.bootstrap, TOPIC, args.events, work / "producer-status.json")
        print(f"topic filled by the producer job at {rate:,.0f} events/s", flush=True)
        for run in range(1, args.runs + 1):
            seconds, wall, tweets, lines = run_ours(broker.bootstrap, TOPIC, work / f"ours-{run}")
            ours.append(args.events / seconds)
            print(
                f"run {run}: ours {seconds:.1f} s in Spark ({wall:.1f} s wall), {tweets:,} tweets counted", flush=True
            )
            for line in lines:
                print("   ", line.split(" consumer: ", 1)[1])
            seconds_b, wall_b, events = run_baseline(broker.bootstrap, TOPIC, work / f"baseline-{run}")
            theirs.append(args.events / seconds_b)
            print(
                f"run {run}: baseline {seconds_b:.1f} s in Spark ({wall_b:.1f} s wall), {events:,} events", flush=True
            )
            rows.append(
                [
                    str(run),
                    f"{seconds:.1f}",
                    f"{ours[-1]:,.0f}",
                    f"{seconds_b:.1f}",
                    f"{theirs[-1]:,.0f}",
                    f"{ours[-1] / theirs[-1]:.2f}",
                ]
            )
    if args.runs > 1:
        rows.append(
            ["median", "", f"{median(ours):,.0f}", "", f"{median(theirs):,.0f}", f"{median(ours) / median(theirs):.2f}"]
        )
    print()
    print_table(
        ["run", "ours (s)", "ours (events/s)", "baseline (s)", "baseline (events/s)", "ratio ours/baseline"], rows
    )
    print(f"\ntarget: ratio >= 0.5; measured {median(ours) / median(theirs):.2f}")
    load = f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}"
    print(f"machine load (1-min average) at start / end: {load} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline":  # one baseline run, started by run_baseline
        baseline_query(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
