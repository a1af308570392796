"""The exporter on a real pipeline: sources → CDC → Kafka → loader → ClickHouse → staging.

One private stack for the module (PostgreSQL, the broker, ClickHouse, the ``cdc`` and
``loader`` services), one dialer + CRM workload; the tests run in order on it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingestion.export import heartbeat_path
from ingestion.export.exporter import Exporter
from ingestion.landing.loader import clickhouse_client
from tests.conftest import ROOT, Stack, private_stack
from tests.ingestion.export.compare import differences

pytestmark = pytest.mark.integration

TYPES_DDL = r"""
CREATE TYPE export_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE export_types (
  id bigint PRIMARY KEY, b boolean, raw bytea, i2 smallint, i4 integer, i8 bigint, f4 real,
  f8 double precision, n numeric(12,4), t text, vc varchar(10), ch char(3), j json, jb jsonb,
  u uuid, d date, tm time, tm3 time(3), ts timestamp, ts3 timestamp(3), tstz timestamptz,
  iv interval, ai int[], at text[], ad date[], atz timestamptz[], mood export_mood, ip inet,
  m money);
INSERT INTO export_types VALUES
 (1, true, '\x00ff10', -32768, 2147483647, -9223372036854775808, 1.5, 2.25, 12345678.1234,
  'héllo "q" \ back', 'abc', 'x', '{"a": [1, 2]}', '{"b": {"c": null}}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-11-22', '23:59:59.999999', '12:00:00.123',
  '2026-11-22 10:00:00.654321', '2026-11-22 10:00:00.123', '2026-11-22 10:00:00.5+03',
  '1 day 02:03:04.5', '{1,NULL,3}', '{"a b","c,d",NULL,"e\"f"}', '{2026-01-01,infinity}',
  '{"2026-01-01 00:00:00+00"}', 'happy', '10.0.0.1/8', 12.34),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  'infinity', '24:00:00', NULL, 'infinity', '-infinity', '-infinity', NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL),
 (3, false, '\x', 0, 0, 0, -0.5, 1e300, 0, '', '', '', '[]', '{}',
  '00000000-0000-0000-0000-000000000000', '1900-01-01', '00:00', '00:00', '1900-01-01 00:00',
  '1969-12-31 23:59:59.999', '1969-12-31 23:59:59.999999+00', '-15 minutes', '{}', '{}', '{}',
  '{}', 'sad', '::1', -1);
"""
#: a TOASTed value (incompressible, > 2 kB), then changes that leave it unchanged
TOAST_CHANGES = [
    "UPDATE export_types SET t = (SELECT string_agg(md5(g::text), '') FROM "
    "generate_series(1, 500) g) WHERE id = 1",
    "UPDATE export_types SET i4 = 7 WHERE id = 1",
    "INSERT INTO export_types (id, t) VALUES (4, (SELECT string_agg(md5((g + 9)::text), '') "
    "FROM generate_series(1, 500) g))",
    "UPDATE export_types SET i4 = 8 WHERE id = 4",
    "UPDATE export_types SET t = 'updated', i4 = 42 WHERE id = 3",
]


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Stack]:
    with private_stack("postgres", "kafka", "clickhouse", "cdc", "loader") as stack:
        _workload(stack)
        yield stack


def _workload(stack: Stack) -> None:
    stack.contour("dialer", "seed", "--operators", "10", "--leads", "3000", "--campaigns", "2",
                  "--replace")
    dialer = subprocess.Popen([sys.executable, "-m", "contour", "dialer", "run", "--speed",
                               "120", "--no-crm-link"], env=stack.env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack.contour("crm", "run", "--speed", "3600", "--hours", "2", "--appeals-per-day",
                      "20000", timeout=300)
    finally:
        dialer.send_signal(signal.SIGTERM)
        dialer.wait(timeout=60)
    for database, table in (("dialer", "call_attempts"), ("crm", "appeals")):
        with psycopg.connect(stack.config.pg_dsn(database)) as conn:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table


def _execute(stack: Stack, database: str, *statements: str) -> None:
    with psycopg.connect(stack.config.pg_dsn(database), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _export_until_equal(stack: Stack, *args: str, timeout: float = 240) -> None:
    """Export until staging equals the sources (the loader may still be landing)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.contour("export", "once", *args)
        found = differences(stack.config)
        if not found:
            return
        if time.monotonic() > deadline:
            detail = {k: ([_short(r) for r in sorted(a)[:3]], [_short(r) for r in sorted(b)[:3]])
                      for k, (a, b) in found.items()}
            raise AssertionError(f"staging differs from the sources: {detail}")
        time.sleep(3)


