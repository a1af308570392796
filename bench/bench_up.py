"""Benchmark: cold and warm `contour up`, and each service's resident memory when idle.

    .venvs/core/bin/python bench/bench_up.py [--idle-seconds 30] [--runs 1]

Runs the real `contour` command on a private state folder and free loopback ports (a running
demo is not touched):

- cold up: empty state folder (initdb, Airflow and Superset metadata migrations, first start)
- warm up: after `contour down`, state kept
- no-op up: everything already running
- idle memory: resident set of every process of each service after --idle-seconds

Prints a table (and --json prints one JSON object). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import stack_env  # noqa: E402


def contour(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "contour", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"contour {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0,
                        help="wait this long before reading memory (default 30)")
    parser.add_argument("--runs", type=int, default=1, help="cold/warm cycles (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    cold, warm, noop, memory = [], [], [], {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="contour-bench-", dir="/tmp") as tmp:
            env = stack_env(Path(tmp) / "state")
            try:
                cold.append(contour(env, "up"))
                noop.append(contour(env, "up"))
                contour(env, "down")
                warm.append(contour(env, "up"))
                if run == args.runs - 1:
                    time.sleep(args.idle_seconds)
                    status = subprocess.run(
                        [sys.executable, "-m", "contour", "status", "--json"], env=env,
                        cwd=ROOT, capture_output=True, text=True, check=True)
                    for service in json.loads(status.stdout):
                        memory[service["service"]] = {
                            p["name"]: p["rss_bytes"] for p in service["processes"]
                            if p["running"]}  # the demo workload is not started by `up`
            finally:
                subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                               capture_output=True)

    figures = {
        "cold_up_s": round(statistics.median(cold), 1),
        "warm_up_s": round(statistics.median(warm), 1),
        "noop_up_s": round(statistics.median(noop), 2),
        "idle_rss_mib": {proc: round(rss / 2**20) for procs in memory.values()
                         for proc, rss in procs.items()},
        "runs": args.runs,
    }
    figures["idle_rss_mib_total"] = sum(figures["idle_rss_mib"].values())
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"contour up, {args.runs} run(s), median seconds")
    print(f"  cold (empty state folder)   {figures['cold_up_s']:>7.1f} s")
    print(f"  warm (after contour down)   {figures['warm_up_s']:>7.1f} s")
    print(f"  no-op (already running)     {figures['noop_up_s']:>7.2f} s")
    print(f"resident memory after {args.idle_seconds:.0f} s idle (process and its children)")
    for proc, mib in figures["idle_rss_mib"].items():
        print(f"  {proc:<24} {mib:>6} MiB")
    print(f"  {'total':<24} {figures['idle_rss_mib_total']:>6} MiB")


if __name__ == "__main__":
    main()
