"""Warehouse operations run by the DAGs: the health gate, the freshness log, alerts,
reconciliation counts and maintenance.

Everything is read from the one :class:`~contour.config.Config` and reached over the network
(PostgreSQL, ClickHouse), so the same commands work on the embedded stack and in
docker-compose. The results land in the ``ops`` schema of the warehouse database:

- ``ops.alerts``: one row per failed task (the DAGs' failure callback), also logged; a
  command in ``CONTOUR_ALERT_COMMAND`` is run as well (the pluggable part: mail, chat, pager).
- ``ops.freshness_marks`` / ``ops.freshness``: per realtime run, the newest source commit
  exported for each source (heartbeats make an idle source still advance), and per mart
  ``now − newest source commit`` once dbt has built it.
- ``ops.reconciliation``: row counts per table in the source database, ClickHouse and staging.
- ``ops.reconciliation_daily``: for the fact tables, rows and a key checksum (sum of the
  primary key) per UTC day in the same three layers; dbt's ``audit.reconcile_daily_counts``
  carries the comparison on from staging to the marts.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from contour.config import Config
from contour.errors import ContourError

log = logging.getLogger(__name__)

OPS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.alerts (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    dag_id text, task_id text, run_id text, try_number integer,
    error text NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.freshness_marks (
    run_id text NOT NULL,
    source text NOT NULL,
    newest_source_ts timestamptz,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, source)
);
CREATE TABLE IF NOT EXISTS ops.freshness (
    recorded_at timestamptz NOT NULL,
    mart text NOT NULL,
    newest_source_ts timestamptz,
    freshness_s double precision,
    run_id text NOT NULL,
    PRIMARY KEY (run_id, mart)
);
CREATE TABLE IF NOT EXISTS ops.reconciliation (
    checked_at timestamptz NOT NULL,
    source text NOT NULL,
    table_name text NOT NULL,
    source_rows bigint,
    clickhouse_rows bigint,
    staging_rows bigint,
    matches boolean NOT NULL,
    PRIMARY KEY (checked_at, source, table_name)
);
CREATE TABLE IF NOT EXISTS ops.reconciliation_daily (
    checked_at timestamptz NOT NULL,
    source text NOT NULL,
    table_name text NOT NULL,
    day date NOT NULL,
    source_rows bigint, clickhouse_rows bigint, staging_rows bigint,
    source_key_sum numeric, clickhouse_key_sum numeric, staging_key_sum numeric,
    matches boolean NOT NULL,
    PRIMARY KEY (checked_at, source, table_name, day)
);
"""


class WarehouseError(ContourError):
    """A warehouse check that failed (the message says which and what to look at)."""


