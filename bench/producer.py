"""``python -m bench producer``: our synthetic producer against Kafka's own perf tool.

Both on the same fresh local broker, with the same topic settings, acks, idempotence, compression, linger and batch
size, in alternating runs. What differs is printed: the Java tool sends random letters without a key, ours
real-looking JSON keyed by tweet id, generated in Python (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import re
import subprocess

from backend.kafka.local_broker import tool_command
from backend.kafka.topics import TopicSpec, create_topic
from backend.tweets.synthetic import SyntheticTweets
from bench.support import median, print_table, send_synthetic, temporary_broker

_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")

COMMON_PROPS = {
    "acks": "all",
    "enable.idempotence": "true",
    "compression.type": "lz4",
    "linger.ms": "20",
    "batch.size": "1000000",
}


def average_value_bytes(sample: int = 20_000) -> int:
    generator = SyntheticTweets(seed=1)
    return round(sum(len(generator.tweet_json()[1].encode()) for _ in range(sample)) / sample)


def run_java(bootstrap: str, topic: str, records: int, record_size: int) -> float:
    """Records per second as Kafka's ProducerPerformance reports them."""
    props = [f"bootstrap.servers={bootstrap}"] + [f"{k}={v}" for k, v in COMMON_PROPS.items()]
    command = tool_command(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        *props,
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    matches = _SUMMARY.findall(done.stdout)
    if done.returncode != 0 or not matches:
        raise RuntimeError(f"ProducerPerformance failed: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    sent, per_second, _mb = matches[-1]
    if int(sent) != records:
        raise RuntimeError(f"ProducerPerformance sent {sent} of {records}")
    return float(per_second)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench producer", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000, help="records per run (default: 500000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default: 3)")
    args = parser.parse_args(argv)

    record_size = average_value_bytes()
    print(f"records per run: {args.records}; record size: {record_size} bytes (our average JSON value)")
    print(f"settings of both: {COMMON_PROPS}, topics of 4 partitions, one local broker")
    ours: list[float] = []
    theirs: list[float] = []
    with temporary_broker() as broker:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for run in range(args.runs):
            for who in ("ours", "java"):
                topic = f"bench-{who}-{run}"
                create_topic(admin, TopicSpec(topic, partitions=4))
                if who == "ours":
                    ours.append(send_synthetic(broker.bootstrap, topic, args.records, broker.state_dir / "status.json"))
                    print(f"run {run + 1}: ours {ours[-1]:,.0f} records/s", flush=True)
                else:
                    theirs.append(run_java(broker.bootstrap, topic, args.records, record_size))
                    print(f"run {run + 1}: ProducerPerformance {theirs[-1]:,.0f} records/s", flush=True)
        del admin  # its connections close before the broker stops, rather than logging refusals

    pairs = enumerate(zip(ours, theirs, strict=True), start=1)
    rows = [[str(run), f"{o:,.0f}", f"{t:,.0f}", f"{o / t:.2f}"] for run, (o, t) in pairs]
    rows.append(["median", f"{median(ours):,.0f}", f"{median(theirs):,.0f}", f"{median(ours) / median(theirs):.2f}"])
    print()
    print_table(["run", "ours (records/s)", "ProducerPerformance (records/s)", "ratio ours/theirs"], rows)
    print(f"\ntarget: ratio >= 0.5; measured {median(ours) / median(theirs):.2f}")
    return 0
