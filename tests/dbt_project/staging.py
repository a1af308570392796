"""Staging tables per the exporter's contract, made from the source migrations.

For each source table ``<src>.<table>``: ``staging.<src>__<table>`` with the same columns and
types, then ``_version``, ``_is_deleted``, ``_source_ts``, ``_exported_at``; primary key = the
source's. The migrations are applied into scratch schemas ``scratch_<src>`` first, so the
staging tables are copied from the real DDL (``LIKE ... INCLUDING DEFAULTS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingestion.cdc.relay import HEARTBEAT_DDL, HEARTBEAT_SCHEMA
from ingestion.export.staging import CHANGES_ADD, CHANGES_BUCKET_SECONDS, create_changes_table

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = {
    "dialer": ROOT / "dialer_core" / "dialer" / "migrations",
    "crm": ROOT / "dialer_core" / "crm" / "migrations",
}
_PRIMARY_KEYS = """
SELECT c.relname, array_agg(a.attname ORDER BY k.ord)
  FROM pg_constraint p
  JOIN pg_class c ON c.oid = p.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE p.contype = 'p' AND n.nspname = %s
 GROUP BY c.relname ORDER BY c.relname
"""
_versions = count(1)


def create_staging(conn: psycopg.Connection[Any]) -> list[str]:
    """Create every staging table; returns their names (``<src>__<table>``)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
    create_changes_table(conn)
    created = []
    for source, folder in MIGRATIONS.items():
        scratch = f"scratch_{source}"
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(scratch)))
        for path in sorted(folder.glob("*.sql")):
            conn.execute(path.read_text())  # type: ignore[arg-type]  # trusted repo DDL
        conn.execute(HEARTBEAT_DDL.replace(HEARTBEAT_SCHEMA, scratch))  # the relay's table
        conn.execute("SET search_path TO public")
        for table, pk in conn.execute(_PRIMARY_KEYS, (scratch,)).fetchall():
            # (the relay's heartbeat lives in schema contour_cdc in the source: raw and
            # staging name it <source>__contour_cdc__heartbeat)
            name = f"{source}__{HEARTBEAT_SCHEMA}__{table}" if table == "heartbeat" \
                else f"{source}__{table}"
            conn.execute(sql.SQL(
                "CREATE TABLE staging.{} (LIKE {}.{} INCLUDING DEFAULTS,"
                " _version bigint NOT NULL, _is_deleted boolean NOT NULL DEFAULT false,"
                " _source_ts timestamptz, _exported_at timestamptz NOT NULL,"
                " PRIMARY KEY ({}))").format(
                    sql.Identifier(name), sql.Identifier(scratch), sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, pk))))
            created.append(name)
    return created


def upsert(conn: psycopg.Connection[Any], table: str, rows: Iterable[Mapping[str, Any]],
           source_ts: datetime, exported_at: datetime, deleted: bool = False) -> int:
    """Write rows into ``staging.<table>`` as one exporter pass would (upsert by primary key,
    the changes counted in ``staging._export_changes``)."""
    n = 0
    for row in rows:
        values = {**row, "_version": next(_versions), "_is_deleted": deleted,
                  "_source_ts": source_ts, "_exported_at": exported_at}
        columns = list(values)
        conn.execute(sql.SQL(
            "INSERT INTO staging.{t} ({cols}) VALUES ({vals})"
            " ON CONFLICT ON CONSTRAINT {pk} DO UPDATE SET {sets}").format(
                t=sql.Identifier(table),
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                vals=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                pk=sql.Identifier(f"{table}_pkey"),
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                    for c in columns)),
            list(values.values()))
        n += 1
    # one exporter pass: its changes counted in staging._export_changes
    bucket = source_ts.timestamp() // CHANGES_BUCKET_SECONDS * CHANGES_BUCKET_SECONDS
    lag = (exported_at - source_ts).total_seconds()
    conn.execute(
        "INSERT INTO staging._export_changes AS c"  # type: ignore[arg-type]
        " VALUES (%s, to_timestamp(%s), %s, %s, %s, %s, %s, %s)" + CHANGES_ADD,
        (table, bucket, n, n if deleted else 0, lag, lag * n, source_ts, exported_at))
    return n