def connect(config: Config, database: str = "warehouse") -> psycopg.Connection:
    try:
        return psycopg.connect(config.pg_dsn(database), connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise WarehouseError(f"PostgreSQL database {database!r} is not reachable ({reason}); "
                             "check `contour status`") from None


def ensure_ops(conn: psycopg.Connection) -> None:
    conn.execute(OPS_DDL)
    conn.commit()


def _clickhouse(config: Config) -> Any:
    from ingestion.landing.loader import clickhouse_client  # the core venv only

    try:
        return clickhouse_client(config)
    except Exception as exc:  # noqa: BLE001 - any connection failure reads the same
        raise WarehouseError(f"ClickHouse at {config.clickhouse_url} is not reachable ({exc}); "
                             "check `contour status`") from None


# ---------------------------------------------------------------------- health gate
@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def health(config: Config, stall_seconds: float = 120) -> list[Check]:
    """CDC: each source's replication slot exists and a relay streams from it. Landing: no
    partition has had a backlog without progress for ``stall_seconds``."""
    checks: list[Check] = []
    for name in config.cdc_source_names:
        source = config.cdc_source(name)
        try:
            with connect(config, source.database) as conn:
                row = conn.execute(
                    "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                    "FROM pg_replication_slots WHERE slot_name = %s", (source.slot,)).fetchone()
        except (psycopg.Error, WarehouseError) as exc:
            checks.append(Check(f"cdc {name}", False, f"cannot read database "
                                f"{source.database}: {exc}"))
            continue
        if row is None:
            checks.append(Check(f"cdc {name}", False, f"replication slot {source.slot} is "
                                "missing: the relay never started; see `contour logs cdc`"))
        elif not row[0]:
            checks.append(Check(f"cdc {name}", False, f"no relay streams from slot "
                                f"{source.slot} ({int(row[1] or 0)} bytes behind); see "
                                "`contour logs cdc`"))
        else:
            checks.append(Check(f"cdc {name}", True, f"streaming, {int(row[1] or 0)} bytes "
                                "behind"))
    try:
        client = _clickhouse(config)
    except WarehouseError as exc:
        checks.append(Check("landing", False, str(exc)))
        return checks
    try:
        stalled = client.query(
            "SELECT topic, partition, argMax(lag, at) AS last_lag, max(at) AS last_at "
            "FROM raw._landing_metrics GROUP BY topic, partition "
            "HAVING last_lag > 0 AND last_at < now() - toIntervalSecond({s:UInt32})",
            parameters={"s": int(stall_seconds)}).result_rows
    except Exception as exc:  # noqa: BLE001 - table missing: the loader never ran
        checks.append(Check("landing", False, f"no landing metrics ({exc}); is the loader "
                            "running? see `contour logs loader`"))
        return checks
    if stalled:
        worst = max(stalled, key=lambda r: r[2])
        checks.append(Check("landing", False, f"{len(stalled)} partition(s) stalled with a "
                            f"backlog, worst {worst[0]}[{worst[1]}] {worst[2]} messages behind "
                            f"since {worst[3]}; see `contour logs loader`"))
    else:
        checks.append(Check("landing", True, "no stalled partition"))
    return checks


# ---------------------------------------------------------------------- freshness
def _staging_tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND column_name = '_source_ts' ORDER BY table_name")]


def _newest_counted(conn: psycopg.Connection, tables: list[str]) -> datetime | None:
    """The newest source commit merged into ``tables``, from the exporter's counts
    (staging._export_changes): per table its newest bucket's, by the primary key index —
    not a scan of every staging row (2 s at 10M call attempts)."""
    if not tables:
        return None
    return conn.execute(
        "SELECT max(c.newest_source_ts) FROM unnest(%s::text[]) AS t(name) "
        "CROSS JOIN LATERAL (SELECT newest_source_ts FROM staging._export_changes "
        "WHERE table_name = t.name ORDER BY bucket_start DESC LIMIT 1) AS c",
        (tables,)).fetchone()[0]  # type: ignore[index]


def mark_freshness(config: Config, run_id: str) -> dict[str, datetime | None]:
    """Record, per source, the newest source commit exported to staging (before dbt runs):
    from the exporter's counts, or from staging itself while nothing is counted."""
    with connect(config) as conn:
        ensure_ops(conn)
        tables = _staging_tables(conn)
        counted = conn.execute(
            "SELECT to_regclass('staging._export_changes') IS NOT NULL").fetchone()[0]  # type: ignore[index]
        marks: dict[str, datetime | None] = {}
        for name in config.cdc_source_names:
            mine = [t for t in tables if t.startswith(f"{name}__")]
            newest = _newest_counted(conn, mine) if counted else None
            if newest is None and mine:  # nothing counted yet: read staging itself
                newest = conn.execute(" SELECT max(ts) FROM (" + " UNION ALL ".join(
                    f'SELECT max(_source_ts) AS ts FROM staging."{t}"' for t in mine)
                    + ") s").fetchone()[0]  # type: ignore[index]
            marks[name] = newest
            conn.execute("INSERT INTO ops.freshness_marks (run_id, source, newest_source_ts) "
                         "VALUES (%s, %s, %s) ON CONFLICT (run_id, source) DO UPDATE SET "
                         "newest_source_ts = EXCLUDED.newest_source_ts, marked_at = now()",
                         (run_id, name, newest))
        conn.commit()
    return marks


def mart_sources(manifest_path: Path, sources: Iterable[str]) -> dict[str, set[str]]:
    """Each model in schema ``marts`` → the sources it is built from (dbt's lineage)."""
    manifest = json.loads(manifest_path.read_text())
    nodes = manifest.get("nodes", {})
    known = set(sources)
    memo: dict[str, set[str]] = {}

    def upstream(unique_id: str) -> set[str]:
        if unique_id in memo:
            return memo[unique_id]
        memo[unique_id] = set()
        found: set[str] = set()
        for parent in nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", []):
            if parent.startswith("source."):
                source_name = manifest["sources"][parent]["source_name"]
                found |= {source_name} & known
            else:
                found |= upstream(parent)
        memo[unique_id] = found
        return found

    return {node["name"]: upstream(uid) for uid, node in nodes.items()
            if node.get("resource_type") in ("model", "snapshot")
            and node.get("schema") == "marts"}


def record_freshness(config: Config, run_id: str, manifest_path: Path) -> list[tuple[str, float]]:
    """After dbt built the marts: per mart, now − the oldest of its sources' marks."""
    with connect(config) as conn:
        ensure_ops(conn)
        marks = dict(conn.execute("SELECT source, newest_source_ts FROM ops.freshness_marks "
                                  "WHERE run_id = %s", (run_id,)).fetchall())
        if not marks:
            raise WarehouseError(f"no freshness marks for run {run_id!r}: run "
                                 "`contour warehouse freshness mark` before dbt")
        lineage = (mart_sources(manifest_path, marks) if manifest_path.exists()
                   else {"all": set(marks)})
        now = datetime.now(UTC)
        recorded = []
        for mart, sources in sorted(lineage.items()):
            stamps = [marks[s] for s in (sources or marks) if marks.get(s) is not None]
            newest = min(stamps) if stamps else None
            age = (now - newest).total_seconds() if newest else None
            conn.execute("INSERT INTO ops.freshness (recorded_at, mart, newest_source_ts, "
                         "freshness_s, run_id) VALUES (%s, %s, %s, %s, %s) ON CONFLICT "
                         "(run_id, mart) DO UPDATE SET recorded_at = EXCLUDED.recorded_at, "
                         "newest_source_ts = EXCLUDED.newest_source_ts, "
                         "freshness_s = EXCLUDED.freshness_s",
                         (now, mart, newest, age, run_id))
            if age is not None:
                recorded.append((mart, age))
        conn.commit()
    return recorded


# ---------------------------------------------------------------------- alerts
def alert(config: Config, error: str, *, dag_id: str = "", task_id: str = "", run_id: str = "",
          try_number: int = 0) -> None:
    """Record a failure in ``ops.alerts``, log it, and run ``CONTOUR_ALERT_COMMAND`` if set
    (it gets CONTOUR_ALERT_* variables). A failing alert channel is logged, never raised."""
    log.error("ALERT %s.%s run %s try %s: %s", dag_id, task_id, run_id, try_number, error)
    try:
        with connect(config) as conn:
            ensure_ops(conn)
            conn.execute("INSERT INTO ops.alerts (dag_id, task_id, run_id, try_number, error) "
                         "VALUES (%s, %s, %s, %s, %s)",
                         (dag_id, task_id, run_id, try_number, error[:10_000]))
    except (WarehouseError, psycopg.Error) as exc:
        log.error("could not record the alert in ops.alerts: %s", exc)
    command = config.alert_command
    if command:
        env = dict(os.environ, CONTOUR_ALERT_DAG=dag_id, CONTOUR_ALERT_TASK=task_id,
                   CONTOUR_ALERT_RUN=run_id, CONTOUR_ALERT_ERROR=error[:2000])
        try:
            subprocess.run(command, shell=True, env=env, timeout=30, check=True)
        except (subprocess.SubprocessError, OSError) as exc:
            log.error("CONTOUR_ALERT_COMMAND failed: %s", exc)


# ---------------------------------------------------------------------- reconciliation
@dataclass
class Count:
    source: str
    table: str
    source_rows: int | None
    clickhouse_rows: int | None
    staging_rows: int | None

    @property
    def matches(self) -> bool:
        return self.source_rows == self.clickhouse_rows == self.staging_rows


def _source_counts(config: Config, name: str) -> dict[str, int]:
    source = config.cdc_source(name)
    with connect(config, source.database) as conn:
        tables = [(s, t) for s, t in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
            "('pg_catalog', 'information_schema')") if source.captures(s, t)]
        return {(t if s == "public" else f"{s}__{t}"): conn.execute(
            f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0]  # type: ignore[index]
            for s, t in tables}


def _raw_tables(client: Any) -> set[str]:
    """The landed tables in ClickHouse ``raw`` (not the loader's own ``_…`` tables)."""
    return {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = 'raw' "
                                       "AND NOT startsWith(name, '_')").result_rows}


