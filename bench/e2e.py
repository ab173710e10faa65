"""``python -m bench e2e``: latency from each record's Kafka timestamp to its batch's commit in the store.

The consumer runs with ``--trigger 1s`` on a fresh local broker while the producer sends at ``--rate``; a record's
latency is its micro-batch's commit time minus its Kafka timestamp (warm-up left out). Target: p95 <= trigger + 2 x
the median batch duration, processed rows/s >= input rows/s. Printed, never asserted (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.support import print_table, temporary_broker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOPIC = "bench-e2e"
TRIGGER_S = 1.0


@dataclass(frozen=True)
class Batch:
    batch_id: int
    committed_at: float  # seconds since the epoch
    start_offsets: dict[int, int]
    end_offsets: dict[int, int]
    input_rows: int
    input_rows_per_second: float
    processed_rows_per_second: float
    duration_ms: int


def read_batches(store: Path) -> list[Batch]:
    with sqlite3.connect(store) as connection:
        rows = connection.execute(
            """
            SELECT b.batch_id, b.committed_at, p.start_offsets, p.end_offsets, p.input_rows,
                   p.input_rows_per_second, p.processed_rows_per_second, p.batch_duration_ms
            FROM batches AS b JOIN query_progress AS p USING (query_id, batch_id)
            ORDER BY b.batch_id
            """
        ).fetchall()
    batches = []
    previous_end: dict[int, int] = {}
    for batch_id, committed_at, start, end, rows_in, in_rate, out_rate, duration in rows:
        end_offsets = {int(p): o for p, o in json.loads(end).items()}
        # A query's first batch reports no start offsets: it starts where the topic starts.
        start_offsets = {int(p): o for p, o in json.loads(start).items()} or {
            p: previous_end.get(p, 0) for p in end_offsets
        }
        previous_end = end_offsets
        batches.append(Batch(batch_id, committed_at, start_offsets, end_offsets, rows_in, in_rate, out_rate, duration))
    return batches


def read_back(bootstrap: str, topic: str) -> list[tuple[int, int, int]]:
    """(partition, offset, Kafka timestamp in ms) of every record in the topic."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-e2e-reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 50_000_000,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen: list[tuple[int, int, int]] = []
    positions = dict.fromkeys(partitions, 0)
    while any(positions[p] < ends[p] for p in partitions):
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is None:
                seen.append((message.partition(), message.offset(), message.timestamp()[1]))
                positions[message.partition()] = message.offset() + 1
    consumer.close()
    return seen


def latencies(records: list[tuple[int, int, int]], batches: list[Batch], since_ms: int) -> list[float]:
    """Seconds from each record's Kafka timestamp (at or after ``since_ms``) to its batch's commit."""
    by_partition: dict[int, list[Batch]] = {}
    for batch in batches:
        for partition in batch.end_offsets:
            by_partition.setdefault(partition, []).append(batch)
    starts = {p: [b.start_offsets.get(p, 0) for b in bs] for p, bs in by_partition.items()}
    out = []
    for partition, offset, timestamp_ms in records:
        if timestamp_ms < since_ms or partition not in by_partition:
            continue
        index = bisect.bisect_right(starts[partition], offset) - 1
        batch = by_partition[partition][index]
        if index >= 0 and offset < batch.end_offsets[partition]:
            out.append(batch.committed_at - timestamp_ms / 1000)
    return out


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Run:
    """What one run of the pipeline left to measure."""

    began_ms: int  # when the producer started sending
    catch_up_s: float  # from the producer's end to the store holding every event
    exit_code: int  # the consumer's, after SIGTERM
    batches: list[Batch]
    records: list[tuple[int, int, int]]


def _options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench e2e", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="measured minutes (default: 5)")
    parser.add_argument("--rate", type=int, default=5000, help="events per second sent (default: 5000)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds sent first and left out (default: 60)")
    return parser.parse_args(argv)


