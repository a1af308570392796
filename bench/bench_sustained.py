"""Benchmark: the highest source change rate the whole pipeline holds, and where it stops.

    .venvs/core/bin/python bench/bench_sustained.py [--rates 1000,2500,5000] [--minutes 10]

On a private stack with every service running (``contour up``: PostgreSQL, the broker,
ClickHouse, the CDC relays, the loader, the exporter, the dbt worker, Airflow with the
``contour_realtime`` DAG, Superset), a writer commits changes to the dialer's database at a
fixed rate: every 100 ms one transaction inserting finished calls into ``call_attempts``
and counting an attempt on as many leads (``UPDATE leads``) — half inserts, half updates,
rows the marts build on. Each rate runs ``--minutes``; meanwhile, every 10 s:

- per-stage rates: changes committed (the writer), published by the CDC relay (its
  ``events_total``), landed in ClickHouse (rows of ``history.dialer__call_attempts`` and
  ``history.dialer__leads`` ingested in the window: every version), merged into staging
  (``staging._export_changes``), built into ``marts.fct_call_attempts`` (rows exported in
  the window);
- per-stage lag, with the CDC heartbeat (committed every 5 s through the same relay and
  loader): now − the newest heartbeat in ClickHouse, in staging, in the marts.

A rate is held when the writer reached ≥ 95 % of it and no stage's lag grows over the second
half of the window (least-squares slope ≤ 0.05 s/s, i.e. ≤ 15 s over 5 minutes) — lag
bounded, not just small. The run stops at the first rate not held; the stage whose lag grows
(or whose rate falls short) is the bottleneck. Resident memory per service is read at the end
of each rate. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_freshness import memory_mib  # noqa: E402
from bench.bench_marts import contour  # noqa: E402
from contour.config import Config  # noqa: E402
from ingestion.landing.loader import clickhouse_client  # noqa: E402
from tests.conftest import stack_env  # noqa: E402

#: a finished outbound call: answered, talked, wrapped up (every KPI timing present)
INSERT_CALLS = """
INSERT INTO call_attempts (direction, campaign_id, lead_id, queue_id, operator_id, phone, state,
    outcome, disposition, originated_at, ringing_at, answered_at, queued_at, connected_at,
    ended_at, wrap_ended_at, closed_at, updated_at)
SELECT 'outbound', %(campaign)s, l.lead_id, NULL, NULL, '+10000000000', 'closed', 'answered',
       'sale', now() - interval '95 s', now() - interval '93 s', now() - interval '80 s',
       now() - interval '80 s', now() - interval '79 s', now() - interval '20 s',
       now() - interval '5 s', now(), now()