def count_layers(config: Config) -> list[Count]:
    client = _clickhouse(config)
    raw = _raw_tables(client)
    with connect(config) as conn:
        staged = set(_staging_tables(conn))
        counts = []
        for name in config.cdc_source_names:
            for table, rows in sorted(_source_counts(config, name).items()):
                full = f"{name}__{table}"
                # no table yet = nothing landed or exported (an empty source table has none)
                ch = client.query(f"SELECT count() FROM raw.`{full}` FINAL "
                                  "WHERE _is_deleted = 0").result_rows[0][0] \
                    if full in raw else 0
                st = conn.execute(f'SELECT count(*) FROM staging."{full}" WHERE NOT '
                                  "_is_deleted").fetchone()[0] \
                    if full in staged else 0  # type: ignore[index]
                counts.append(Count(name, table, rows, ch, st))
    return counts


#: facts also reconciled per UTC day: (source, table, timestamptz column of the day, key)
DAILY_FACTS = (("dialer", "call_attempts", "originated_at", "attempt_id"),
               ("dialer", "operator_status_log", "started_at", "log_id"),
               ("dialer", "callbacks", "next_call_at", "callback_id"),
               ("dialer", "icp_steps", "requested_at", "step_id"),
               ("crm", "appeals", "opened_at", "appeal_id"),
               ("crm", "tickets", "created_at", "ticket_id"))

