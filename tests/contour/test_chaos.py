"""``contour chaos``: the parts that need no stack (the command itself runs a whole pipeline
for minutes; its runs are recorded in BENCHMARKS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contour.chaos import Kill, Report, private_env
from tests.conftest import ROOT


def test_the_private_stack_shares_no_setting_or_port(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTOUR_STATE_DIR", "/somewhere/else")
    monkeypatch.setenv("CONTOUR_CDC_SOURCES", "other")
    env = private_env(tmp_path / "state")
    assert env["CONTOUR_STATE_DIR"] == str(tmp_path / "state")
    assert "CONTOUR_CDC_SOURCES" not in env
    ports = [env[k].rsplit(":", 1)[1].split("/")[0] for k in (
        "CONTOUR_PG_DSN", "CONTOUR_KAFKA_BOOTSTRAP", "CONTOUR_CLICKHOUSE_URL",
        "CONTOUR_AIRFLOW_URL", "CONTOUR_SUPERSET_URL")]
    assert len(set(ports)) == len(ports)


def test_the_report_fails_on_any_problem_and_summarises_recoveries() -> None:
    report = Report(kills=[Kill(1, "kafka", "kafka", 10, 0.0, 30.0),
                           Kill(2, "loader", "loader", 11, 0.0, 10.0),
                           Kill(3, "postgres", "postgres", 12, 0.0, 20.0)])
    assert report.passed
    summary = report.as_dict()
    assert summary["recovery_s"] == {"max": 30.0, "median": 20.0}
    assert [k["component"] for k in summary["kills"]] == ["kafka", "loader", "postgres"]
    report.problems.append("crm__appeals: 3 keys missing and 0 extra in staging")
    assert not report.passed and not report.as_dict()["passed"]


def test_help() -> None:
    out = subprocess.run([sys.executable, "-m", "contour", "chaos", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert "--kills" in out and "--json" in out and "--recovery-timeout" in out
