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
from dataclasses import dataclass, field
from pathlib import Path

from bench.stages import recorded_shares, recording_options
from bench.support import median, print_table, send_synthetic, temporary_broker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOPIC = "bench-consumer"
MASTER = "local[2]"


def run_timed(command: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` in the project folder, its output captured; and its wall seconds."""
    began = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, env=env)
    return done, time.monotonic() - began


@dataclass(frozen=True)
class Run:
    """One program's run over the topic: each micro-batch's (input rows, seconds), and its wall time."""

    batches: list[tuple[int, float]]
    wall_s: float
    counted: int  # tweets in the store (ours) or events counted (the baseline)
    lines: list[str] = field(default_factory=list)  # our job's batch log lines

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.batches)

    def warm(self) -> tuple[int, float]:
        """(rows, seconds) of the batches after the first (the warm-up)."""
        rest = self.batches[1:]
        return sum(rows for rows, _ in rest), sum(seconds for _, seconds in rest)


def run_ours(
    bootstrap: str, topic: str, work: Path, max_offsets: int | None = None, recording: Path | None = None
) -> Run:
    """One run of our job; ``recording``: a Java Flight Recording of its JVM goes there."""
    store = work / "aggregates.sqlite"
    env = dict(os.environ)
    if recording is not None:
        env["JAVA_TOOL_OPTIONS"] = recording_options(recording)
    done, wall = run_timed(
        [
            *(sys.executable, "-m", "jobs.consumer", "--bootstrap", bootstrap, "--topic", topic),
            *("--available-now", "--master", MASTER, "--store", str(store)),
            *("--checkpoint", str(work / "checkpoint"), "--archive", str(work / "archive")),
            *("--status-file", str(work / "status.json")),
            *(("--max-offsets-per-trigger", str(max_offsets)) if max_offsets else ()),
        ],
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"our consumer failed ({done.returncode}): {done.stdout[-3000:]}")
    with sqlite3.connect(store) as connection:
        batches = connection.execute(
            "SELECT input_rows, batch_duration_ms / 1000.0 FROM query_progress ORDER BY batch_id"
        ).fetchall()
        (tweets,) = connection.execute("SELECT COALESCE(SUM(tweets), 0) FROM tweets_per_window").fetchone()
    lines = [line.split(" consumer: ", 1)[1] for line in done.stdout.splitlines() if " consumer: batch " in line]
    return Run([(int(rows), float(seconds)) for rows, seconds in batches], wall, tweets, lines)


def run_baseline(bootstrap: str, topic: str, work: Path, max_offsets: int | None = None) -> Run:
    """One run of the baseline query."""
    done, wall = run_timed(
        [
            *(sys.executable, "-m", "bench.consumer", "--baseline", bootstrap, topic, str(work / "checkpoint")),
            str(max_offsets or 0),
        ]
    )
    if done.returncode != 0:
        raise RuntimeError(f"the baseline failed ({done.returncode}): {done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return Run([tuple(batch) for batch in summary["batches"]], wall, summary["events"])


def baseline_query(bootstrap: str, topic: str, checkpoint: str, max_offsets: int) -> None:
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
        max_offsets_per_trigger=max_offsets or None,
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
    batches = [(p["numInputRows"], p["batchDuration"] / 1000) for p in query.recentProgress if p["numInputRows"]]
    session.stop()
    summary = {"batches": batches, "events": sum(rows for rows, _ in batches), "windows_updated": sum(counted)}
    print(json.dumps(summary))


def rate_row(label: str, ours: tuple[int, float], theirs: tuple[int, float]) -> list[str]:
    """One table row: each side's seconds and events/s, and the ratio of the rates."""
    ours_rate, their_rate = ours[0] / ours[1], theirs[0] / theirs[1]
    return [
        label,
        f"{ours[1]:.1f}",
        f"{ours_rate:,.0f}",
        f"{theirs[1]:.1f}",
        f"{their_rate:,.0f}",
        f"{ours_rate / their_rate:.2f}",
    ]


def side_by_side(title: str, pairs: list[tuple[tuple[int, float], tuple[int, float]]]) -> float:
    """Print one table of runs (ours, baseline) and their medians; the ratio of the median rates."""
    rows = [rate_row(str(run), ours, theirs) for run, (ours, theirs) in enumerate(pairs, start=1)]
    ours_rates = [rows_ / seconds for (rows_, seconds), _ in pairs]
    their_rates = [rows_ / seconds for _, (rows_, seconds) in pairs]
    ratio = median(ours_rates) / median(their_rates)
    if len(pairs) > 1:
        seconds = (median([o[1] for o, _ in pairs]), median([t[1] for _, t in pairs]))
        rows.append(
            ["median", f"{seconds[0]:.1f}", f"{median(ours_rates):,.0f}", f"{seconds[1]:.1f}",
             f"{median(their_rates):,.0f}", f"{ratio:.2f}"]
        )  # fmt: skip
    print(f"\n{title}")
    print_table(["run", "ours (s)", "ours (events/s)", "baseline (s)", "baseline (events/s)", "ratio"], rows)
    return ratio


def report_run(name: str, run: int, result: Run) -> None:
    batches = ", ".join(f"{rows:,} in {seconds:.1f} s" for rows, seconds in result.batches)
    seconds = f"{result.seconds:.1f} s in Spark ({result.wall_s:.1f} s wall)"
    # The count shows that both sides read every event (tweets in the store; events in the baseline's windows).
    print(f"run {run}: {name} {seconds}, {result.counted:,} counted: {batches}", flush=True)
    for line in result.lines:
        print("   ", line)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the topic (default: 1000000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each program and figure, in turns (default: 3)")
    parser.add_argument(
        "--warm", type=int, default=500_000, help="records per batch of the warm runs (default: 500000)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run (stage shares)")
    args = parser.parse_args(argv)
    if args.events < 2 * args.warm:
        parser.error(f"--events must be at least twice --warm ({2 * args.warm:,}): a warm-up batch, then one measured")

    print(f"events: {args.events:,}; topic of 4 partitions, one local broker; Spark master {MASTER}")
    load_at_start = os.getloadavg()[0]  # other work on the machine shows in every number here
    cold: list[tuple[tuple[int, float], tuple[int, float]]] = []
    warm: list[tuple[tuple[int, float], tuple[int, float]]] = []
    shares: list[tuple[str, float]] = []
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
            ours = run_ours(broker.bootstrap, TOPIC, work / f"ours-{run}")
            report_run("ours, cold", run, ours)
            theirs = run_baseline(broker.bootstrap, TOPIC, work / f"baseline-{run}")
            report_run("baseline, cold", run, theirs)
            cold.append(((args.events, ours.seconds), (args.events, theirs.seconds)))
        for run in range(1, args.runs + 1):
            # Batches of --warm records: the first warms the JVM and the Python workers up, the next is measured.
            ours = run_ours(broker.bootstrap, TOPIC, work / f"ours-warm-{run}", max_offsets=args.warm)
            report_run("ours, warm", run, ours)
            theirs = run_baseline(broker.bootstrap, TOPIC, work / f"baseline-warm-{run}", max_offsets=args.warm)
            report_run("baseline, warm", run, theirs)
            warm.append((ours.warm(), theirs.warm()))
        if not args.no_profile:
            recording = work / "ours.jfr"
            profiled = run_ours(broker.bootstrap, TOPIC, work / "ours-profiled", recording=recording)
            report_run("ours, cold, under Java Flight Recorder", 1, profiled)
            shares = recorded_shares(recording)
    cold_ratio = side_by_side(f"cold: the whole topic ({args.events:,} events) from a new checkpoint", cold)
    warm_ratio = side_by_side(
        f"warm: {args.warm:,} events after a warm-up batch of as many (--max-offsets-per-trigger {args.warm})", warm
    )
    if shares:
        print("\nwhere our job's executor time goes (Java Flight Recorder samples of the task threads, cold run)")
        print_table(["stage", "share"], [[stage, f"{share:.0%}"] for stage, share in shares])
    load = f"{load_at_start:.1f} / {os.getloadavg()[0]:.1f}"
    print(f"\nmachine load (1-min average) at start / end: {load} on {os.cpu_count()} cores")
    print(f"cold: target ratio >= 0.5; measured {cold_ratio:.2f}")
    print(f"warm: target ratio >= 0.6; measured {warm_ratio:.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--baseline":  # one baseline run, started by run_baseline
        baseline_query(*sys.argv[2:5], int(sys.argv[5]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