def _short(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v[:40] + "…" if isinstance(v, str) and len(v) > 40 else v for v in row)


def _snapshot(stack: Stack, *, exported_at: bool = True) -> dict[str, Any]:
    """Every staging table (rows as text, meta columns included) and the watermarks; the CDC
    heartbeat tables are left out (they change every 10 s)."""
    out: dict[str, Any] = {}
    with psycopg.connect(stack.config.pg_dsn("warehouse")) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'staging' "
            "AND tablename NOT LIKE '%%contour_cdc%%' "
            "AND tablename NOT IN ('_export_watermarks', '_export_changes')")]
        for table in tables:
            columns = [r[0] for r in conn.execute(  # by name: ADD COLUMN appends
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND "
                "attnum > 0 AND NOT attisdropped ORDER BY attname", (f'staging."{table}"',))
                if exported_at or r[0] != "_exported_at"]
            out[table] = set(conn.execute(sql.SQL("SELECT {} FROM staging.{}").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c))
                                   for c in columns), sql.Identifier(table))).fetchall())
        if exported_at:  # (a re-export from scratch counts each key once, with other lags)
            for bookkeeping in ("_export_watermarks", "_export_changes"):
                out[bookkeeping] = set(conn.execute(sql.SQL(
                    "SELECT * FROM staging.{} WHERE table_name NOT LIKE '%%contour_cdc%%'"
                ).format(sql.Identifier(bookkeeping))).fetchall())
    return out


def _raw_count(stack: Stack, table: str) -> int:
    client = clickhouse_client(stack.config)
    try:
        if not client.query("SELECT count() FROM system.tables WHERE database = 'raw' AND "
                            "name = {t:String}", parameters={"t": table}).result_rows[0][0]:
            return 0
        return client.query(f"SELECT count() FROM raw.{table}").result_rows[0][0]
    finally:
        client.close()


# ---------------------------------------------------------------------- tests (in order)
def test_staging_equals_the_sources_after_a_dialer_and_crm_workload(pipeline: Stack) -> None:
    _export_until_equal(pipeline)
    with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
        counts = dict(conn.execute(
            "SELECT table_name, rows_total FROM staging._export_watermarks").fetchall())
        assert counts["dialer__call_attempts"] > 0 and counts["crm__appeals"] > 0
        assert conn.execute("SELECT count(*) FROM staging.dialer__call_attempts "
                            "WHERE _source_ts IS NULL OR _version <= 0").fetchone()[0] == 0
        staged = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'")}
        # the marts read staging by export time and by soft-deleted rows: both indexed
        indexed = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'staging'")}
        data_tables = staged - {"_export_watermarks", "_export_changes"}
        missing = sorted(f"{t}__{i}" for t in data_tables for i in ("exported_at", "deleted")
                         if f"{t}__{i}" not in indexed)
        assert not missing, f"staging indexes missing: {missing}"
    # staging mirrors the sources: every captured table, empty ones included (models read them)
    for source in ("dialer", "crm"):
        with psycopg.connect(pipeline.config.pg_dsn(source)) as conn:
            tables = {f"{source}__{t}" for (t,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'")}
        assert tables <= staged, f"no staging table for {sorted(tables - staged)}"


def test_reconcile_matches_every_layer_and_names_the_day_that_differs(
        pipeline: Stack) -> None:
    """`contour warehouse reconcile`: row counts per table and rows + key sums per UTC day of
    the facts agree across source, ClickHouse and staging; a staged row whose key changed
    (same count, different checksum) is reported with its day."""
    _export_until_equal(pipeline)
    result = pipeline.contour("warehouse", "reconcile", "--attempts", "3", "--pause", "3")
    assert "table-days match" in result.stdout
    with psycopg.connect(pipeline.config.pg_dsn("warehouse"), autocommit=True) as conn:
        matched = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE matches), count(DISTINCT table_name) "
            "FROM ops.reconciliation_daily").fetchone()
        assert matched[0] == matched[1] > 0 and matched[2] >= 4, matched
        attempt, day = conn.execute(
            "SELECT attempt_id, to_char(originated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') "
            "FROM staging.dialer__call_attempts ORDER BY attempt_id LIMIT 1").fetchone()
        conn.execute("UPDATE staging.dialer__call_attempts SET attempt_id = attempt_id + "
                     "1000000000 WHERE attempt_id = %s", (attempt,))
        try:
            failed = pipeline.contour("warehouse", "reconcile", "--attempts", "1",
                                      "--table", "dialer__call_attempts", check=False)
        finally:
            conn.execute("UPDATE staging.dialer__call_attempts SET attempt_id = %s "
                         "WHERE attempt_id = %s", (attempt, attempt + 1_000_000_000))
    assert failed.returncode == 1, failed.stdout
    assert [line.split()[:2] for line in failed.stdout.splitlines()
            if line.endswith("<- differs")] == [["dialer.call_attempts", day]], failed.stdout
    assert "0 table(s) and 1 table-day(s) differ" in failed.stderr


