"""The loader's per-partition landing metrics (unit test: fake ClickHouse client and consumer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contour.config import Config
from ingestion.landing import loader as loader_module


class FakeClient:
    def __init__(self) -> None:
        self.inserted: list[list[object]] = []

    def insert(self, table: str, rows: list[list[object]], column_names: list[str],
               column_type_names: list[str]) -> None:
        assert table == "raw._landing_metrics"
        assert len(column_type_names) == len(column_names)
        self.inserted += [dict(zip(column_names, row, strict=True)) for row in rows]


class FakeConsumer:
    def get_watermark_offsets(self, tp: object, cached: bool) -> tuple[int, int]:
        return 0, 1_000


def test_each_partition_reports_its_own_rate(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """Summing rows_per_s over partitions must give the loader's rate (the pipeline dashboard
    does); it used to repeat the loader-wide rate on every partition's row."""
    client = FakeClient()
    monkeypatch.setattr(loader_module, "clickhouse_client", lambda config: client)
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(loader_module.time, "time", lambda: next(clock))
    loader = loader_module.Loader(Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)}))
    loader._last_metrics = 0.0

    def land(positions: dict[tuple[str, int], int]) -> None:
        loader.positions.update({tp: (offset, 1) for tp, offset in positions.items()})
        loader._positions_changed.update(positions)
        loader.write_metrics(FakeConsumer(), every=5.0)

    land({("t", 0): 99, ("t", 1): 9})
    land({("t", 0): 199, ("t", 1): 19})     # 10 s later: 100 and 10 more messages
    rates = [(r["partition"], r["rows_per_s"]) for r in client.inserted]
    assert rates == [(0, 0.0), (1, 0.0), (0, 10.0), (1, 1.0)]
    assert [r["lag"] for r in client.inserted[2:]] == [1_000 - 199 - 1, 1_000 - 19 - 1]
