"""``python -m backend.azure plan --config FILE``: the Azure plan as JSON, without touching Azure.

Exit codes: 0 the plan was printed; 2 a bad config (every fault on stderr, one per line);
1 the repository's own price table or poms could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.azure.plan import build_plan
from backend.azure.plan_config import ConfigError, load_config
from backend.azure.prices import PriceTableError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.azure",
        description="The Azure setup (HDInsight Kafka, Databricks Spark, peered networks). Plan only, for now.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan",
        help="print what would be created, in order, with estimated hourly costs (JSON); creates nothing",
    )
    plan.add_argument("--config", type=Path, required=True, help="a .toml or .json plan config")
    args = parser.parse_args(argv)

    try:
        result = build_plan(load_config(args.config))
    except ConfigError as exc:
        print(f"error: {args.config} cannot be planned:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except (PriceTableError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
