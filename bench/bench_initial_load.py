"""Benchmark: initial load of 1,000,000 leads + 1,000,000 appeals through to the marts.

    .venvs/core/bin/python bench/bench_initial_load.py [--leads 1000000] [--appeals 1000000]

On a private stack (free ports, temporary state folder): PostgreSQL first; the dialer's
database seeded with ``contour dialer seed`` (``--leads``) and the CRM's with its reference
data and ``--appeals`` appeals written in bulk (plain SQL: 1 customer with one phone contact
per 5 appeals, 30 days of arrivals, every status, answered and resolved ones timed), then the
pipeline started on the full databases: the CDC relays snapshot every table (``op: r``),
the loader lands them in ClickHouse, the exporter merges them into staging, one ``contour
warehouse refresh`` builds the marts. Times each stage from the pipeline's start until it
holds every lead and appeal (the relays' snapshot state and event count are reported too):

- ClickHouse (``current.dialer__leads`` and ``current.crm__appeals`` counts);
- staging (``staging.dialer__leads`` and ``staging.crm__appeals`` counts);
- marts (``marts.fct_appeals`` count after the refresh; leads have no fact of their own: the
  refresh's time is for every realtime model).

Prints seconds and rows/s per stage (``--json``: one object). Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_marts import contour  # noqa: E402
from contour.config import Config  # noqa: E402
from dialer_core import crm  # noqa: E402
from dialer_core.crm import reference  # noqa: E402
from ingestion.landing.loader import clickhouse_client  # noqa: E402
from tests.conftest import stack_env  # noqa: E402

#: seconds a `contour` command may take
COMMAND_TIMEOUT = 3600
#: appeals in bulk, consistent with the CRM's rules (linked ⇔ linked_appeal_id)
APPEALS_SQL = """
INSERT INTO customers (customer_id, phone, full_name, created_at, updated_at)
SELECT g, '+7900' || lpad(g::text, 7, '0'), 'Customer ' || g, now() - interval '60 days',
       now() - interval '60 days'
FROM generate_series(1, %(customers)s) g;
INSERT INTO contacts (contact_id, customer_id, channel, address, created_at)
SELECT g, g, 'call', '+7900' || lpad(g::text, 7, '0'), now() - interval '60 days'
FROM generate_series(1, %(customers)s) g;
INSERT INTO appeals (appeal_id, customer_id, contact_id, channel, status, queue_id, region_id,
    topic_id, opened_at, first_response_at, resolved_at, closed_at, updated_at)
WITH ref AS (
    SELECT (SELECT array_agg(queue_id ORDER BY queue_id) FROM queues) AS qs,
           (SELECT array_agg(region_id ORDER BY region_id) FROM regions) AS rs,
           (SELECT array_agg(topic_id ORDER BY topic_id) FROM topics) AS ts
)
SELECT g, c, c, 'call', s, qs[1 + g %% cardinality(qs)], rs[1 + g %% cardinality(rs)],
       ts[1 + g %% cardinality(ts)], o,
       CASE WHEN s <> 'open' THEN o + interval '3 minutes' END,
       CASE WHEN s IN ('resolved', 'closed') THEN o + interval '2 hours' END,
       CASE WHEN s = 'closed' THEN o + interval '3 hours' END,
       o + interval '3 hours'
FROM (SELECT g, 1 + (g - 1) %% %(customers)s AS c,
             (ARRAY['open', 'in_progress', 'resolved', 'closed'])[1 + g %% 4] AS s,
             now() - make_interval(secs => (g * 2591.0) %% 2592000) AS o
      FROM generate_series(1, %(appeals)s) g) a
