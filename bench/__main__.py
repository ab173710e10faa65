"""``python -m bench NAME [options]``: run one benchmark (``--help`` lists them)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "producer": "our synthetic producer against Kafka's ProducerPerformance tool",
    "consumer": "our Spark job against a Spark query that only parses and counts",
    "e2e": "latency from a record's Kafka timestamp to its batch's commit in the store",
    "sentiment": "our VADER scorer against vaderSentiment's own, row by row",
    "dashboard": "a rerun of the Consumer page with 24 h in the store against an empty store",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        print("usage: python -m bench NAME [options]\n\nbenchmarks:")
        for name, what in BENCHMARKS.items():
            print(f"  {name:10} {what}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
