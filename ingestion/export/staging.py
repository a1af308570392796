"""PostgreSQL side of the export: the ``staging`` schema, its tables, the chunk merge.

``staging.<name>``: the source columns with the source types, then
``_version bigint`` (LSN of the newest change applied), ``_is_deleted boolean`` (a deleted
source row stays, flagged, so that a late older version cannot bring it back), ``_source_ts``
(commit time of that change) and ``_exported_at``; primary key = the source's.

``staging._export_watermarks``: per table the ``_ingested_at`` of ClickHouse up to which rows
are merged, moved in the transaction that merges them.

``staging._export_changes``: per table and 15-minute bucket of source commit time, the rows the
merges changed (of which deletes), the sum and maximum of their export lag (export time −
source commit) and the newest source commit among them. Written by the merge statement
itself, so it counts each change that reached staging exactly once (a re-read row the
version guard skips is not counted); one row per table and bucket, added to by every merge.
The pipeline KPIs (``kpi_pipeline_*``) and the freshness marks
(:func:`contour.warehouse.mark_freshness`) read it instead of scanning every staging table.

A chunk is COPYed into a temporary table and merged with one ``INSERT … ON CONFLICT … DO
UPDATE … WHERE staging._version < EXCLUDED._version``: re-reading rows is harmless. A delete of
a REPLICA IDENTITY DEFAULT table (whose event carries only the key) keeps the stored column
values, and so does a column whose value the exporter could not find for an unchanged-TOAST
placeholder (see :meth:`ingestion.export.exporter.Exporter._from_history`).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ingestion.export.catalog import TableSpec

SCHEMA = "staging"
WATERMARKS = "_export_watermarks"
CHANGES = "_export_changes"
CHANGES_BUCKET_SECONDS = 900  # the finest KPI grain (coarser ones roll these buckets up)
META_DDL = ("_version bigint NOT NULL", "_is_deleted boolean NOT NULL DEFAULT false",
            "_source_ts timestamptz", "_exported_at timestamptz NOT NULL")
#: what a chunk row carries after the table's columns (COPY order)
CHUNK_META = ("_version", "_is_deleted", "_source_ts", "_unchanged")
#: the end of an ``INSERT INTO staging._export_changes AS c …``: counts of a table and
#: bucket already there are added to (used by anything that writes staging as the exporter)
CHANGES_ADD = (
    " ON CONFLICT (table_name, bucket_start) DO UPDATE SET"
    " rows_changed = c.rows_changed + EXCLUDED.rows_changed,"
    " rows_deleted = c.rows_deleted + EXCLUDED.rows_deleted,"
    " max_export_lag_seconds = greatest(c.max_export_lag_seconds,"
    " EXCLUDED.max_export_lag_seconds),"
    " total_export_lag_seconds = c.total_export_lag_seconds"
    " + EXCLUDED.total_export_lag_seconds,"
    " newest_source_ts = greatest(c.newest_source_ts, EXCLUDED.newest_source_ts),"
    " exported_at = greatest(c.exported_at, EXCLUDED.exported_at)")
_DDL_LOCK = 7_211_900_001  # advisory lock key: one exporter changes staging DDL at a time
_CHUNK = sql.Identifier("_contour_export_chunk")

Conn = psycopg.Connection[Any]


def _table(name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))


def prepare_schema(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, "
            "ingested_at timestamptz, rows_total bigint NOT NULL, "
            "updated_at timestamptz NOT NULL)").format(_table(WATERMARKS)))
        create_changes_table(conn)


def create_changes_table(conn: Conn) -> None:
    """``staging._export_changes`` and its indexes (idempotent)."""
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, "
        "bucket_start timestamptz NOT NULL, rows_changed bigint NOT NULL, "
        "rows_deleted bigint NOT NULL, max_export_lag_seconds numeric, "
        "total_export_lag_seconds numeric, newest_source_ts timestamptz NOT NULL, "
        "exported_at timestamptz NOT NULL, "
        "PRIMARY KEY (table_name, bucket_start))").format(_table(CHANGES)))
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (exported_at)").format(
        sql.Identifier(f"{CHANGES}__exported_at"), _table(CHANGES)))
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (bucket_start)").format(
        sql.Identifier(f"{CHANGES}__bucket_start"), _table(CHANGES)))


def staging_columns(conn: Conn, name: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (f'{SCHEMA}."{name}"',))]


def ensure_table(conn: Conn, spec: TableSpec, existing: list[str]) -> list[str]:
    """Create ``staging.<name>`` or add the columns it lacks; returns its columns."""
    if existing and all(c in existing for c in spec.column_names):
        return existing
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        existing = staging_columns(conn, spec.name)  # another exporter may have done it
        if not existing:
            columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type))
                       for c in spec.columns]
            columns += [sql.SQL(d) for d in META_DDL]
            columns.append(sql.SQL("PRIMARY KEY ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, spec.key))))
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
                _table(spec.name), sql.SQL(", ").join(columns)))
        else:
            for column in spec.columns:
                if column.name not in existing:
                    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        _table(spec.name), sql.Identifier(column.name),
                        sql.SQL(column.pg_type)))
        return staging_columns(conn, spec.name)


def ensure_indexes(conn: Conn, name: str) -> None:
    """The indexes the marts read staging by: ``_exported_at`` (every incremental dbt model
    selects the rows exported since its watermark) and the soft-deleted rows (their post-hook
    deletes those keys from the marts). Without them each realtime run scanned every staging
    table in full: seconds per model at 10M call attempts. Idempotent; the first run on an
    existing large table builds them once."""
    table = _table(name)
    present = conn.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                           (f'{SCHEMA}."{name}__exported_at"', f'{SCHEMA}."{name}__deleted"')
                           ).fetchone()
    if present and present[0]:
        return  # (CREATE INDEX IF NOT EXISTS would still lock the table against writes)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (_exported_at)").format(
            sql.Identifier(f"{name}__exported_at"), table))
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (_exported_at) "
                             "WHERE _is_deleted").format(
            sql.Identifier(f"{name}__deleted"), table))


def read_watermarks(conn: Conn) -> dict[str, tuple[Any, int, Any]]:
    """table → (ingested_at, rows_total, updated_at)."""
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(sql.SQL(
        "SELECT table_name, ingested_at, rows_total, updated_at FROM {}").format(
        _table(WATERMARKS)))}


class ChunkMerge:
    """The statements of one table's chunk merge, built once per table shape."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        names = spec.column_names
        cols = sql.SQL(", ").join(map(sql.Identifier, names))
        target = _table(spec.name)
        self.create = sql.SQL(
            "CREATE TEMP TABLE {chunk} ON COMMIT DROP AS SELECT {cols}, _version, _is_deleted, "
            "_source_ts, NULL::text[] AS _unchanged FROM {target} WITH NO DATA").format(
            chunk=_CHUNK, cols=cols, target=target)
        self.copy = sql.SQL("COPY {} ({}, {}) FROM STDIN").format(
            _CHUNK, cols, sql.SQL(", ").join(map(sql.Identifier, CHUNK_META)))
        self._target = target
        self._key_match = sql.SQL(" AND ").join(
            sql.SQL("c.{k} = s.{k}").format(k=sql.Identifier(k)) for k in spec.key)
        non_key = [n for n in names if n not in spec.key]
        # a delete of a REPLICA IDENTITY DEFAULT table carries only the key: keep the values
        keep = "{c} = EXCLUDED.{c}" if spec.full_identity else \
            "{c} = CASE WHEN EXCLUDED._is_deleted THEN s.{c} ELSE EXCLUDED.{c} END"
        updates = [sql.SQL(keep).format(c=sql.Identifier(n)) for n in non_key]
        updates += [sql.SQL("{m} = EXCLUDED.{m}").format(m=sql.Identifier(m))
                    for m in ("_version", "_is_deleted", "_source_ts", "_exported_at")]
        # the merge, and the changes it made counted into _export_changes (RETURNING yields
        # only the rows inserted or updated: not those the version guard skipped)
        self.merge = sql.SQL(
            "WITH merged AS ("
            "INSERT INTO {target} AS s ({cols}, _version, _is_deleted, _source_ts, _exported_at) "
            "SELECT {cols}, _version, _is_deleted, _source_ts, now() FROM {chunk} "
            "ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE s._version < EXCLUDED._version "
            "RETURNING s._is_deleted, s._source_ts, "
            "extract(epoch FROM now() - s._source_ts) AS lag, "
            "to_timestamp(floor(extract(epoch FROM s._source_ts) / {bucket}) * {bucket}) "
            "AS bucket_start) "
            "INSERT INTO {changes} AS c (table_name, bucket_start, rows_changed, rows_deleted, "
            "max_export_lag_seconds, total_export_lag_seconds, newest_source_ts, exported_at) "
            "SELECT {name}, bucket_start, count(*), count(*) FILTER (WHERE _is_deleted), "
            "max(lag), sum(lag), max(_source_ts), now() FROM merged "
            "WHERE bucket_start IS NOT NULL "
            "GROUP BY bucket_start" + CHANGES_ADD
        ).format(target=target, cols=cols, chunk=_CHUNK,
                 key=sql.SQL(", ").join(map(sql.Identifier, spec.key)),
                 updates=sql.SQL(", ").join(updates), changes=_table(CHANGES),
                 name=sql.Literal(spec.name), bucket=sql.Literal(CHANGES_BUCKET_SECONDS))
        self.watermark = sql.SQL(
            "INSERT INTO {} AS w (table_name, ingested_at, rows_total, updated_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (table_name) DO UPDATE SET "
            "ingested_at = EXCLUDED.ingested_at, rows_total = w.rows_total + "
            "EXCLUDED.rows_total, updated_at = now()").format(_table(WATERMARKS))

    def fill_unchanged(self, column: str) -> sql.Composed:
        """Give rows whose change left ``column`` unchanged (TOAST) the stored value."""
        return sql.SQL(
            "UPDATE {chunk} c SET {col} = s.{col} FROM {target} s WHERE {match} "
            "AND {name} = ANY(c._unchanged)").format(
            chunk=_CHUNK, col=sql.Identifier(column), target=self._target,
            match=self._key_match, name=sql.Literal(column))
