"""The parity checker's comparison (unit). It is run against a real pipeline in
tests/dags/test_realtime_on_airflow.py, where the marts are built by Airflow and dbt."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from contour.errors import ConfigError
from contour.parity import KPIS, Kpi, compare, render, same, thresholds

KPI = Kpi(name="calls", mart="kpi_calls_daily", database="dialer",
          keys=("direction", "queue_id"), measures=("answered", "asa_seconds"), source_sql="")
DAY = date(2026, 12, 1)


def test_equal_rows_make_no_difference() -> None:
    rows = [("outbound", None, 3, Decimal("12.5")), ("inbound", 7, 1, None)]
    result = compare(KPI, DAY, rows, list(reversed(rows)))
    assert result.rows == 2 and result.differences == []


def test_a_differing_measure_is_reported_with_its_key_and_both_values() -> None:
    result = compare(KPI, DAY, [("inbound", 7, 4, Decimal("2.000001"))],
                     [("inbound", 7, 4, 2.0000035)])
    [difference] = result.differences
    assert (difference.key, difference.measure, difference.source, difference.mart) == (
        {"direction": "inbound", "queue_id": 7}, "asa_seconds", 2.000001, 2.0000035)
    assert "calls 2026-12-01 [direction=inbound, queue_id=7] asa_seconds" in render([result])


def test_a_row_on_one_side_only_is_a_difference() -> None:
    result = compare(KPI, DAY, [("outbound", None, 1, None)], [("inbound", 2, 1, None)])
    assert sorted((d.key["direction"], d.source, d.mart) for d in result.differences) == [
        ("inbound", "absent", "present"), ("outbound", "present", "absent")]


def test_numbers_compare_within_a_micro_unit_and_null_only_equals_null() -> None:
    assert same(Decimal("1.0000001"), 1.0)
    assert same(3, 3.0)
    assert not same(Decimal("1.00001"), 1.0)
    assert not same(None, 0) and same(None, None)


def test_a_key_twice_on_one_side_is_an_error_not_a_silent_overwrite() -> None:
    with pytest.raises(AssertionError, match="two kpi_calls_daily rows"):
        compare(KPI, DAY, [], [("inbound", 2, 1, None), ("inbound", 2, 5, None)])


def test_thresholds_come_from_the_dbt_project(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project.yml"
    project.write_text("vars:\n  service_level_seconds: 30\n  short_abandon_seconds: 4\n"
                       "  repeat_contact_days: 3\n  other: x\n")
    assert thresholds(project) == {"service_level_seconds": 30, "short_abandon_seconds": 4,
                                   "repeat_contact_days": 3}
    project = tmp_path / "dbt_project.yml"
    project.write_text("vars:\n  service_level_seconds: 30\n")
    with pytest.raises(ConfigError, match="short_abandon_seconds, repeat_contact_days"):
        thresholds(project)


def test_every_kpi_names_as_many_source_columns_as_keys_and_measures() -> None:
    # the source SQL's final select list is positional: count its top-level items
    for kpi in KPIS:
        final = kpi.source_sql.rsplit("\nSELECT ", 1)[1].split("\nFROM ", 1)[0]
        depth, items = 0, 1
        for char in final:
            depth += char == "("
            depth -= char == ")"
            items += char == "," and depth == 0
        assert items == len(kpi.keys) + len(kpi.measures), kpi.name