def test_exporting_again_changes_nothing(pipeline: Stack) -> None:
    before = _snapshot(pipeline)
    result = pipeline.contour("export", "once")
    assert _snapshot(pipeline) == before
    assert "exported" in result.stdout


def test_every_source_type_deletes_and_unchanged_toast(pipeline: Stack) -> None:
    _execute(pipeline, "dialer", TYPES_DDL, *TOAST_CHANGES,
             "DELETE FROM export_types WHERE id = 2")
    _export_until_equal(pipeline, "--source", "dialer")
    with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
        types = dict(conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
            "attrelid = 'staging.dialer__export_types'::regclass AND attnum > 0").fetchall())
        deleted = conn.execute("SELECT id, d::text, tm::text, _is_deleted FROM "
                               "staging.dialer__export_types WHERE _is_deleted").fetchall()
        toast = conn.execute("SELECT length(t) FROM staging.dialer__export_types "
                             "WHERE id IN (1, 4) ORDER BY id").fetchall()
    assert types["tstz"] == "timestamp with time zone" and types["n"] == "numeric(12,4)"
    assert types["ts3"] == "timestamp(3) without time zone" and types["ai"] == "integer[]"
    assert types["_version"] == "bigint" and types["_is_deleted"] == "boolean"
    # the delete keeps the row's last values (REPLICA IDENTITY DEFAULT: the event has the key)
    assert deleted == [(2, "infinity", "24:00:00", True)]
    # the merges counted the changes they made: one of them the delete
    assert _changes(pipeline, "dialer__export_types")[1] == 1
    assert toast == [(16000,), (16000,)]


def test_a_new_source_column_reaches_a_running_exporter(pipeline: Stack) -> None:
    exporter = subprocess.Popen(
        [sys.executable, "-m", "contour", "export", "run", "--interval", "0.5"],
        env=pipeline.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _execute(pipeline, "dialer",
                 "ALTER TABLE export_types ADD COLUMN note text, ADD COLUMN seen timestamptz",
                 "UPDATE export_types SET note = 'n' || id, seen = '2026-01-02 03:04:05.6+00' "
                 "WHERE id IN (1, 3)")
        deadline = time.monotonic() + 120
        rows: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and exporter.poll() is None:
            with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
                conn.execute("SET TimeZone = 'UTC'")
                if conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                "'staging.dialer__export_types'::regclass AND attname = 'seen'"
                                ).fetchone()[0]:
                    rows = conn.execute("SELECT id, note, seen::text FROM "
                                        "staging.dialer__export_types WHERE note IS NOT NULL "
                                        "ORDER BY id").fetchall()
                    if len(rows) == 2:
                        break
            time.sleep(0.5)
        assert rows == [(1, "n1", "2026-01-02 03:04:05.6+00"),
                        (3, "n3", "2026-01-02 03:04:05.6+00")]
        status = json.loads(heartbeat_path(pipeline.config).read_text())
        assert time.time() - status["updated_at"] < 15 and status["last_error"] is None
        check = pipeline.contour("export", "status", "--check")
        assert json.loads(check.stdout)["fresh"] is True
    finally:
        exporter.send_signal(signal.SIGTERM)
        output, _ = exporter.communicate(timeout=60)
        sys.stderr.write(f"exporter output:\n{output}\n")  # shown if the test fails
    assert exporter.returncode == 0, output
    assert differences(pipeline.config) == {}


def test_a_column_added_after_the_pass_read_the_columns_keeps_its_values(
        pipeline: Stack) -> None:
    """A pass reads the raw tables' columns first; when the loader adds a column and lands
    rows carrying it before the pass reaches the table, those rows keep the new values (they
    were once exported without them, and the watermark moved past)."""
    _execute(pipeline, "dialer", "CREATE TABLE export_late (id bigint PRIMARY KEY, a int)",
             "INSERT INTO export_late VALUES (1, 1), (2, 2)")
    _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_late", 2)
    pipeline.contour("export", "once", "--table", "dialer__export_late")
    exporter = Exporter(pipeline.config)
    try:
        stale = exporter.raw_tables()["dialer__export_late"]  # what a pass read at its start
        _execute(pipeline, "dialer", "ALTER TABLE export_late ADD COLUMN b text",
                 "UPDATE export_late SET b = 'late ' || id, a = a + 10")
        _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_late "
                      "WHERE b IS NOT NULL", 2)
        assert "b" not in stale
        assert exporter.export_table("dialer__export_late", stale) == 2
    finally:
        exporter.close()
    with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
        rows = conn.execute("SELECT id, a, b FROM staging.dialer__export_late ORDER BY id"
                            ).fetchall()
    assert rows == [(1, 11, "late 1"), (2, 12, "late 2")]


