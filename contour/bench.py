"""``contour bench``: run the system benchmarks of ``bench/`` and print their figures together.

Each benchmark starts a private stack of its own (free ports, a temporary state folder: a
running demo is not touched), measures, and stops it; they run one after another, never
side by side (they would measure each other). The figures are what each script prints with
``--json``; ``contour bench --json`` prints one object keyed by benchmark name, so that runs
can be compared key by key. The run of each is logged to stderr as it goes.

- ``freshness``  (bench/bench_freshness.py): cold demo start and time to populated
  dashboards; source commit → ClickHouse, → marts, → Superset chart data, p50/p95/max under
  the demo load; memory per service;
- ``sustained``  (bench/bench_sustained.py): the highest change rate the whole stack holds
  with bounded lag, per-stage rates, memory per service at that rate;
- ``initial_load`` (bench/bench_initial_load.py): 1M leads + 1M appeals snapshotted through
  to the marts, time and rows/s per stage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from contour.config import PROJECT_ROOT, Config
from contour.errors import ContourError

#: name → (script, arguments that set its length from --minutes)
BENCHMARKS = {
    "freshness": ("bench_freshness.py", lambda m: ["--minutes", str(m)]),
    "sustained": ("bench_sustained.py", lambda m: ["--minutes", str(m)]),
    "initial_load": ("bench_initial_load.py", lambda m: []),
}


class BenchError(ContourError):
    exit_code = 1


def run_one(name: str, minutes: float) -> dict[str, Any]:
    script, length = BENCHMARKS[name]
    command = [sys.executable, str(PROJECT_ROOT / "bench" / script), "--json", *length(minutes)]
    print(f"[{time.strftime('%H:%M:%S')}] contour bench: {name} ({' '.join(command[1:])})",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    # the script's progress goes straight to our stderr; its last stdout line is the JSON
    result = subprocess.run(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise BenchError(f"benchmark {name} failed (exit {result.returncode}); its output "
                         f"above says why")
    figures: dict[str, Any] = json.loads(lines[-1])
    figures["bench_seconds"] = round(time.monotonic() - started)
    return figures


def cmd_bench(_config: Config, args: argparse.Namespace) -> int:
    names = args.only or list(BENCHMARKS)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in names:
        report[name] = run_one(name, args.minutes)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    lines = [f"contour bench, {report['date']}"]
    fresh = report.get("freshness")
    if fresh:
        demo = fresh.get("cold_demo", {})
        lines.append(f"cold demo: up in {demo.get('demo_command_s')} s, every chart with data "
                     f"after {demo.get('all_populated_s')} s (target 300 s)")
        lines.append("freshness under the demo load   p50 s   p95 s   max s")
        for stage, f in fresh.get("stages", {}).items():
            lines.append(f"  {stage:<29} {f.get('p50_s')!s:>5} {f.get('p95_s')!s:>7} "
                         f"{f.get('max_s')!s:>7}")
    sustained = report.get("sustained")
    if sustained:
        lines.append(f"sustained: highest rate held {sustained.get('highest_held_per_s')} "
                     f"changes/s (target 5,000)")
        for r in sustained.get("rates", []):
            lines.append(f"  {r['target_per_s']:>6}/s held={r['held']} rates={r['rates_per_s']}"
                         f" lag growing: {', '.join(r['lag_growing']) or 'none'}")
    load = report.get("initial_load")
    if load:
        lines.append(f"initial load of {load.get('leads'):,} leads + {load.get('appeals'):,} "
                     f"appeals:")
        for stage in ("clickhouse", "staging", "marts"):
            f = load.get(stage) or {}
            lines.append(f"  {stage:<11} {f.get('s')!s:>7} s {f.get('rows_per_s')!s:>9} rows/s")
    rates = (sustained or {}).get("rates") or []
    memory = (rates[-1].get("rss_mib") if rates else None) or (fresh or {}).get("rss_mib")
    if memory:
        lines.append("resident memory per service (MiB): " + ", ".join(
            f"{k} {v}" for k, v in memory.items()))
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench", help="run the system benchmarks (freshness, sustained rate, initial load)",
        description="Run the benchmarks of bench/ one after another, each on a private stack "
                    "of its own (a running demo is untouched), and print their figures: "
                    "freshness to ClickHouse, marts and Superset under the demo load with the "
                    "cold demo's time to populated dashboards; the highest change rate held "
                    "with bounded lag and the per-stage rates; the initial load of 1M leads + "
                    "1M appeals; memory per service. Takes about an hour with the defaults. "
                    "BENCHMARKS.md records the figures.")
    p.add_argument("--only", action="append", choices=list(BENCHMARKS),
                   help="run only this benchmark (repeatable)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="measuring window of the freshness benchmark and of each rate of the "
                        "sustained one (default 10)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object keyed by benchmark (stable keys)")
    p.set_defaults(func=cmd_bench)