Tally = dict[str, tuple[int, int]]  # UTC day (YYYY-MM-DD) → (rows, sum of the key)


@dataclass
class DayCount:
    """One fact table's rows and key checksum on one UTC day, per layer."""

    source: str
    table: str
    day: str
    layers: tuple[tuple[int, int], ...]  # source, ClickHouse, staging

    @property
    def matches(self) -> bool:
        return self.layers[0] == self.layers[1] == self.layers[2]


def _pg_days(conn: psycopg.Connection, relation: str, day: str, key: str,
             where: str = "") -> Tally:
    rows = conn.execute(
        f"SELECT to_char({day} AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*), "
        f"coalesce(sum({key}), 0) FROM {relation} {where} GROUP BY 1").fetchall()
    return {d: (int(n), int(k)) for d, n, k in rows}


def count_days(config: Config, tables: set[str] | None = None) -> list[DayCount]:
    """Rows and key sums per UTC day of :data:`DAILY_FACTS` in source, ClickHouse, staging.
    Debezium encodes timestamptz as ISO-8601 UTC text, so its first 10 characters are the
    UTC day in ClickHouse too."""
    client = _clickhouse(config)
    raw = _raw_tables(client)
    result: list[DayCount] = []
    with connect(config) as warehouse:
        staged = set(_staging_tables(warehouse))
        for name, table, day, key in DAILY_FACTS:
            full = f"{name}__{table}"
            if name not in config.cdc_source_names or (tables and full not in tables):
                continue
            with connect(config, config.cdc_source(name).database) as conn:
                layers: list[Tally] = [_pg_days(conn, f'"{table}"', day, key)]
            layers.append({d: (int(n), int(k)) for d, n, k in client.query(
                f"SELECT substring({day}, 1, 10), count(), sum({key}) FROM raw.`{full}` FINAL "
                f"WHERE _is_deleted = 0 AND isNotNull({day}) GROUP BY 1").result_rows}
                if full in raw else {})
            layers.append(_pg_days(warehouse, f'staging."{full}"', day, key,
                                   "WHERE NOT _is_deleted") if full in staged else {})
            days = sorted(set().union(*layers))
            result += [DayCount(name, table, d, tuple(t.get(d, (0, 0)) for t in layers))
                       for d in days]
    return result


