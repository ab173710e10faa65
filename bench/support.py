"""What the benchmarks share: a throwaway local broker and a table printer."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backend import local_kafka
from backend.local_kafka import LocalBroker


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def temporary_broker(heap: str = "1g") -> Iterator[LocalBroker]:
    """A fresh one-node broker on free ports, its data in a temporary folder, stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="tweetstream-bench-") as folder:
        broker = LocalBroker(state_dir=Path(folder), port=_free_port(), controller_port=_free_port(), heap=heap)
        local_kafka.start(broker, timeout=120)
        try:
            yield broker
        finally:
            local_kafka.stop(broker)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A Markdown table, so the output can go straight into a note or the README."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def median(values: list[float]) -> float:
    return statistics.median(values)