def test_a_source_table_without_primary_key_lands_and_the_export_skips_it_saying_why(
        pipeline: Stack) -> None:
    """Bad input at the edge (DESIGN: keep every good row, say what is wrong): a table with no
    primary key has no key to upsert staging by. Its changes land in ClickHouse one row per
    message (nothing lost, no dead letter); the exporter leaves it out with the reason and
    exports every other table."""
    _execute(pipeline, "dialer",
             # REPLICA IDENTITY FULL: with no key, PostgreSQL refuses updates and deletes on a
             # published table otherwise (the source's own rule, not the pipeline's)
             "CREATE TABLE export_nokey (a int, b text)",
             "ALTER TABLE export_nokey REPLICA IDENTITY FULL",
             "INSERT INTO export_nokey VALUES (1, 'x'), (1, 'x'), (2, 'y')",
             "UPDATE export_nokey SET b = 'z' WHERE a = 2",
             "CREATE TABLE export_keyed (id int PRIMARY KEY, v text)",
             "INSERT INTO export_keyed VALUES (1, 'after the keyless table')")
    try:
        # 3 inserts and the update, each its own row: two identical rows stay two rows
        _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_nokey", 4)
        _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_keyed", 1)
        client = clickhouse_client(pipeline.config)
        try:
            assert sorted(client.query("SELECT a, b FROM raw.dialer__export_nokey").result_rows
                          ) == [(1, "x"), (1, "x"), (2, "y"), (2, "z")]
            assert client.query("SELECT count() FROM raw._dead_letters WHERE topic LIKE "
                                "'%export_nokey%'").result_rows == [(0,)]
        finally:
            client.close()
        result = pipeline.contour("export", "once", "--table", "dialer__export_nokey",
                                  "--table", "dialer__export_keyed")
        assert ("not exported: raw.dialer__export_nokey: no table with a primary key in "
                "source 'dialer'") in result.stdout + result.stderr
        with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
            assert conn.execute("SELECT to_regclass('staging.dialer__export_nokey')"
                                ).fetchone() == (None,)
            assert conn.execute("SELECT id, v FROM staging.dialer__export_keyed").fetchall() == [
                (1, "after the keyless table")]
    finally:
        # (the staging comparisons of later tests list every source table)
        _execute(pipeline, "dialer", "DROP TABLE export_nokey")


def test_a_dropped_source_column_keeps_the_table_flowing(pipeline: Stack) -> None:
    """A column dropped in the source: later changes arrive without it and are landed and
    exported; staging keeps the column with the values it had (history is not rewritten),
    rows changed after the drop have it empty."""
    _execute(pipeline, "dialer",
             "CREATE TABLE export_drop (id int PRIMARY KEY, a int, gone text)",
             "INSERT INTO export_drop VALUES (1, 1, 'g1'), (2, 2, 'g2')")
    _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_drop", 2)
    pipeline.contour("export", "once", "--table", "dialer__export_drop")
    _execute(pipeline, "dialer", "ALTER TABLE export_drop DROP COLUMN gone",
             "UPDATE export_drop SET a = 10 WHERE id = 1",
             "INSERT INTO export_drop VALUES (3, 3)")
    _wait_for_raw(pipeline, "SELECT count() FROM raw.dialer__export_drop", 4)
    pipeline.contour("export", "once", "--table", "dialer__export_drop")
    with psycopg.connect(pipeline.config.pg_dsn("warehouse")) as conn:
        rows = conn.execute("SELECT id, a, gone FROM staging.dialer__export_drop ORDER BY id"
                            ).fetchall()
    assert rows == [(1, 10, None), (2, 2, "g2"), (3, 3, None)]
    client = clickhouse_client(pipeline.config)
    try:
        assert client.query("SELECT count() FROM raw._dead_letters WHERE topic LIKE "
                            "'%export_drop%'").result_rows == [(0,)]
    finally:
        client.close()
    assert "dialer__export_drop" not in differences(pipeline.config)


