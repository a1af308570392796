"""``contour bench``'s plumbing (unit): it runs each benchmark script with --json and keeps
its last output line; the benchmarks themselves are not tests (BENCHMARKS.md has their runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from contour import bench
from tests.conftest import run_contour


def _script(root: Path, name: str, body: str) -> None:
    (root / "bench").mkdir(exist_ok=True)
    (root / "bench" / name).write_text(body)


def test_each_benchmark_runs_with_json_and_its_last_line_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path, "fake.py", "import json, sys\nprint('progress line')\n"
            "print(json.dumps({'args': sys.argv[1:], 'p95_s': 1.5}))\n")
    monkeypatch.setattr(bench, "PROJECT_ROOT", tmp_path)
    monkeypatch.setitem(bench.BENCHMARKS, "fake", ("fake.py", lambda m: ["--minutes", str(m)]))
    figures = bench.run_one("fake", 3.0)
    assert figures["args"] == ["--json", "--minutes", "3.0"] and figures["p95_s"] == 1.5
    assert isinstance(figures["bench_seconds"], int)


def test_a_failing_benchmark_is_an_error_naming_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path, "broken.py", "import sys\nsys.exit('the stack did not start')\n")
    monkeypatch.setattr(bench, "PROJECT_ROOT", tmp_path)
    monkeypatch.setitem(bench.BENCHMARKS, "broken", ("broken.py", lambda m: []))
    with pytest.raises(bench.BenchError, match="benchmark broken failed"):
        bench.run_one("broken", 1.0)


def test_the_table_shows_every_benchmark_that_ran() -> None:
    report = {
        "date": "2026-12-06T18:00:00Z",
        "freshness": {"cold_demo": {"demo_command_s": 40.0, "all_populated_s": 210.0},
                      "stages": {"clickhouse": {"p50_s": 1.2, "p95_s": 2.5, "max_s": 4.0}},
                      "rss_mib": {"postgres": 30}},
        "initial_load": {"leads": 1000, "appeals": 2000,
                         "marts": {"s": 12.5, "rows_per_s": 240}},
    }
    text = bench.render(json.loads(json.dumps(report)))
    assert "every chart with data after 210.0 s" in text
    assert "clickhouse" in text and "2.5" in text
    assert "initial load of 1,000 leads + 2,000 appeals" in text and "240 rows/s" in text
    assert "postgres 30" in text


def test_help() -> None:
    result = run_contour(dict(os.environ), "bench", "--help")
    assert "--json" in result.stdout and "initial_load" in result.stdout