CROSS JOIN ref;
SELECT setval(pg_get_serial_sequence('customers', 'customer_id'), %(customers)s);
SELECT setval(pg_get_serial_sequence('contacts', 'contact_id'), %(customers)s);
SELECT setval(pg_get_serial_sequence('appeals', 'appeal_id'), %(appeals)s);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--appeals", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per stage, at most")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="contour-bench-load-"))
    env = stack_env(root / "state")
    config = Config.from_env(env)

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    stages: dict[str, Any] = {}
    try:
        contour(env, "up", "postgres", timeout=COMMAND_TIMEOUT)
        started = time.monotonic()
        contour(env, "dialer", "seed", "--operators", "200", "--leads", str(args.leads),
                "--campaigns", "3", "--replace", timeout=COMMAND_TIMEOUT)
        stages["seed_leads_s"] = round(time.monotonic() - started, 1)
        dsn = config.pg_dsn("crm")
        crm.migrate(dsn)
        started = time.monotonic()
        with psycopg.connect(dsn) as conn:
            reference.load(conn, reference.build())
            params = {"appeals": args.appeals, "customers": max(1, args.appeals // 5)}
            for statement in APPEALS_SQL.split(";\n"):  # one statement per execute
                if statement.strip():
                    conn.execute(statement, params)
        stages["seed_appeals_s"] = round(time.monotonic() - started, 1)
        progress(f"sources seeded: {args.leads:,} leads ({stages['seed_leads_s']} s), "
                 f"{args.appeals:,} appeals ({stages['seed_appeals_s']} s)")

        contour(env, "up", "kafka", "clickhouse", "dbt", timeout=COMMAND_TIMEOUT)
        t0 = time.monotonic()
        contour(env, "up", "cdc", "loader", "export", timeout=COMMAND_TIMEOUT)
        ch = clickhouse_client(config)

        def counts(query: str, conn: Any = None) -> tuple[int, int]:
            out = []
            for table in ("dialer__leads", "crm__appeals"):
                try:
                    if conn is None:
                        out.append(int(ch.query(query.format(t=table)).result_rows[0][0]))
                    else:
                        out.append(int(conn.execute(query.format(t=table)).fetchone()[0]))
                except Exception:  # noqa: BLE001 - not created yet
                    out.append(0)
            return out[0], out[1]

        def wait(stage: str, read: Any) -> None:
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                leads, appeals = read()
                if leads >= args.leads and appeals >= args.appeals:
                    took = time.monotonic() - t0
                    stages[stage] = {"s": round(took, 1),
                                     "rows_per_s": round((args.leads + args.appeals) / took)}
                    progress(f"{stage}: every row after {took:.0f} s")
                    return
                time.sleep(2)
            stages[stage] = {"s": None, "rows_per_s": None, "reached": read()}
            progress(f"{stage}: NOT complete after {args.timeout:.0f} s: {read()}")

        wait("clickhouse", lambda: counts("SELECT count() FROM current.{t}"))
        with psycopg.connect(config.pg_dsn("warehouse"), autocommit=True) as wh:
            wait("staging", lambda: counts("SELECT count(*) FROM staging.{t}", wh))
            refresh_start = time.monotonic()
            contour(env, "warehouse", "refresh", timeout=COMMAND_TIMEOUT)
            stages["marts_refresh_s"] = round(time.monotonic() - refresh_start, 1)
            appeals_in_marts = wh.execute("SELECT count(*) FROM marts.fct_appeals").fetchone()[0]
            took = time.monotonic() - t0
            stages["marts"] = {"s": round(took, 1),
                               "rows_per_s": round((args.leads + args.appeals) / took),
                               "fct_appeals": appeals_in_marts}
        for name in config.cdc_source_names:
            metrics = config.cdc_source(name).state_dir / f"{name}.metrics.json"
            if metrics.exists():
                stages.setdefault("relays", {})[name] = {
                    k: json.loads(metrics.read_text()).get(k) for k in ("snapshot", "events_total")}
    finally:
        subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    figures = {"leads": args.leads, "appeals": args.appeals, **stages}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"initial load of {args.leads:,} leads + {args.appeals:,} appeals (seconds from the "
          f"pipeline's start until the stage holds every row; rows/s = both tables)")
    for stage in ("clickhouse", "staging", "marts"):
        f = stages.get(stage, {})
        print(f"  {stage:<11} {f.get('s')!s:>7} s  {f.get('rows_per_s')!s:>8} rows/s")
    print(f"  (the marts' refresh alone: {stages.get('marts_refresh_s')} s; seeding the sources "
          f"took {stages.get('seed_leads_s')} s for the leads, {stages.get('seed_appeals_s')} s "
          f"for the appeals)")


if __name__ == "__main__":
    main()