def _wait_for_raw(stack: Stack, query: str, rows: int, timeout: float = 120) -> None:
    """Wait until ``query`` (a count on a raw table) reaches ``rows``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = clickhouse_client(stack.config)
            try:
                count = client.query(query).result_rows[0][0]
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - the table may not exist yet
            count = 0
        if count >= rows:
            return
        assert time.monotonic() < deadline, f"the loader did not land {rows} rows: {query}"
        time.sleep(0.5)


def test_kill_minus_9_mid_backfill_then_rerun_gives_identical_staging(pipeline: Stack) -> None:
    rows = 150_000
    _execute(pipeline, "dialer",
             "CREATE TABLE export_bulk (id bigint PRIMARY KEY, name text NOT NULL, "
             "amount numeric(12,2), at timestamptz NOT NULL, day date, flags int[], "
             "payload jsonb)",
             f"INSERT INTO export_bulk SELECT g, 'row ' || g, g / 7.0, '2026-01-01'::timestamptz"
             f" + g * interval '1 second', '2026-01-01'::date + g % 1000, ARRAY[g % 3, g % 5],"
             f" jsonb_build_object('g', g) FROM generate_series(1, {rows}) g")
    deadline = time.monotonic() + 300
    while _raw_count(pipeline, "dialer__export_bulk") < rows:
        assert time.monotonic() < deadline, "the loader did not land the bulk rows"
        time.sleep(2)
    _export_until_equal(pipeline)
    uninterrupted = _snapshot(pipeline, exported_at=False)
    assert _changes(pipeline, "dialer__export_bulk") == (rows, 0)  # each row once

    # from scratch again: the backfill of every table, killed once a few chunks are in
    _execute(pipeline, "warehouse", "DROP SCHEMA staging CASCADE")
    exporter = subprocess.Popen(
        [sys.executable, "-m", "contour", "export", "run", "--chunk-rows", "10000"],
        env=pipeline.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        done = 0
        while done < 30_000:
            assert time.monotonic() < deadline and exporter.poll() is None
            time.sleep(0.2)
            done = _rows_total(pipeline, "dialer__export_bulk")
    finally:
        os.kill(exporter.pid, signal.SIGKILL)
        exporter.wait(timeout=30)
    assert _rows_total(pipeline, "dialer__export_bulk") < rows, "killed too late"

    result = pipeline.contour("export", "once", "--chunk-rows", "50000")
    assert "rows/s" in result.stdout  # a backfill reports its progress
    assert _snapshot(pipeline, exported_at=False) == uninterrupted
    assert differences(pipeline.config) == {}
    # the killed run's committed chunks were counted with their rows, never twice
    assert _changes(pipeline, "dialer__export_bulk") == (rows, 0)


def _changes(stack: Stack, table: str) -> tuple[int, int]:
    """(changes, deletes) the exporter counted for ``table`` in staging._export_changes."""
    with psycopg.connect(stack.config.pg_dsn("warehouse")) as conn:
        row = conn.execute("SELECT coalesce(sum(rows_changed), 0), coalesce(sum(rows_deleted), 0)"
                           " FROM staging._export_changes WHERE table_name = %s",
                           (table,)).fetchone()
    return int(row[0]), int(row[1])


def _rows_total(stack: Stack, table: str) -> int:
    with psycopg.connect(stack.config.pg_dsn("warehouse")) as conn:
        if conn.execute("SELECT to_regclass('staging._export_watermarks')").fetchone()[0] is None:
            return 0
        row = conn.execute("SELECT rows_total FROM staging._export_watermarks "
                           "WHERE table_name = %s", (table,)).fetchone()
        return row[0] if row else 0


def test_the_command_line(pipeline: Stack) -> None:
    for args in (["export", "--help"], ["export", "once", "--help"],
                 ["export", "run", "--help"], ["export", "status", "--help"]):
        assert "usage: contour export" in pipeline.contour(*args).stdout
    unknown = pipeline.contour("export", "once", "--table", "dialer__nosuch", check=False)
    assert unknown.returncode != 0
    assert "unknown table 'dialer__nosuch'" in unknown.stderr
    assert "dialer__call_attempts" in unknown.stderr and "crm__appeals" in unknown.stderr
    status = json.loads(pipeline.contour("export", "status").stdout)
    assert status["tables"]["dialer__call_attempts"]["rows_total"] > 0
    assert status["tables"]["dialer__call_attempts"]["rows_waiting"] == 0
    only = pipeline.contour("export", "once", "--table", "crm__appeals")
    assert "from 1 tables" in only.stdout
    # a backfill re-export of a period (the backfill DAG's call) changes nothing that is newer
    before = _snapshot(pipeline)
    again = pipeline.contour("export", "once", "--source", "crm", "--table", "appeals",
                             "--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01")
    assert "crm__appeals" in again.stdout
    assert _snapshot(pipeline) == before