def _start_consumer(bootstrap: str, work: Path, store: Path, status_file: Path) -> subprocess.Popen[bytes]:
    """The consumer job on the topic, writing ``store``; its output in ``work/consumer.log``."""
    with open(work / "consumer.log", "wb") as log:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "jobs.consumer", "--bootstrap", bootstrap, "--topic", TOPIC),
                *("--trigger", "1s", "--master", "local[2]", "--store", str(store)),
                *("--checkpoint", str(work / "checkpoint"), "--archive", str(work / "archive")),
                *("--status-file", str(status_file)),
            ],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _produce(bootstrap: str, work: Path, args: argparse.Namespace) -> int:
    """Send at ``--rate`` for the warm-up and the measured minutes; the events acknowledged."""
    duration = args.warmup + args.minutes * 60
    produced = subprocess.run(
        [
            *(sys.executable, "-m", "jobs.producer", "--bootstrap", bootstrap, "--topic", TOPIC),
            *("--rate", str(args.rate), "--duration", str(duration), "--seed", "5"),
            *("--status-file", str(work / "producer-status.json")),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sent = json.loads(produced.stdout.strip().splitlines()[-1])["acked"]
    print(f"producer sent {sent:,} events in {duration:.0f} s ({sent / duration:,.0f}/s)", flush=True)
    return sent


def _run(bootstrap: str, work: Path, args: argparse.Namespace) -> Run:
    """The consumer started, the producer run, the consumer caught up and stopped; then the store and topic read."""
    from confluent_kafka.admin import AdminClient

    from backend.kafka.topics import TopicSpec, create_topic
    from backend.runtime.job_files import read_status

    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topic(admin, TopicSpec(TOPIC, partitions=4))
    del admin
    store, status_file = work / "aggregates.sqlite", work / "status.json"
    consumer = _start_consumer(bootstrap, work, store, status_file)
    try:
        wait_until(lambda: (read_status(status_file) or {}).get("state") == "running", 120, "the consumer")
        began_ms = int(time.time() * 1000)
        sent = _produce(bootstrap, work, args)

        def caught_up() -> bool:
            with sqlite3.connect(store) as connection:
                rows = connection.execute("SELECT SUM(tweets) FROM batches").fetchone()[0] or 0
            return rows >= sent

        finished_sending = time.monotonic()
        wait_until(caught_up, 600, "the consumer to catch up")
        catch_up_s = time.monotonic() - finished_sending
        consumer.send_signal(signal.SIGTERM)
        exit_code = consumer.wait(timeout=120)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    return Run(began_ms, catch_up_s, exit_code, read_batches(store), read_back(bootstrap, TOPIC))


def _report(run: Run, args: argparse.Namespace, load_at_start: float) -> None:
    """The latencies and batch figures after the warm-up, and the targets met or not."""
    measured_from = run.began_ms + int(args.warmup * 1000)
    lat = latencies(run.records, run.batches, measured_from)
    measured = [b for b in run.batches if b.committed_at * 1000 >= measured_from]
    durations = [b.duration_ms / 1000 for b in measured]
    median_batch = statistics.median(durations)
    keeping_up = [b for b in measured if b.processed_rows_per_second >= b.input_rows_per_second]
    p50, p95 = percentile(lat, 0.50), percentile(lat, 0.95)
    bound = TRIGGER_S + 2 * median_batch
    rows_in = sum(b.input_rows for b in measured)
    busy = sum(durations)
    print()
    print_table(
        ["measure", "value"],
        [
            ["records measured (after warm-up)", f"{len(lat):,}"],
            ["micro-batches measured", f"{len(measured)}"],
            ["latency p50 (s)", f"{p50:.2f}"],
            ["latency p95 (s)", f"{p95:.2f}"],
            ["latency max (s)", f"{max(lat):.2f}"],
            ["batch duration median (s)", f"{median_batch:.2f}"],
            ["batch duration p95 (s)", f"{percentile(durations, 0.95):.2f}"],
            ["input rows/s (mean of batches)", f"{statistics.mean(b.input_rows_per_second for b in measured):,.0f}"],
            [
                "processed rows/s (mean of batches)",
                f"{statistics.mean(b.processed_rows_per_second for b in measured):,.0f}",
            ],
            ["batches with processed >= input rows/s", f"{len(keeping_up)} of {len(measured)}"],
            ["rows per busy second (all measured batches)", f"{rows_in / busy:,.0f}"],
            ["catch-up after the producer stopped (s)", f"{run.catch_up_s:.1f}"],
            ["consumer exit code after SIGTERM", str(run.exit_code)],
            ["machine load, 1-min average, at start / end", f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}"],
        ],
    )
    verdict = "met" if p95 <= bound else "missed"
    bound_text = f"{TRIGGER_S:.0f} + 2 x {median_batch:.2f} = {bound:.2f} s"
    print(f"\ntarget: p95 <= trigger + 2 x median batch duration = {bound_text}: {verdict} (p95 {p95:.2f} s)")
    print(f"kept up: processed rows/s >= input rows/s in {len(keeping_up)} of {len(measured)} batches")


def main(argv: list[str]) -> int:
    args = _options(argv)
    print(
        f"producer: python -m jobs.producer --rate {args.rate} for {args.warmup:.0f} s warm-up + {args.minutes:g} min; "
        f"consumer: --trigger 1s, master local[2]; topic of 4 partitions, one local broker",
        flush=True,
    )
    load_at_start = os.getloadavg()[0]  # other work on the machine shows in every number here
    with tempfile.TemporaryDirectory(prefix="tweetstream-bench-e2e-") as folder, temporary_broker() as broker:
        run = _run(broker.bootstrap, Path(folder), args)
    _report(run, args, load_at_start)
    return 0
