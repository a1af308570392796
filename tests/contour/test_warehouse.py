"""``contour warehouse``: alerts, the health gate and the freshness log on the real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from contour.config import Config
from contour.warehouse import _clickhouse, health, mart_sources
from ingestion.export.staging import create_changes_table
from ingestion.landing.tables import LANDING_METRICS_DDL
from tests.conftest import Stack, run_contour

pytestmark = pytest.mark.integration


def warehouse(config: Config) -> psycopg.Connection:
    return psycopg.connect(config.pg_dsn("warehouse"), autocommit=True)


def test_alert_is_recorded_logged_and_sent_to_the_alert_command(pg: Stack,
                                                                 tmp_path: Path) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    sent = tmp_path / "sent.txt"
    env = pg.env | {"CONTOUR_ALERT_COMMAND":
                    f'echo "$CONTOUR_ALERT_DAG/$CONTOUR_ALERT_TASK: $CONTOUR_ALERT_ERROR" > {sent}'}
    result = run_contour(env, "warehouse", "alert", "dbt exited 1", "--dag", "contour_realtime",
                         "--task", "dbt_build_realtime", "--run", run, "--try-number", "3")
    assert "ALERT contour_realtime.dbt_build_realtime" in result.stderr
    with warehouse(pg.config) as conn:
        rows = conn.execute("SELECT dag_id, task_id, try_number, error FROM ops.alerts "
                            "WHERE run_id = %s", (run,)).fetchall()
    assert rows == [("contour_realtime", "dbt_build_realtime", 3, "dbt exited 1")]
    assert sent.read_text().strip() == "contour_realtime/dbt_build_realtime: dbt exited 1"


def test_health_gate_names_the_source_without_a_relay(pg: Stack) -> None:
    streaming_less, never_started = f"wh_{uuid.uuid4().hex[:8]}", f"wh_{uuid.uuid4().hex[:8]}"
    env = pg.env | {"CONTOUR_CDC_SOURCES": f"{streaming_less},{never_started}"}
    config = Config.from_env(env)
    with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
        for name in (streaming_less, never_started):
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(config.pg_dsn(streaming_less), autocommit=True) as conn:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')",
                         (f"contour_{streaming_less}",))
        result = run_contour(env, "warehouse", "check", check=False)
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert any(f"cdc {streaming_less}" in line and "no relay streams" in line
                   and line.startswith("FAIL") for line in lines), result.stdout
        assert any(f"cdc {never_started}" in line and "missing" in line for line in lines)
    finally:
        with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (f"contour_{streaming_less}",))
            for name in (streaming_less, never_started):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fake_manifest(path: Path, a: str, b: str) -> Path:
    """Two marts: one built from source a only, one from a and b (through a staging model)."""
    manifest = {
        "sources": {f"source.contour.{s}.t": {"source_name": s} for s in (a, b)},
        "nodes": {
            "model.contour.stg_a": {"name": "stg_a", "resource_type": "model", "schema": "stg",
                                    "depends_on": {"nodes": [f"source.contour.{a}.t"]}},
            "model.contour.fct_one": {"name": "fct_one", "resource_type": "model",
                                      "schema": "marts",
                                      "depends_on": {"nodes": ["model.contour.stg_a"]}},
            "model.contour.fct_two": {"name": "fct_two", "resource_type": "model",
                                      "schema": "marts",
                                      "depends_on": {"nodes": ["model.contour.fct_one",
                                                               f"source.contour.{b}.t"]}},
        },
    }
    path.write_text(json.dumps(manifest))
    return path


def test_mart_lineage_follows_models_to_sources(tmp_path: Path) -> None:
    lineage = mart_sources(fake_manifest(tmp_path / "m.json", "s1", "s2"), ["s1", "s2"])
    assert lineage == {"fct_one": {"s1"}, "fct_two": {"s1", "s2"}}


@pytest.mark.parametrize("counted", [False, True], ids=["from-staging", "from-counts"])
def test_freshness_is_now_minus_the_oldest_newest_commit_of_a_marts_sources(
        pg: Stack, tmp_path: Path, counted: bool) -> None:
    """The marks come from staging._export_changes where the exporter counted the tables'
    changes (there: source a's newest commit only in the counts, its staging row left out),
    from the staging tables themselves where it did not (source b)."""
    a, b = f"fa{uuid.uuid4().hex[:6]}", f"fb{uuid.uuid4().hex[:6]}"
    env = pg.env | {"CONTOUR_CDC_SOURCES": f"{a},{b}"}
    now = datetime.now(UTC)
    with warehouse(pg.config) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
        existed = conn.execute(
            "SELECT to_regclass('staging._export_changes') IS NOT NULL").fetchone()[0]
        if counted:
            create_changes_table(conn)
        for source, ages in ((a, (30, 300)), (b, (90, 120))):  # newest commit: 30 s, 90 s ago
            for i, age in enumerate(ages):
                ts = now - timedelta(seconds=age)
                conn.execute(f'CREATE TABLE staging."{source}__t{i}" (id int, '
                             "_source_ts timestamptz)")
                if counted and source == a:
                    for bucket_age in (age, 3600):  # its newest bucket is the one read
                        conn.execute(
                            "INSERT INTO staging._export_changes VALUES (%s, %s, 1, 0, 1, 1,"
                            " %s, now())", (f"{source}__t{i}",
                                            now - timedelta(seconds=bucket_age + 1),
                                            now - timedelta(seconds=bucket_age)))
                else:
                    conn.execute(f'INSERT INTO staging."{source}__t{i}" VALUES (1, %s)', (ts,))
    run = f"run-{uuid.uuid4().hex[:8]}"
    try:
        run_contour(env, "warehouse", "freshness", "mark", "--run-id", run)
        manifest = fake_manifest(tmp_path / "manifest.json", a, b)
        run_contour(env, "warehouse", "freshness", "record", "--run-id", run,
                    "--manifest", str(manifest))
        with warehouse(pg.config) as conn:
            got = dict(conn.execute("SELECT mart, freshness_s FROM ops.freshness "
                                    "WHERE run_id = %s", (run,)).fetchall())
        assert set(got) == {"fct_one", "fct_two"}
        elapsed = (datetime.now(UTC) - now).total_seconds()
        assert 30 <= got["fct_one"] <= 30 + elapsed
        assert 90 <= got["fct_two"] <= 90 + elapsed
    finally:
        with warehouse(pg.config) as conn:
            for source in (a, b):
                for i in range(2):
                    conn.execute(f'DROP TABLE IF EXISTS staging."{source}__t{i}"')
            if counted and not existed:
                conn.execute("DROP TABLE staging._export_changes")
            elif counted:
                conn.execute("DELETE FROM staging._export_changes WHERE table_name LIKE %s",
                             (f"{a}__%",))


def test_record_without_a_mark_says_what_to_run(pg: Stack) -> None:
    result = run_contour(pg.env, "warehouse", "freshness", "record", "--run-id", "nope",
                         check=False)
    assert result.returncode != 0
    assert "freshness mark" in result.stderr


def test_health_gate_names_a_stalled_landing_partition(services: Stack) -> None:
    """A partition whose last landing report is old and still behind fails the check."""
    stack = services.require("postgres", "clickhouse")
    client = _clickhouse(stack.config)
    client.command("CREATE DATABASE IF NOT EXISTS raw")
    client.command(LANDING_METRICS_DDL)
    topic = f"wh{uuid.uuid4().hex[:8]}.public.t"
    old = datetime.now(UTC) - timedelta(minutes=10)
    columns = ["at", "topic", "partition", "landed_offset", "high_watermark", "lag",
               "last_source_lsn", "rows_per_s"]
    try:
        client.insert("raw._landing_metrics", [[old, topic, 0, 10, 10, 0, 1, 0.0]],
                      column_names=columns)  # caught up long ago: healthy
        assert [c for c in health(stack.config) if c.name == "landing"][0].ok
        client.insert("raw._landing_metrics", [[old, topic, 1, 10, 25, 15, 1, 0.0]],
                      column_names=columns)  # 15 behind and silent for 10 minutes
        landing = [c for c in health(stack.config) if c.name == "landing"][0]
        assert not landing.ok
        assert f"{topic}[1] 15 messages behind" in landing.detail
    finally:
        client.command("DELETE FROM raw._landing_metrics WHERE topic = {t:String}",
                       parameters={"t": topic})


@pytest.mark.integration
def test_maintain_deletes_airflow_metadata_older_than_the_retention(stack: Stack) -> None:
    """A continuous DAG adds ~1,400 runs a day: `warehouse maintain` (the daily DAG's task)
    runs `airflow db clean` with the retention, keeping what is newer."""
    event = f"contour-test-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    with psycopg.connect(stack.config.pg_dsn("airflow"), autocommit=True) as conn:
        for age in (40, 1):
            conn.execute("INSERT INTO log (dttm, event, extra) VALUES (%s, %s, %s)",
                         (now - timedelta(days=age), event, f"{age} days old"))
    result = run_contour(stack.env, "warehouse", "maintain", "--airflow-days", "30",
                         "--history-days", "0")
    assert "airflow metadata: deleted what was older than 30 days" in result.stdout
    with psycopg.connect(stack.config.pg_dsn("airflow")) as conn:
        left = conn.execute("SELECT extra FROM log WHERE event = %s", (event,)).fetchall()
    assert left == [("1 days old",)]
