"""DAG integrity: every DAG file imports without errors, fast, with the agreed shape.

The DAG folder is loaded the way Airflow's dag-processor loads it (its folder on sys.path), in
Airflow's own environment; unit level, no service needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

AIRFLOW_PYTHON = ROOT / ".venvs" / "airflow" / "bin" / "python"
DAGS = ROOT / "dags"
SCHEDULES = {"contour_realtime": "@continuous", "contour_hourly": "@hourly",
             "contour_daily": "30 2 * * *", "contour_backfill": "None"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow-home")
    out = home / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
               AIRFLOW__CORE__LOAD_EXAMPLES="False")
    started = time.monotonic()
    result = subprocess.run([str(AIRFLOW_PYTHON), str(Path(__file__).with_name(
        "dagbag_report.py")), str(DAGS), str(out)], env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text())
    data["wall_seconds"] = time.monotonic() - started
    return data


def test_every_dag_file_imports_without_errors(report: dict[str, Any]) -> None:
    assert report["import_errors"] == {}
    assert set(report["dags"]) == set(SCHEDULES)


def test_each_dag_file_parses_in_under_two_seconds(report: dict[str, Any]) -> None:
    slow = {f: s for f, s in report["file_seconds"].items() if s >= 2.0}
    assert not slow, f"DAG files slower than 2 s to import: {slow}"
    assert {Path(f).name for f in report["file_seconds"]} >= {
        f"{d}.py" for d in SCHEDULES}


@pytest.mark.parametrize("dag_id", sorted(SCHEDULES))
def test_schedule_owner_retries_tags_alerts(report: dict[str, Any], dag_id: str) -> None:
    dag = report["dags"][dag_id]
    assert dag["schedule"] == SCHEDULES[dag_id]
    assert dag["catchup"] is False and dag["max_active_runs"] == 1  # no overlapping runs
    assert "contour" in dag["tags"] and len(dag["tags"]) >= 2
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "contour-data", task_id
        assert task["has_failure_callback"], task_id
        if task_id != "check_pipeline":  # the health gate alerts at once instead
            assert task["retries"] >= 1, task_id


def test_realtime_refreshes_in_one_task_beside_the_health_check(report: dict[str, Any]) -> None:
    tasks = report["dags"]["contour_realtime"]["tasks"]
    assert set(tasks) == {"check_pipeline", "refresh_marts"}
    # the check alerts but never holds the refresh back: no edge between them
    assert tasks["refresh_marts"]["upstream"] == [] and tasks["check_pipeline"]["upstream"] == []
    assert "warehouse refresh" in tasks["refresh_marts"]["command"]


def test_backfill_takes_source_tables_and_period(report: dict[str, Any]) -> None:
    assert report["dags"]["contour_backfill"]["params"] == ["end", "source", "start", "tables"]


def test_dag_files_hold_no_connection_or_secret() -> None:
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        for needle in ("postgresql://", "password", "127.0.0.1", "localhost"):
            assert needle not in text, f"{path.name} contains {needle!r}"
