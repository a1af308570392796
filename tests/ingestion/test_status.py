"""Status files: written atomically, by any number of writers at once."""

from __future__ import annotations

import threading
from pathlib import Path

from ingestion.status import read_status, write_status


def test_concurrent_writers_of_one_status_file_never_fail(tmp_path: Path) -> None:
    """(Two loaders sharing a state folder — a test's and the stack's — used the same
    temporary name: one moved the other's file away, and the other's loop failed.)"""
    path = tmp_path / "landing" / "loader.status.json"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(300):
                write_status(path, {"writer": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    status = read_status(path)
    assert status is not None and status["i"] == 299
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
