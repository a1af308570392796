"""Superset on the real stack: provisioning, sync, export, chart data, security, browser.

Everything here uses the ``superset_stack`` fixture (tests/superset/conftest.py): the stack was
brought up by ``contour up``, which provisioned the dashboards, and the marts were built from a
short real workload.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import clickhouse_connect
import psycopg
import pytest
import yaml

from contour.superset_access import MARTS_ROLE
from contour.superset_api import SupersetApiError, SupersetClient
from contour.superset_assets import ASSETS_DIR, Assets
from contour.superset_screens import browser_missing, render_dashboards
from tests.conftest import ROOT
from tests.superset.conftest import SupersetStack

pytestmark = pytest.mark.integration

ASSETS = Assets.load(ASSETS_DIR)
CHARTS = ASSETS.by_uuid("charts")
DATASETS = ASSETS.by_uuid("datasets")
DATABASES = ASSETS.by_uuid("databases")
ARTIFACTS = ROOT / ".contour-test-artifacts" / "superset"


@pytest.fixture(scope="module")
def client(superset_stack: SupersetStack) -> SupersetClient:
    return superset_stack.client()


def _ids(client: SupersetClient, resource: str) -> dict[str, int]:
    return {str(o["uuid"]): o["id"] for o in client.find_all(resource, ("id", "uuid"))}


def _titles(client: SupersetClient) -> dict[str, str]:
    return {str(o["uuid"]): o["slice_name"]
            for o in client.find_all("chart", ("uuid", "slice_name"))}


# ------------------------------------------------------------------ provisioning and sync
def test_contour_up_provisioned_everything(client: SupersetClient) -> None:
    assert set(CHARTS) <= set(_ids(client, "chart"))
    assert set(ASSETS.by_uuid("dashboards")) <= set(_ids(client, "dashboard"))
    assert set(DATASETS) <= set(_ids(client, "dataset"))


def test_sync_is_idempotent_and_a_yaml_title_change_shows(
        superset_stack: SupersetStack, client: SupersetClient, tmp_path: Path) -> None:
    stack = superset_stack.stack
    before = _ids(client, "chart")
    stack.contour("superset", "sync")
    stack.contour("superset", "sync")
    assert _ids(client, "chart") == before  # same objects, overwritten in place
    assert {u: t for u, t in _titles(client).items() if u in CHARTS} == {
        u: c["slice_name"] for u, c in CHARTS.items()}

    copy = tmp_path / "assets"
    shutil.copytree(ASSETS_DIR, copy)
    path = copy / "charts" / "wb_hopper.yaml"
    chart = yaml.safe_load(path.read_text())
    chart["slice_name"] = "Hopper depth per campaign (renamed in YAML)"
    path.write_text(yaml.safe_dump(chart, sort_keys=False))
    try:
        out = stack.contour("superset", "sync", "--assets", str(copy)).stdout
        assert "imported" in out
        assert _titles(client)[chart["uuid"]] == "Hopper depth per campaign (renamed in YAML)"
        assert _ids(client, "chart") == before
    finally:
        stack.contour("superset", "sync")
    assert _titles(client)[chart["uuid"]] == "Hopper depth per campaign"


def test_export_round_trip(superset_stack: SupersetStack, client: SupersetClient,
                           tmp_path: Path) -> None:
    stack = superset_stack.stack
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS_DIR, copy)
    out = stack.contour("superset", "export", "--assets", str(copy)).stdout
    assert "already matches" in out, out  # files == what Superset holds after a sync
    uuid = yaml.safe_load((copy / "charts" / "calls_offered.yaml").read_text())["uuid"]
    chart_id = _ids(client, "chart")[uuid]
    client.put(f"/api/v1/chart/{chart_id}", {"slice_name": "Offered calls (edited in UI)"})
    try:
        out = stack.contour("superset", "export", "--assets", str(copy)).stdout
        assert "calls_offered.yaml" in out
        exported = yaml.safe_load((copy / "charts" / "calls_offered.yaml").read_text())
        assert exported["slice_name"] == "Offered calls (edited in UI)"
        original = yaml.safe_load((ASSETS_DIR / "charts" / "calls_offered.yaml").read_text())
        assert {**exported, "slice_name": original["slice_name"]} == original
    finally:
        stack.contour("superset", "sync")


def test_sync_error_is_clear(superset_stack: SupersetStack, tmp_path: Path) -> None:
    result = superset_stack.stack.contour("superset", "sync", "--assets",
                                          str(tmp_path / "missing"), check=False)
    assert result.returncode != 0
    assert "contour: error: assets folder" in result.stderr


# ------------------------------------------------------------------ chart data
def _direct(superset_stack: SupersetStack, dataset: dict[str, Any], expression: str) -> Any:
    config = superset_stack.stack.config
    sql = f"SELECT {expression} AS v FROM ({dataset['sql'].strip()}) AS t"
    uri = DATABASES[dataset["database_uuid"]]["sqlalchemy_uri"]
    if uri.startswith("clickhousedb"):
        ep = config.clickhouse_endpoint
        ch = clickhouse_connect.get_client(
            host=ep.host, port=ep.port, username="reader",
            password=config.secrets.get("clickhouse_reader_password"))
        return ch.query(sql).result_rows[0][0]
    with _marts_connection(superset_stack) as conn:
        return conn.execute(sql).fetchone()[0]


def _marts_connection(superset_stack: SupersetStack, database: str = "warehouse"
                      ) -> psycopg.Connection:
    config = superset_stack.stack.config
    ep = config.pg_endpoint
    return psycopg.connect(host=ep.host, port=ep.port, dbname=database, user=MARTS_ROLE,
                           password=config.secrets.get("superset_marts_password"),
                           connect_timeout=10)


def _has_rows(superset_stack: SupersetStack, dataset: dict[str, Any]) -> bool:
    return bool(_direct(superset_stack, dataset, "count(*)"))


@pytest.mark.parametrize("rel", sorted(ASSETS.of_kind("charts")))
def test_chart_data(rel: str, superset_stack: SupersetStack, client: SupersetClient) -> None:
    chart = ASSETS.files[rel]
    dataset = DATASETS[chart["dataset_uuid"]]
    chart_id = _ids(client, "chart")[chart["uuid"]]
    try:
        result = client.chart_data(chart_id)["result"][0]
    except SupersetApiError as exc:
        pytest.fail(f"{chart['slice_name']}: {exc}")
    assert not result.get("error"), result.get("error")
    if _has_rows(superset_stack, dataset):
        assert result["rowcount"] > 0, f"{chart['slice_name']}: no rows, the dataset has some"
    if chart["viz_type"] == "big_number_total":  # the number equals the same SQL run directly
        metric = next(m for m in dataset["metrics"]
                      if m["metric_name"] == chart["params"]["metric"])
        if "now()" in dataset["sql"] or "now64(3" in dataset["sql"]:
            _assert_live_number(superset_stack, client, chart_id, dataset, metric)
            return
        expected = _direct(superset_stack, dataset, metric["expression"])
        got = result["data"][0][metric["metric_name"]]
        if expected is None:
            assert got is None
        else:
            assert float(got) == pytest.approx(float(expected), rel=1e-9), chart["slice_name"]


def _assert_live_number(superset_stack: SupersetStack, client: SupersetClient, chart_id: int,
                        dataset: dict[str, Any], metric: dict[str, Any]) -> None:
    """A lag measured against now() moves between two queries: it grows at most one second
    per second and drops when a heartbeat lands (a 10 s sawtooth). So the chart's number,
    queried between two direct runs ``dt`` seconds apart, lies within
    [after - dt, before + dt]; a small slack covers rounding and the landing-delay average."""
    slack = 1.0
    started = time.monotonic()
    before = _direct(superset_stack, dataset, metric["expression"])
    got = client.chart_data(chart_id)["result"][0]["data"][0][metric["metric_name"]]
    after = _direct(superset_stack, dataset, metric["expression"])
    dt = time.monotonic() - started
    if before is None and after is None:  # no heartbeat landed yet: no lag either
        assert got is None, (before, got, after)
        return
    if got is None:  # only right if the first heartbeat landed after the chart's query
        assert before is None, (before, got, after)
        return
    if before is None:
        return
    low, high = min(float(before), float(after)) - dt - slack, max(
        float(before), float(after)) + dt + slack
    assert low <= float(got) <= high, (
        f"{metric['metric_name']}: chart {got} outside [{low:.3f}, {high:.3f}] "
        f"(direct before {before}, after {after}, {dt:.2f} s apart)")


def test_kpis_equal_the_dbt_kpi_tables(superset_stack: SupersetStack,
                                       client: SupersetClient) -> None:
    """The dashboards' ratios, recomputed from sums, equal dbt's KPI over the daily table."""
    ids = _ids(client, "chart")

    def value(name: str, metric: str) -> float:
        return float(client.chart_data(ids[CHARTS_BY_FILE[name]])["result"][0]["data"][0][metric])

    with psycopg.connect(superset_stack.stack.config.pg_dsn("warehouse")) as conn:
        offered, answered_sl, abandoned = (int(v) for v in conn.execute(
            "SELECT sum(offered), sum(answered_within_sl), sum(abandoned) "
            "FROM marts.kpi_calls_daily").fetchone())
    assert offered > 0
    assert value("calls_offered", "offered") == offered
    assert value("calls_sl", "service_level") == pytest.approx(answered_sl / offered)
    assert value("calls_abandon_rate", "abandon_rate") == pytest.approx(abandoned / offered)


CHARTS_BY_FILE = {rel.split("/")[1][:-5]: d["uuid"] for rel, d in ASSETS.of_kind("charts").items()}


# ------------------------------------------------------------------ security
def test_marts_role_reads_marts_only_and_cannot_write(superset_stack: SupersetStack) -> None:
    with _marts_connection(superset_stack) as conn:
        assert conn.execute("SELECT count(*) FROM marts.dim_campaign").fetchone()[0] >= 0
        conn.execute("SELECT count(*) FROM ops.freshness")
        for sql in ("INSERT INTO marts.dim_campaign (campaign_id) VALUES (-1)",
                    "CREATE TABLE marts.x (a int)", "CREATE TABLE public.x (a int)",
                    "SELECT count(*) FROM staging.dialer__campaigns"):
            with pytest.raises(psycopg.Error):
                conn.execute(sql)
            conn.rollback()
        conn.execute("SET default_transaction_read_only = off")  # even then: no privilege
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM marts.dim_campaign")
    for source in ("dialer", "crm"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            _marts_connection(superset_stack, source).close()


def test_clickhouse_reader_cannot_write(superset_stack: SupersetStack) -> None:
    config = superset_stack.stack.config
    ep = config.clickhouse_endpoint
    ch = clickhouse_connect.get_client(host=ep.host, port=ep.port, username="reader",
                                       password=config.secrets.get("clickhouse_reader_password"))
    assert ch.query("SELECT count() FROM current.dialer__operators").result_rows[0][0] > 0
    for sql in ("CREATE TABLE default.x (a UInt8) ENGINE = Memory",
                "INSERT INTO raw._dead_letters (topic) VALUES ('x')",
                "DROP TABLE raw._dead_letters"):
        with pytest.raises(Exception, match="READONLY|readonly|Readonly"):
            ch.command(sql)


def test_connections_are_read_only_in_superset(client: SupersetClient) -> None:
    for database in client.find_all("database", ("id", "uuid")):
        if str(database["uuid"]) in DATABASES:
            detail = client.get(f"/api/v1/database/{database['id']}")["result"]
            assert detail["allow_dml"] is False


def test_admin_password_is_not_a_default(superset_stack: SupersetStack) -> None:
    config = superset_stack.stack.config
    password = config.admin_password()
    assert password not in ("admin", "password", "superset", "changeme", "contour")
    assert len(password) >= 12
    assert os.stat(config.secrets_file).st_mode & 0o077 == 0
    with pytest.raises(SupersetApiError, match="401"):
        SupersetClient(config.superset_url, config.admin_user, "admin").login()


# ------------------------------------------------------------------ browser
def test_dashboards_render_in_a_browser(superset_stack: SupersetStack) -> None:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    renders = render_dashboards(superset_stack.stack.config, ARTIFACTS)
    assert {r.slug for r in renders} == {d["slug"] for d in ASSETS.by_uuid("dashboards").values()}
    for render in renders:
        assert render.errors == (), render
        assert render.charts == render.expected_charts > 0, render
        assert render.png.stat().st_size > 10_000