def reconcile(config: Config, attempts: int = 4, pause: float = 20.0,
              tables: set[str] | None = None) -> tuple[list[Count], list[DayCount]]:
    """Compare row counts per table, and rows and key sums per day of the fact tables, across
    the layers. Changes in flight make them differ for a moment, so a difference must persist
    over ``attempts`` checks ``pause`` seconds apart to count; the last check is stored in
    ``ops.reconciliation`` and ``ops.reconciliation_daily``."""
    counts: list[Count] = []
    days: list[DayCount] = []
    for attempt in range(attempts):
        counts = [c for c in count_layers(config)
                  if tables is None or f"{c.source}__{c.table}" in tables]
        days = count_days(config, tables)
        if all(c.matches for c in [*counts, *days]) or attempt == attempts - 1:
            break
        time.sleep(pause)
    checked_at = datetime.now(UTC)
    with connect(config) as conn:
        ensure_ops(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ops.reconciliation VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(checked_at, c.source, c.table, c.source_rows, c.clickhouse_rows,
                  c.staging_rows, c.matches) for c in counts])
            cur.executemany(
                "INSERT INTO ops.reconciliation_daily VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(checked_at, d.source, d.table, d.day, *(t[0] for t in d.layers),
                  *(t[1] for t in d.layers), d.matches)
                 for d in days])
        conn.commit()
    return counts, days


# ---------------------------------------------------------------------- maintenance
def maintain(config: Config, history_days: int | None = None,
             airflow_days: int | None = None) -> list[str]:
    """ClickHouse: merge the raw tables (fold replaced versions) and drop history older than
    the retention; PostgreSQL: VACUUM ANALYZE staging and marts; Airflow: metadata older than
    its retention deleted. Returns what was done."""
    days = history_days if history_days is not None else config.history_retention_days
    client = _clickhouse(config)
    done = []
    for database, table in client.query(
            "SELECT database, name FROM system.tables WHERE database IN ('raw', 'history') "
            "AND engine LIKE '%MergeTree' AND NOT startsWith(name, '_')").result_rows:
        if database == "raw":
            client.command(f"OPTIMIZE TABLE raw.`{table}` FINAL")
            done.append(f"optimized raw.{table}")
        elif days > 0:
            client.command(f"ALTER TABLE history.`{table}` DELETE WHERE "
                           f"_source_ts < now() - INTERVAL {int(days)} DAY")
            done.append(f"history.{table}: dropped versions older than {days} days")
    with connect(config) as conn:
        conn.autocommit = True
        for schema, table in conn.execute(
                "SELECT schemaname, relname FROM pg_stat_user_tables "
                "WHERE schemaname IN ('staging', 'marts', 'ops')").fetchall():
            conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
            done.append(f"vacuumed {schema}.{table}")
    airflow_days = config.airflow_retention_days if airflow_days is None else airflow_days
    if airflow_days > 0:
        from contour.services.airflow import Airflow
        done.append(Airflow(config).clean_metadata(airflow_days))
    return done
