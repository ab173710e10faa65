"""What the benchmarks share: a throwaway local broker and a table printer."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backend.kafka import local_broker
from backend.kafka.local_broker import LocalBroker

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    """`count` different free ports: every probe stays open until all are known, so none repeats."""
    import socket

    with contextlib.ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
        return ports


@contextlib.contextmanager
def temporary_broker(heap: str = "1g") -> Iterator[LocalBroker]:
    """A fresh one-node broker on free ports, its data in a temporary folder, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="tweetstream-bench-") as folder:
        port, controller_port = free_ports(2)
        broker = LocalBroker(state_dir=Path(folder), port=port, controller_port=controller_port, heap=heap)
        local_broker.start(broker, timeout=120)
        try:
            yield broker
        finally:
            local_broker.stop(broker)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A Markdown table, so the output can go straight into a note or the README."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def median(values: list[float]) -> float:
    return statistics.median(values)


def send_synthetic(bootstrap: str, topic: str, count: int, status_file: Path) -> float:
    """Send ``count`` synthetic tweets (seed 1) with the producer job, every one acknowledged.

    Returns its events per second from the first send to the last acknowledgement.
    """
    done = subprocess.run(
        [
            *(sys.executable, "-m", "jobs.producer", "--bootstrap", bootstrap, "--topic", topic),
            *("--count", str(count), "--seed", "1", "--rate", "0", "--status-file", str(status_file)),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the producer failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if summary["acked"] != count:
        raise RuntimeError(f"the producer had {summary['acked']} of {count} events acknowledged")
    return summary["acked"] / summary["sending_s"]
