"""The PostgreSQL service's start-up repairs (no server needed)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil

from contour.config import Config
from contour.services.postgres import Postgres


def _service(tmp_path: Path) -> Postgres:
    service = Postgres(Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path / "state")}))
    service.data.mkdir(parents=True)
    return service


def _lock(service: Postgres, pid: int) -> Path:
    lock = service.data / "postmaster.pid"
    lock.write_text(f"{pid}\n{service.data}\n1700000000\n5432\n")
    return lock


def test_the_lock_of_a_killed_server_is_removed(tmp_path: Path) -> None:
    """A SIGKILLed postmaster not yet reaped is a zombie: PostgreSQL would take the lock for
    a running server and refuse to start."""
    service = _service(tmp_path)
    zombie = subprocess.Popen(["true"])  # never waited for: a zombie once it exits
    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lock = _lock(service, zombie.pid)
    said: list[str] = []
    service._remove_stale_lock(said.append)
    assert not lock.exists()
    assert said and f"pid {zombie.pid}" in said[0]
    zombie.wait()

    lock = _lock(service, zombie.pid)  # reaped now: the pid is gone
    service._remove_stale_lock(said.append)
    assert not lock.exists()


def test_the_lock_of_a_live_process_is_left_to_postgresql(tmp_path: Path) -> None:
    service = _service(tmp_path)
    lock = _lock(service, os.getpid())
    service._remove_stale_lock(lambda _: None)
    assert lock.exists()
