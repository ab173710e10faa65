"""python -m tests.faults [NAME ...]: run the fault scenarios (all, or those named) and print
one result line each; exit 1 when any fails. ``--list`` names them.

Each scenario works in ``test-artifacts/faults/<name>/`` (brokers, job state, logs): removed
when it passes, kept for reading when it fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict

from backend.settings import PROJECT_ROOT

# Importing a module registers its scenarios.
from tests.faults import bad_settings, broker_faults, exposure, secrets_canary, spark_faults  # noqa: F401
from tests.faults.harness import Result, run_scenario, scenarios

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "faults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the scenarios' names and exit")
    args = parser.parse_args(argv)
    known = scenarios()
    if args.list:
        print("\n".join(known))
        return 0
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"no scenario named {', '.join(unknown)} (there are: {', '.join(known)})")
    chosen = [name for name in known if not args.names or name in args.names]

    results: list[Result] = []
    began = time.monotonic()
    for name in chosen:
        workdir = ARTIFACTS / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        print(f"== {name}", flush=True)
        result = run_scenario(name, known[name], workdir)
        results.append(result)
        print(f"{result.line()}   ({result.seconds:.1f} s)", flush=True)
        if result.ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"    kept for reading: {workdir}", flush=True)

    print(f"\n== {len(results)} scenarios in {time.monotonic() - began:.0f} s")
    for result in results:
        print(result.line())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
