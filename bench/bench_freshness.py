"""Benchmark: end-to-end freshness under the demo load, source commit → ClickHouse raw,
→ PostgreSQL mart, → Superset chart data; and each service's resident memory meanwhile.

    .venvs/core/bin/python bench/bench_freshness.py [--minutes 30] [--json]

Starts ``contour demo --detach`` on a private stack (free ports, temporary state folder; a
running demo is not touched): every service, the dialer and CRM workload at the demo's load,
and Airflow's ``contour_realtime`` DAG (continuous). Measured with heartbeat rows, not
estimated: each CDC relay commits a heartbeat row in its source database every
``CONTOUR_CDC_HEARTBEAT_SECONDS`` (``contour_cdc.heartbeat``: source, ts = commit time, seq);
the benchmark reads each heartbeat's commit time from the source and, once a second, where
each stage has got to; a heartbeat's delay at a stage is ``first seen there − its commit
time``. Stages:

- ``clickhouse``: the newest seq per source in ``raw.<source>__contour_cdc__heartbeat``;
- ``mart``: the newest seq per source in ``marts.pipeline_heartbeats``;
- ``superset_clickhouse_chart``: the pipeline dashboard's "CDC lag" chart (ClickHouse), read
  through Superset's chart data API as a dashboard reads it (its cache included): a heartbeat
  is visible once its commit time ≤ query time − the lag it shows;
- ``superset_mart_chart``: the "Mart freshness now" chart (PostgreSQL marts), the same way,
  with the age it shows for ``pipeline_heartbeats``.

Before the window (``--settle-minutes`` from the cold start): how long ``contour demo`` takes
on an empty state folder and until every chart of the dashboards returns data (the demo's
target: populated dashboards within 5 minutes). Near the window's end: each service's
resident memory. Heartbeats already visible at a stage's first reading are not counted.
Prints p50/p95/max per stage over the window (``--json``: one object, stable keys). Not a
test: it asserts nothing.
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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_marts import contour  # noqa: E402
from contour.airflow_api import AirflowApi  # noqa: E402
from contour.config import Config  # noqa: E402
from contour.superset_assets import ASSETS_DIR, client_for  # noqa: E402
from ingestion.landing.loader import clickhouse_client  # noqa: E402
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


Heartbeat = tuple[str, int]  # (source, seq)
#: what a stage shows: the newest seq per source, or the newest commit time it holds
Visible = dict[str, int] | datetime


class Stage:
    """Where heartbeats become visible, and when each was first seen there."""

    def __init__(self, name: str, read: Callable[[], Visible]) -> None:
        self.name = name
        self.read = read
        self.seen: dict[Heartbeat, datetime | None] = {}  # None: visible at the first reading
        self.readings = 0
        self.error = ""

    def observe(self, committed: dict[Heartbeat, datetime]) -> None:
        try:
            visible = self.read()
        except Exception as exc:  # noqa: BLE001 - a stage not built yet, a restart
            self.error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        now = datetime.now(UTC)
        for (source, seq), ts in committed.items():
            if (source, seq) in self.seen:
                continue
            shown = visible >= ts if isinstance(visible, datetime) else \
                seq <= visible.get(source, -1)
            if shown:
                self.seen[(source, seq)] = now if self.readings else None
        self.readings += 1

    def delays(self, committed: dict[Heartbeat, datetime], since: datetime) -> list[float]:
        return [(seen - committed[h]).total_seconds() for h, seen in self.seen.items()
                if seen is not None and committed[h] >= since]


def seq_per_source(rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    return {str(source): int(seq) for source, seq in rows if seq is not None}


def chart_visible(config: Config, chart_file: str,
                  pick: Callable[[list[dict[str, Any]]], float]) -> Callable[[], Visible]:
    """A chart's newest visible commit: (time its data was computed) − (the age it shows).
    The chart is looked up at the first reading (errors there are the stage's errors)."""
    name = yaml.safe_load((ASSETS_DIR / "charts" / chart_file).read_text())["slice_name"]
    found: dict[str, Any] = {}

    def read() -> Visible:
        if not found:
            api = client_for(config).login()
            found["api"], found["id"] = api, next(
                c["id"] for c in api.find_all("chart", ("id", "slice_name"))
                if c["slice_name"] == name)
        asked = datetime.now(UTC)
        result = found["api"].chart_data(found["id"], force=False)["result"][0]
        computed = asked
        if result.get("is_cached") and result.get("cached_dttm"):
            computed = datetime.fromisoformat(result["cached_dttm"]).replace(tzinfo=UTC)
        return computed - timedelta(seconds=float(pick(result["data"])))
    return read


def stages(config: Config, sources: list[str]) -> list[Stage]:
    ch = clickhouse_client(config)
    wh = psycopg.connect(config.pg_dsn("warehouse"), autocommit=True)
    raw = " UNION ALL ".join(f"SELECT source, max(seq) FROM raw.{s}__contour_cdc__heartbeat "
                             f"GROUP BY source" for s in sources)

    def mart_age(rows: list[dict[str, Any]]) -> float:
        return float(next(r for r in rows if "pipeline_heartbeats" in r.values())["age_max_s"])

    return [
        Stage("clickhouse", lambda: seq_per_source(ch.query(raw).result_rows)),
        Stage("mart", lambda: seq_per_source(wh.execute(
            "SELECT source, seq FROM marts.pipeline_heartbeats").fetchall())),
        Stage("superset_clickhouse_chart", chart_visible(
            config, "ph_cdc_lag.yaml", lambda rows: max(float(r["capture_lag"]) for r in rows))),
        Stage("superset_mart_chart", chart_visible(config, "ph_freshness.yaml", mart_age)),
    ]


def populated(config: Config, started: float, timeout: float) -> dict[str, Any]:
    """Seconds from ``started`` until every chart of the dashboards returns data (a row with
    a value), polled every 10 s; charts still empty after ``timeout`` are listed."""
    api = client_for(config).login()
    charts = {c["id"]: c["slice_name"] for c in api.find_all("chart", ("id", "slice_name"))}
    first: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(first) < len(charts) and time.monotonic() < deadline:
        for chart_id in charts:
            if chart_id in first:
                continue
            try:
                rows = api.chart_data(chart_id)["result"][0]["data"]
            except Exception:  # noqa: BLE001 - a mart not built yet
                continue
            if any(v is not None for row in rows for v in row.values()):
                first[chart_id] = round(time.monotonic() - started, 1)
        print(f"  {time.monotonic() - started:.0f} s after the start: {len(first)} of "
              f"{len(charts)} charts have data", file=sys.stderr, flush=True)
        time.sleep(10)
    return {"charts": len(charts), "populated": len(first),
            "all_populated_s": max(first.values()) if len(first) == len(charts) else None,
            "last_populated_s": max(first.values()) if first else None,
            "median_chart_s": statistics.median(first.values()) if first else None,
            "populated_within_300_s": sum(1 for s in first.values() if s <= 300),
            "empty": sorted(name for chart_id, name in charts.items() if chart_id not in first)}


def summary(delays: list[float]) -> dict[str, float | int | None]:
    if not delays:
        return {"heartbeats": 0, "p50_s": None, "p95_s": None, "max_s": None}
    return {"heartbeats": len(delays), "p50_s": round(statistics.median(delays), 1),
            "p95_s": round(quantile(delays, 0.95), 1), "max_s": round(max(delays), 1)}


def memory_mib(env: dict[str, str]) -> dict[str, int]:
    """Resident memory per service (its processes and their children), from contour status."""
    status = subprocess.run([sys.executable, "-m", "contour", "status", "--json"], env=env,
                            cwd=ROOT, capture_output=True, text=True)
    return {s["service"]: round(sum(p["rss_bytes"] for p in s["processes"] if p["running"])
                                / 2**20) for s in json.loads(status.stdout or "[]")}


#: targets of issue 10: p95 source commit → ClickHouse and → PostgreSQL marts
TARGETS = {"clickhouse": 5.0, "mart": 60.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="measuring window")
    parser.add_argument("--settle-minutes", type=float, default=10.0,
                        help="from the cold start, run this long before measuring (the "
                             "charts' first data is timed meanwhile; default 10)")
    parser.add_argument("--watch-minutes", type=float, default=10.0,
                        help="how long to wait for every chart to have data (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="contour-bench-fresh-"))
    env = stack_env(root / "state") | {"CONTOUR_CDC_HEARTBEAT_SECONDS": "5",
                                         "CONTOUR_AIRFLOW_DAGS_PAUSED": "false"}
    config = Config.from_env(env)
    committed: dict[Heartbeat, datetime] = {}
    measured: list[Stage] = []
    whole: list[float] = []
    runs: dict[str, object] = {}
    memory: dict[str, int] = {}
    demo: dict[str, Any] = {}
    try:
        print("contour demo --detach (cold: an empty state folder) …", file=sys.stderr,
              flush=True)
        cold_start = time.monotonic()
        demo = {"demo_command_s": round(contour(env, "demo", "--detach"), 1)}
        print(f"  demo up in {demo['demo_command_s']} s; waiting for every chart to have "
              f"data", file=sys.stderr, flush=True)
        demo |= populated(config, cold_start, timeout=args.watch_minutes * 60)
        time.sleep(max(0.0, args.settle_minutes * 60 - (time.monotonic() - cold_start)))
        # every heartbeat's commit time, read from the sources as they are written, so that
        # when a stage jumps from seq N to M, each of N+1..M is counted with its own delay
        names = list(config.cdc_source_names)
        measured = stages(config, names)
        end = time.monotonic() + args.minutes * 60
        window_start = datetime.now(UTC)
        last_report = time.monotonic()
        sources = {name: psycopg.connect(config.pg_dsn(config.cdc_source(name).database),
                                         autocommit=True) for name in names}
        while time.monotonic() < end:
            for source_conn in sources.values():
                for source, seq, ts in source_conn.execute(
                        "SELECT source, seq, ts FROM contour_cdc.heartbeat"):
                    committed.setdefault((source, seq), ts)
            for stage in measured:
                stage.observe(committed)
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                print("  " + "; ".join(
                    f"{s.name} p95 {summary(s.delays(committed, window_start))['p95_s']} s"
                    for s in measured), file=sys.stderr, flush=True)
            if end - time.monotonic() < 60 and not memory:
                memory = memory_mib(env)  # near the end of the window, under the same load
            time.sleep(1)
        with psycopg.connect(config.pg_dsn("warehouse"), autocommit=True) as conn:
            whole = whole_run_delays(conn, committed, window_start)
        for source_conn in sources.values():
            source_conn.close()
        runs = realtime_runs(config, window_start)
    finally:
        subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    figures: dict[str, Any] = {
        "window_minutes": args.minutes,
        "cold_demo": demo,
        "stages": {s.name: summary(s.delays(committed, window_start)) | (
            {"last_error": s.error} if s.error else {}) for s in measured},
        "every_mart": summary(whole),
        "targets_p95_s": TARGETS,
        "realtime_runs": runs,
        "rss_mib": memory,
    }
    if not figures["stages"].get("mart", {}).get("heartbeats"):
        sys.exit(f"no heartbeat reached marts.pipeline_heartbeats: is contour_realtime "
                 f"running? {json.dumps(figures)}")
    if args.json:
        print(json.dumps(figures))
        return
    print(f"cold start: `contour demo` returned after {demo.get('demo_command_s')} s; "
          f"{demo.get('populated')} of {demo.get('charts')} charts had data, the last of them "
          f"{demo.get('last_populated_s')} s after the start (median chart "
          f"{demo.get('median_chart_s')} s; {demo.get('populated_within_300_s')} within 300 s; "
          f"target: populated dashboards within 300 s)"
          + (f"; still empty: {', '.join(demo['empty'])}" if demo.get("empty") else ""))
    print(f"source commit → visible, over {args.minutes:.0f} min at the demo load "
          f"(heartbeats every 5 s per source):")
    print(f"  {'stage':<27} {'heartbeats':>10} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  target")
    for name, f in {**figures["stages"], "every_mart (end of run)": figures["every_mart"]
                    }.items():
        target = TARGETS.get(name)
        verdict = "" if target is None or f["p95_s"] is None else \
            f"p95 ≤ {target:.0f} s: {'met' if f['p95_s'] <= target else 'MISSED'}"
        print(f"  {name:<27} {f['heartbeats']:>10} {f['p50_s']!s:>7} {f['p95_s']!s:>7} "
              f"{f['max_s']!s:>7}  {verdict}")
    if runs:
        tasks = ", ".join(f"{k} {v} s" for k, v in runs["median_task_s"].items())  # type: ignore[union-attr]
        print(f"contour_realtime in the window: {runs['runs']} runs ({runs['succeeded']} "
              f"succeeded), median run {runs['median_run_s']} s, median start-to-start "
              f"{runs['median_interval_s']} s; median per task: {tasks}")
    if memory:
        print("resident memory per service near the end of the window (MiB): " + ", ".join(
            f"{k} {v}" for k, v in memory.items()) + f"; total {sum(memory.values())}")


if __name__ == "__main__":
    main()
