"""Benchmark: the exporter's backfill rows/s and the time of a one-minute increment.

    .venvs/core/bin/python bench/bench_export.py [--rows 1000000] [--minute-rows 60000]
                                                 [--chunk-rows 100000]

On a private stack (`contour up postgres clickhouse`, temporary state folder, free ports):

1. A source table shaped like ``dialer.call_attempts`` (12 columns: keys, text, timestamptz,
   numeric, an array) in a source database ``bench`` (its catalog gives the staging types),
   and its raw table in ClickHouse exactly as the loader makes it (same DDL, the types the
   loader infers from Debezium values), filled inside ClickHouse with --rows changes in
   loader-sized blocks (20,000 rows, one ``_ingested_at`` each, a second apart).
2. Backfill: one ``Exporter.export_once`` from an empty staging — rows/s.
3. Increment: --minute-rows updates of existing keys (newer versions; 120 blocks, as the
   loader writes them in a minute at 0.5 s per batch), then one ``export_once`` — seconds.

Prints the figures; not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contour.config import Config  # noqa: E402
from ingestion.export.exporter import Exporter  # noqa: E402
from ingestion.landing.loader import clickhouse_client  # noqa: E402
from ingestion.landing.tables import RawTable  # noqa: E402
from tests.conftest import stack_env  # noqa: E402

SOURCE_DDL = """
CREATE TABLE call_attempts (
    attempt_id bigint PRIMARY KEY, campaign_id int, lead_id bigint, operator_id int,
    phone text NOT NULL, status text NOT NULL, outcome text,
    started_at timestamptz NOT NULL, answered_at timestamptz, ended_at timestamptz,
    cost numeric(10, 2), tags text[])
"""
#: one Debezium row (schemaless JSON values) to infer the raw types as the loader does
SAMPLE = {"attempt_id": 1, "campaign_id": 1, "lead_id": 1, "operator_id": 1,
          "phone": "+79001234567", "status": "closed", "outcome": "answered",
          "started_at": "2026-11-22T00:35:09.123456Z",
          "answered_at": "2026-11-22T00:35:19.5Z", "ended_at": "2026-11-22T00:37:01Z",
          "cost": "1.25", "tags": ["vip", "callback"]}
BLOCK = 20_000


def values_sql(first_version: int) -> str:
    """Generated change rows of the raw table for ``number`` (key) and a block index ``b``."""
    ts = "formatDateTime(toDateTime64(1763770509 + number, 6, 'UTC') + " \
         "toIntervalMicrosecond(number % 1000000), '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC')"
    return (
        f"number + 1, toInt64(number % 50), toInt64(number * 7), toInt64(number % 200), "
        f"concat('+7900', toString(number)), 'closed', "
        f"['answered', 'busy', 'no_answer'][number % 3 + 1], {ts}, {ts}, {ts}, "
        f"toString(round((number % 1000) / 100, 2)), ['vip', toString(number % 9)], "
        f"'u', 0, {first_version} + number, now64(6), toInt64(number), {first_version} + number, "
        f"toUInt32(number % 3), number"
    )


def fill(client: object, table: RawTable, first: int, rows: int, first_version: int,
         block: int, base_ms: int, every_ms: int) -> None:
    """Insert ``rows`` changes of keys ``first+1 …`` in blocks of ``block`` rows, each block
    with its own ``_ingested_at``, ``every_ms`` apart (as the loader stamps its batches)."""
    columns = ", ".join([*table.columns, "_op", "_is_deleted", "_version", "_source_ts",
                         "_tx_id", "_lsn", "_kafka_partition", "_kafka_offset", "_ingested_at"])
    for start in range(0, rows, block):
        count = min(block, rows - start)
        client.command(  # type: ignore[attr-defined]
            f"INSERT INTO {table.qualified} ({columns}) SELECT {values_sql(first_version)}, "
            f"fromUnixTimestamp64Milli(toInt64({base_ms + start // block * every_ms})) "
            f"FROM (SELECT number + {first + start} AS number FROM numbers({count}))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--minute-rows", type=int, default=60_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="contour-bench-export-") as tmp:
        env = stack_env(Path(tmp) / "state") | {"CONTOUR_CDC_SOURCES": "bench"}
        subprocess.run([sys.executable, "-m", "contour", "up", "postgres", "clickhouse"],
                       env=env, cwd=ROOT, check=True, capture_output=True)
        try:
            config = Config.from_env(env)
            with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            with psycopg.connect(config.pg_dsn("bench"), autocommit=True) as conn:
                conn.execute(SOURCE_DDL)
            client = clickhouse_client(config)
            client.command("CREATE DATABASE IF NOT EXISTS raw")
            client.command("CREATE DATABASE IF NOT EXISTS history")
            client.command("CREATE DATABASE IF NOT EXISTS current")
            table = RawTable("bench__call_attempts", ["attempt_id"])
            for column, value in SAMPLE.items():
                table.add_column(column, value)
            for statement in table.create_sql():
                client.command(statement)
            base_ms = int(time.time() * 1000) - 3_600_000
            started = time.monotonic()
            # the loader at 20,000 rows/s: one 20,000-row block a second
            fill(client, table, 0, args.rows, 1_000_000, BLOCK, base_ms, 1000)
            print(f"raw table filled with {args.rows:,} rows in "
                  f"{time.monotonic() - started:.1f}s", flush=True)

            exporter = Exporter(config, chunk_rows=args.chunk_rows,
                                progress=lambda m: print(f"  {m}", flush=True))
            started = time.monotonic()
            exporter.export_once()
            backfill_s = time.monotonic() - started

            # a minute of changes: updates of existing keys, 120 loader batches
            fill(client, table, 0, args.minute_rows, 10_000_000_000,
                 max(1, args.minute_rows // 120), base_ms + 10_000_000, 500)
            started = time.monotonic()
            exporter.export_once()
            minute_s = time.monotonic() - started
            with psycopg.connect(config.pg_dsn("warehouse")) as conn:
                staged = conn.execute("SELECT count(*), count(*) FILTER (WHERE _version >= "
                                      "10000000000) FROM staging.bench__call_attempts"
                                      ).fetchone()
            exporter.close()
        finally:
            subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                           capture_output=True)

    print()
    print(f"export ClickHouse → PostgreSQL staging, one table of 12 columns, "
          f"chunks of {args.chunk_rows:,} rows")
    print(f"  backfill {args.rows:,} rows            {backfill_s:>8.1f} s  "
          f"{args.rows / backfill_s:>10,.0f} rows/s")
    print(f"  one-minute increment {args.minute_rows:,} updates "
          f"{minute_s:>8.2f} s  {args.minute_rows / minute_s:>10,.0f} rows/s")
    print(f"  staging rows {staged[0]:,}, of which updated by the increment {staged[1]:,}")


if __name__ == "__main__":
    main()
