"""Benchmark: end-to-end freshness, source commit → visible in a PostgreSQL mart.

    .venvs/core/bin/python bench/bench_freshness.py [--minutes 30]

Starts ``contour demo --detach`` on a private stack (free ports, temporary state folder; a
running demo is not touched): every service, the dialer and CRM workload at the demo's load,
and Airflow's ``contour_realtime`` DAG (continuous). Measured with heartbeat rows, not
estimated: each CDC relay commits a heartbeat row in its source database every
``CONTOUR_CDC_HEARTBEAT_SECONDS`` (``contour_cdc.heartbeat``: source, ts = commit time, seq);
the benchmark reads each heartbeat's commit time from the source and polls the mart
``marts.pipeline_heartbeats`` once a second; when the mart moves from seq N to M, every
heartbeat N+1..M counts with ``first seen − its commit time``. Prints p50/p95/max over the window.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contour.airflow_api import AirflowApi  # noqa: E402
from contour.config import Config  # noqa: E402
from tests.conftest import stack_env  # noqa: E402


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def realtime_runs(config: Config, since: datetime) -> dict[str, object]:
    """How the contour_realtime runs that started in the window went: count, median run
    duration and interval, median duration of each task (where the cycle's time goes)."""
    def parse(ts: str | None) -> datetime | None:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None

    api = AirflowApi(config)
    runs = [r for r in api.runs("contour_realtime", limit=200)
            if (parse(r["start_date"]) or since) >= since and r["end_date"]]
    if not runs:
        return {}
    starts = sorted(parse(r["start_date"]) for r in runs)  # type: ignore[type-var]
    durations: dict[str, list[float]] = {}
    for run in runs:
        for ti in api.task_instances("contour_realtime", run["dag_run_id"]):
            if ti.get("duration") is not None:
                durations.setdefault(ti["task_id"], []).append(float(ti["duration"]))
    return {
        "runs": len(runs), "succeeded": sum(r["state"] == "success" for r in runs),
        "median_run_s": round(statistics.median(
            (parse(r["end_date"]) - parse(r["start_date"])).total_seconds()  # type: ignore[operator]
            for r in runs), 1),
        "median_interval_s": round(statistics.median(
            (b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)), 1)
        if len(starts) > 1 else None,
        "median_task_s": {task: round(statistics.median(v), 1) for task, v in durations.items()},
    }


def whole_run_delays(conn: psycopg.Connection, committed: dict[tuple[str, int], datetime],
                     since: datetime) -> list[float]:
    """Per heartbeat committed in the window: seconds until the end of the first realtime run
    whose freshness mark (newest source commit exported, per source) covers it — when every
    realtime mart, not only pipeline_heartbeats, holds it (``ops.freshness_marks`` and the
    run's ``ops.freshness`` rows)."""
    published = conn.execute(
        "SELECT m.source, m.newest_source_ts, max(f.recorded_at) FROM ops.freshness_marks m "
        "JOIN ops.freshness f USING (run_id) WHERE m.newest_source_ts IS NOT NULL "
        "GROUP BY m.run_id, m.source, m.newest_source_ts").fetchall()
    delays = []
    for (source, _), ts in committed.items():
        if ts < since:
            continue
        ends = [end for s, mark, end in published if s == source and mark >= ts]
        if ends:
            delays.append((min(ends) - ts).total_seconds())
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="measuring window")
    parser.add_argument("--settle-minutes", type=float, default=3.0,
                        help="run this long before measuring (first DAG runs, snapshots)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="contour-bench-fresh-"))
    env = stack_env(root / "state") | {"CONTOUR_CDC_HEARTBEAT_SECONDS": "5",
                                         "CONTOUR_AIRFLOW_DAGS_PAUSED": "false"}
    config = Config.from_env(env)
    samples: list[float] = []
    whole: list[float] = []
    runs: dict[str, object] = {}
    try:
        print("contour demo --detach …", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, "-m", "contour", "demo", "--detach"],
                                env=env, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"contour demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        time.sleep(args.settle_minutes * 60)
        # every heartbeat's commit time, read from the sources as they are written, so that
        # when the mart jumps from seq N to M, each of N+1..M is counted with its own delay
        committed: dict[tuple[str, int], datetime] = {}
        visible: dict[str, int] = {}  # source → newest seq visible in the mart
        end = time.monotonic() + args.minutes * 60
        window_start = datetime.now(UTC)
        last_report = time.monotonic()
        sources = {name: psycopg.connect(config.pg_dsn(config.cdc_source(name).database),
                                         autocommit=True) for name in config.cdc_source_names}
        with psycopg.connect(config.pg_dsn("warehouse"), autocommit=True) as conn:
            while time.monotonic() < end:
                for source_conn in sources.values():
                    for source, seq, ts in source_conn.execute(
                            "SELECT source, seq, ts FROM contour_cdc.heartbeat"):
                        committed.setdefault((source, seq), ts)
                try:
                    rows = conn.execute("SELECT source, seq FROM marts.pipeline_heartbeats"
                                        ).fetchall()
                except psycopg.errors.UndefinedTable:
                    rows = []
                now = datetime.now(UTC)
                for source, seq in rows:
                    before = visible.get(source)
                    if before is not None and seq > before:
                        samples += [(now - committed[(source, s)]).total_seconds()
                                    for s in range(before + 1, seq + 1)
                                    if (source, s) in committed]
                    visible[source] = max(seq, before or seq)
                if time.monotonic() - last_report > 60 and samples:
                    last_report = time.monotonic()
                    print(f"  {len(samples)} heartbeats, p95 so far "
                          f"{quantile(samples, 0.95):.1f} s", file=sys.stderr, flush=True)
                time.sleep(1)
            whole = whole_run_delays(conn, committed, window_start)
        for source_conn in sources.values():
            source_conn.close()
        runs = realtime_runs(config, window_start)
    finally:
        subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    if not samples:
        sys.exit("no heartbeat reached marts.pipeline_heartbeats: is contour_realtime running?")
    figures = {"window_minutes": args.minutes, "heartbeats": len(samples),
               "p50_s": round(statistics.median(samples), 1),
               "p95_s": round(quantile(samples, 0.95), 1), "max_s": round(max(samples), 1),
               "target_p95_s": 60, "realtime_runs": runs,
               "every_mart": {"heartbeats": len(whole),
                              "p50_s": round(statistics.median(whole), 1) if whole else None,
                              "p95_s": round(quantile(whole, 0.95), 1) if whole else None}}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"source commit → visible in marts.pipeline_heartbeats over {args.minutes:.0f} min "
          f"({len(samples)} heartbeats): p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
          f"max {figures['max_s']} s (target p95 ≤ 60 s: "
          f"{'met' if figures['p95_s'] <= 60 else 'MISSED'})")
    every = figures["every_mart"]
    print(f"source commit → the end of the realtime run that built every mart with it "
          f"({every['heartbeats']} heartbeats): p50 {every['p50_s']} s, p95 {every['p95_s']} s")
    if runs:
        tasks = ", ".join(f"{k} {v} s" for k, v in runs["median_task_s"].items())  # type: ignore[union-attr]
        print(f"contour_realtime in the window: {runs['runs']} runs ({runs['succeeded']} "
              f"succeeded), median run {runs['median_run_s']} s, median start-to-start "
              f"{runs['median_interval_s']} s; median per task: {tasks}")


if __name__ == "__main__":
    main()
