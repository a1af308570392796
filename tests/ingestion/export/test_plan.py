"""Cutting the rows past a watermark into chunks (no service)."""

from __future__ import annotations

from ingestion.export.exporter import Chunk, plan_chunks


def test_chunks_follow_loader_blocks_and_the_first_one_looks_back() -> None:
    groups = [(1000, 40), (1500, 40), (2000, 40), (2500, 200), (3000, 10)]
    assert plan_chunks(groups, 900, 100, 100) == [
        Chunk(800, 1500, 80),  # a block is never split; the first chunk re-reads 100 ms
        Chunk(1500, 2000, 40),
        Chunk(2000, 2500, 200),  # a block larger than a chunk is one chunk
        Chunk(2500, 3000, 10),
    ]


def test_from_the_start_and_nothing_new() -> None:
    assert plan_chunks([(5, 3)], None, 2000, 10) == [Chunk(None, 5, 3)]
    assert plan_chunks([], 900, 2000, 10) == []
