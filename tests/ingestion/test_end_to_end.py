"""Sources → CDC → Kafka → loader → ClickHouse, on the real stack with the real workload.

The dialer and the CRM write their databases for a few simulated hours; the `cdc` and `loader`
services of `contour up` carry every change; afterwards each source table's current state in
ClickHouse (``current.<source>__<table>``) has exactly the source's rows.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psycopg
import pytest

from ingestion.landing.loader import clickhouse_client
from tests.conftest import ROOT, Stack, private_stack

pytestmark = pytest.mark.integration


def _source_counts(stack: Stack, database: str) -> dict[str, int]:
    with psycopg.connect(stack.config.pg_dsn(database)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND "
            "tablename <> 'schema_migrations' ORDER BY 1")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _landed_counts(stack: Stack, database: str, tables: list[str]) -> dict[str, int]:
    client = clickhouse_client(stack.config)
    existing = {r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = 'current'").result_rows}
    return {t: client.query(f"SELECT count() FROM current.{database}__{t}").result_rows[0][0]
            if f"{database}__{t}" in existing else 0 for t in tables}


def test_the_workload_lands_in_clickhouse_exactly() -> None:
    # a pipeline of its own: other tests kill and restart the shared one (the embedded broker
    # keeps messages in memory only, see the note on the CDC issue)
    with private_stack("postgres", "kafka", "clickhouse", "cdc", "loader") as stack:
        _run_and_compare(stack)


def _run_and_compare(stack: Stack) -> None:
    stack.contour("dialer", "seed", "--operators", "20", "--leads", "5000", "--campaigns", "2",
                  "--replace")
    dialer = subprocess.Popen([sys.executable, "-m", "contour", "dialer", "run", "--speed",
                               "120", "--no-crm-link"], env=stack.env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack.contour("crm", "run", "--speed", "3600", "--hours", "2", "--appeals-per-day",
                      "20000", timeout=300)
        time.sleep(5)
    finally:
        dialer.send_signal(signal.SIGTERM)
        dialer.wait(timeout=60)

    source = {db: _source_counts(stack, db) for db in ("dialer", "crm")}
    assert source["dialer"]["call_attempts"] > 0 and source["crm"]["appeals"] > 0
    deadline = time.monotonic() + 180
    landed: dict[str, dict[str, int]] = {}
    while time.monotonic() < deadline:
        landed = {db: _landed_counts(stack, db, list(counts)) for db, counts in source.items()}
        if landed == source:
            break
        time.sleep(2)
    assert landed == source

    client = clickhouse_client(stack.config)
    assert client.query("SELECT count() FROM raw._dead_letters").result_rows == [(0,)]
    with psycopg.connect(stack.config.pg_dsn("dialer")) as conn:
        leads = set(conn.execute("SELECT lead_id, attempts FROM leads").fetchall())
    assert set(client.query("SELECT lead_id, attempts FROM current.dialer__leads"
                            ).result_rows) == leads
