"""The YAML assets are consistent and render into a valid import bundle (no service needed)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from contour.config import Config
from contour.superset_assets import ASSETS_DIR, PASSWORD_MASK, Assets, render
from contour.superset_layout import chart_placeholders

ASSETS = Assets.load(ASSETS_DIR)
DATASETS = ASSETS.by_uuid("datasets")
CHARTS = ASSETS.by_uuid("charts")
DASHBOARDS = ASSETS.by_uuid("dashboards")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path_factory.mktemp("state"))})


def _columns(dataset: dict[str, Any]) -> set[str]:
    return {c["column_name"] for c in dataset["columns"]}


def _metrics(dataset: dict[str, Any]) -> set[str]:
    return {m["metric_name"] for m in dataset["metrics"]}


def test_the_five_dashboards_with_two_connections() -> None:
    titles = sorted(d["dashboard_title"] for d in DASHBOARDS.values())
    assert titles == ["1. Live wallboard", "2. Calls & service level",
                      "3. Callbacks & operators", "4. Omnichannel appeals & SLA",
                      "5. Pipeline health"]
    uris = sorted(d["sqlalchemy_uri"].split(":")[0] for d in ASSETS.by_uuid("databases").values())
    assert uris == ["clickhousedb", "postgresql+psycopg2"]


@pytest.mark.parametrize("rel", sorted(ASSETS.of_kind("charts")))
def test_chart_uses_what_its_dataset_defines(rel: str) -> None:
    chart = ASSETS.files[rel]
    dataset = DATASETS[chart["dataset_uuid"]]
    params = chart["params"]
    metrics = [params["metric"]] if "metric" in params else params.get("metrics", [])
    assert set(metrics) <= _metrics(dataset), f"{rel}: unknown metric"
    columns = [*params.get("groupby", []), *params.get("all_columns", [])]
    if "x_axis" in params:
        columns.append(params["x_axis"])
    columns += [f["subject"] for f in params.get("adhoc_filters", []) if "subject" in f]
    assert set(columns) <= _columns(dataset), f"{rel}: unknown column"


def test_every_chart_is_on_a_dashboard_and_filters_fit() -> None:
    placed: set[str] = set()
    for dashboard in DASHBOARDS.values():
        placed |= set(chart_placeholders(dashboard["layout"]))
        for flt in dashboard.get("filters", []):
            if "column" in flt:
                assert flt["column"] in _columns(DATASETS[flt["dataset"]]), flt
    assert placed == set(CHARTS)


def test_wallboard_refreshes_within_10s_and_caches_less() -> None:
    wallboard = next(d for d in DASHBOARDS.values() if d["slug"] == "wallboard")
    assert 0 < wallboard["metadata"]["refresh_frequency"] <= 10
    for uuid in chart_placeholders(wallboard["layout"]):
        assert CHARTS[uuid]["cache_timeout"] < wallboard["metadata"]["refresh_frequency"]
    for dashboard in DASHBOARDS.values():  # no dashboard polls more often than every 10 s
        assert dashboard["metadata"]["refresh_frequency"] >= 10


def test_bundle_has_no_password_and_every_chart_a_query_context(config: Config) -> None:
    bundle = render(ASSETS, config)
    secrets = {config.secrets.get("superset_marts_password"),
               config.secrets.get("clickhouse_reader_password")}
    assert set(bundle.passwords.values()) == secrets
    archive = zipfile.ZipFile(io.BytesIO(bundle.zip_bytes()))
    names = archive.namelist()
    assert all(n.startswith("contour_assets/") for n in names)
    meta = yaml.safe_load(archive.read("contour_assets/metadata.yaml"))
    assert meta["type"] == "assets"
    for name in names:
        text = archive.read(name).decode()
        assert not any(s in text for s in secrets), name
        data = yaml.safe_load(text)
        if "/databases/" in name:
            assert PASSWORD_MASK in data["sqlalchemy_uri"]
        if "/charts/" in name:
            context = json.loads(data["query_context"])
            assert context["queries"][0]["metrics"] or context["queries"][0]["columns"]
    for path in Path(ASSETS_DIR).rglob("*.yaml"):  # nor in the files under git
        assert not any(s in path.read_text() for s in secrets)


def test_rendering_is_deterministic(config: Config) -> None:
    assert render(ASSETS, config).digest == render(Assets.load(ASSETS_DIR), config).digest