FROM unnest(%(leads)s::bigint[]) AS l(lead_id)
"""
UPDATE_LEADS = "UPDATE leads SET attempts = attempts + 1 WHERE lead_id = ANY(%(leads)s)"


class Writer(threading.Thread):
    """Commits ``rate`` changes a second (half inserted calls, half lead updates) in one
    transaction every 100 ms; counts what it committed."""

    def __init__(self, dsn: str, rate: int, leads: list[int], campaign: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.rate, self.leads, self.campaign = dsn, rate, leads, campaign
        self.committed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        per_tick = max(1, self.rate // 20)  # inserts (and as many updates) per 100 ms
        position = 0
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            tick = time.monotonic()
            while not self.stop.is_set():
                batch = [self.leads[(position + i) % len(self.leads)] for i in range(per_tick)]
                position += per_tick
                with conn.transaction():
                    conn.execute(INSERT_CALLS, {"campaign": self.campaign, "leads": batch})
                    conn.execute(UPDATE_LEADS, {"leads": sorted(set(batch))})
                self.committed += 2 * per_tick
                tick += 0.1
                time.sleep(max(0.0, tick - time.monotonic()))


class Probe:
    """Counters and heartbeat lags of each stage, read from the running stack."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ch = clickhouse_client(config)
        self.wh = psycopg.connect(config.pg_dsn("warehouse"), autocommit=True)

    def counters(self, since: float) -> dict[str, float]:
        metrics = self.config.cdc_source("dialer").state_dir / "dialer.metrics.json"
        published = json.loads(metrics.read_text())["events_total"] if metrics.exists() else 0
        landed = 0
        for table in ("call_attempts", "leads"):
            # (the loader creates a table with its first change: none before the writer)
            if self.ch.command(f"EXISTS TABLE history.dialer__{table}"):
                landed += self.ch.query(
                    f"SELECT count() FROM history.dialer__{table} WHERE _ingested_at >= "
                    f"fromUnixTimestamp64Milli({int(since * 1000)})").result_rows[0][0]
        staged = self.wh.execute(
            "SELECT coalesce(sum(rows_changed), 0) FROM staging._export_changes WHERE "
            "table_name IN ('dialer__call_attempts', 'dialer__leads') AND exported_at >= "
            "to_timestamp(%s)", (since,)).fetchone()[0]
        built = self.wh.execute(
            "SELECT count(*) FROM marts.fct_call_attempts WHERE _exported_at >= to_timestamp(%s)",
            (since,)).fetchone()[0]
        return {"published": float(published), "landed": float(landed),
                "staged": float(staged), "marts": float(built)}

    def lags(self) -> dict[str, float | None]:
        """now − the newest dialer heartbeat each stage holds."""
        def age(value: Any) -> float | None:
            return None if value is None else round(time.time() - float(value), 1)
        out: dict[str, float | None] = {}
        try:
            out["clickhouse"] = age(self.ch.query(
                "SELECT toUnixTimestamp64Milli(max(_source_ts)) / 1000 FROM "
                "raw.dialer__contour_cdc__heartbeat").result_rows[0][0])
        except Exception:  # noqa: BLE001 - not landed yet
            out["clickhouse"] = None
        for stage, query in (
                ("staging", "SELECT extract(epoch FROM max(ts)) FROM "
                            "staging.dialer__contour_cdc__heartbeat"),
                ("marts", "SELECT extract(epoch FROM max(ts)) FROM marts.pipeline_heartbeats "
                          "WHERE source = 'dialer'")):
            try:
                out[stage] = age(self.wh.execute(query).fetchone()[0])
            except psycopg.Error:
                out[stage] = None
        return out


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t, y)."""
    if len(points) < 3:
        return None
    mt = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / den if den else None


def run_rate(config: Config, env: dict[str, str], rate: int, minutes: float,
             leads: list[int], campaign: int) -> dict[str, Any]:
    probe = Probe(config)
    start = time.time()
    before = probe.counters(start)
    writer = Writer(config.pg_dsn("dialer"), rate, leads, campaign)
    writer.start()
    lag_series: dict[str, list[tuple[float, float]]] = {}
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        time.sleep(10)
        now = time.time()
        for stage, lag in probe.lags().items():
            if lag is not None:
                lag_series.setdefault(stage, []).append((now - start, lag))
        print(f"  {rate}/s, {now - start:.0f}s: committed {writer.committed:,}; lag "
              + ", ".join(f"{k} {v[-1][1]}s" for k, v in lag_series.items() if v),
              file=sys.stderr, flush=True)
    elapsed = time.time() - start
    after = probe.counters(start)
    memory = memory_mib(env)
    writer.stop.set()
    writer.join(timeout=30)
    rates = {"committed": round(writer.committed / elapsed)}
    for stage in ("published", "landed", "staged"):
        delta = after[stage] - (before[stage] if stage == "published" else 0)
        rates[stage] = round(delta / elapsed)
    rates["marts_call_rows"] = round(after["marts"] / elapsed)
    half = (minutes * 60) / 2
    slopes = {stage: slope([p for p in points if p[0] >= half])
              for stage, points in lag_series.items()}
    growing = [s for s, v in slopes.items() if v is None or v > 0.05]
    held = writer.committed / elapsed >= 0.95 * rate and not growing
    return {
        "target_per_s": rate, "held": held, "rates_per_s": rates,
        "lag_s": {stage: {"end": points[-1][1] if points else None,
                          "max": max(y for _, y in points) if points else None,
                          "slope_s_per_s": None if slopes[stage] is None
                          else round(slopes[stage], 4)}
                  for stage, points in lag_series.items()},
        "lag_growing": growing, "rss_mib": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,2500,5000,7500",
                        help="changes/s to try, in order (default 1000,2500,5000,7500)")
    parser.add_argument("--minutes", type=float, default=10.0, help="window per rate")
    parser.add_argument("--leads", type=int, default=100_000, help="leads seeded")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the stack's state folder (the services' logs) afterwards")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    root = Path(tempfile.mkdtemp(prefix="contour-bench-sustained-"))
    env = stack_env(root / "state") | {"CONTOUR_CDC_HEARTBEAT_SECONDS": "5",
                                         "CONTOUR_AIRFLOW_DAGS_PAUSED": "false"}
    config = Config.from_env(env)
    results: list[dict[str, Any]] = []
    try:
        print("contour up (every service) …", file=sys.stderr, flush=True)
        contour(env, "up")
        contour(env, "dialer", "seed", "--operators", "20", "--leads", str(args.leads),
                "--campaigns", "2", "--replace")
        with psycopg.connect(config.pg_dsn("dialer")) as conn:
            leads = [r[0] for r in conn.execute("SELECT lead_id FROM leads ORDER BY lead_id")]
            campaign = conn.execute("SELECT min(campaign_id) FROM campaigns").fetchone()[0]
        print("waiting 120 s for the snapshot to land and the first realtime runs",
              file=sys.stderr, flush=True)
        time.sleep(120)
        for rate in rates:
            result = run_rate(config, env, rate, args.minutes, leads, campaign)
            results.append(result)
            if not result["held"]:
                break
            time.sleep(60)  # drain between rates
    finally:
        subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                       capture_output=True)
        if args.keep_state:
            print(f"kept the state folder (logs in state/logs): {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    held = [r["target_per_s"] for r in results if r["held"]]
    figures = {"minutes_per_rate": args.minutes, "highest_held_per_s": max(held, default=None),
               "target_per_s": 5000, "rates": results}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"sustained load, every service running, {args.minutes:.0f} min per rate "
          f"(changes/s; lag = now − newest heartbeat at the stage)")
    print(f"  {'target':>7} {'committed':>9} {'published':>9} {'landed':>7} {'staged':>7} "
          f"{'marts':>6}  {'lag CH':>7} {'lag stg':>7} {'lag marts':>9}  held")
    for r in results:
        rt, lag = r["rates_per_s"], r["lag_s"]

        def end(stage: str, lag: dict[str, Any] = lag) -> str:
            return f"{lag[stage]['end']}" if stage in lag else "—"
        print(f"  {r['target_per_s']:>7} {rt['committed']:>9} {rt['published']:>9} "
              f"{rt['landed']:>7} {rt['staged']:>7} {rt['marts_call_rows']:>6}  "
              f"{end('clickhouse'):>7} {end('staging'):>7} {end('marts'):>9}  "
              f"{'yes' if r['held'] else 'NO (lag growing: ' + ', '.join(r['lag_growing']) + ')'}")
    print(f"highest rate held: {figures['highest_held_per_s']} changes/s (target ≥ 5,000)")
    if results:
        print("resident memory per service at the last rate (MiB): " + ", ".join(
            f"{k} {v}" for k, v in results[-1]["rss_mib"].items()))


if __name__ == "__main__":
    main()
