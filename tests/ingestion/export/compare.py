"""Staging against the source: every row of every captured table, value by value.

Values are compared as PostgreSQL prints them in UTC, except intervals, which compare by
length: Debezium's numeric interval mode keeps only the length (see ingestion.export.decode).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from contour.config import Config
from ingestion.landing.tables import table_name

Rows = set[tuple[Any, ...]]


def _select(conn: psycopg.Connection[Any], schema: str, table: str, columns: list[str],
            where: str = "") -> Rows:
    types = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (f'"{schema}"."{table}"',)).fetchall())
    exprs = [sql.SQL("extract(epoch FROM {})::text" if types[c] == "interval"
                     else "{}::text").format(sql.Identifier(c)) for c in columns]
    query = sql.SQL("SELECT {} FROM {}.{} {}").format(
        sql.SQL(", ").join(exprs), sql.Identifier(schema), sql.Identifier(table), sql.SQL(where))
    return set(conn.execute(query).fetchall())


def source_tables(config: Config, source: str) -> dict[str, tuple[str, str, list[str]]]:
    """staging name → (schema, table, columns) of every captured table of a source."""
    with psycopg.connect(config.pg_dsn(source)) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
            (f"contour_{source}",)).fetchall()
        out = {}
        captured = config.cdc_source(source)
        for schema, table in rows:
            if not captured.captures(schema, table):
                continue
            columns = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f'"{schema}"."{table}"',))]
            out[table_name(f"{source}.{schema}.{table}")] = (schema, table, columns)
        return out


def differences(config: Config, sources: tuple[str, ...] = ("dialer", "crm"),
                skip: tuple[str, ...] = ("contour_cdc",)) -> dict[str, tuple[Rows, Rows]]:
    """Per staging table whose live rows differ from the source: (source only, staging only).
    Tables in ``skip`` schemas are left out (the CDC heartbeat changes every 10 s)."""
    found: dict[str, tuple[Rows, Rows]] = {}
    with psycopg.connect(config.pg_dsn("warehouse")) as wh:
        wh.execute("SET TimeZone = 'UTC'")
        for source in sources:
            with psycopg.connect(config.pg_dsn(source)) as src:
                src.execute("SET TimeZone = 'UTC'")
                for name, (schema, table, columns) in source_tables(config, source).items():
                    if schema in skip:
                        continue
                    expected = _select(src, schema, table, columns)
                    actual = _select(wh, "staging", name, columns, "WHERE NOT _is_deleted") \
                        if wh.execute("SELECT to_regclass(%s)", (f'staging."{name}"',)
                                      ).fetchone()[0] else set()
                    if expected != actual:
                        found[name] = (expected - actual, actual - expected)
    return found
