"""What the pipeline processes share: status files for health checks, foreground running."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any


def configure_logging() -> None:
    """Log lines of the pipeline commands: time, level, message, on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def run_in_foreground(workers: list[Callable[[threading.Event], None]]) -> int:
    """Run each worker in a thread until SIGTERM/SIGINT sets their shared stop event. A
    worker that raises (an error it must not retry) stops them all: exit status 1, the error
    in the log."""
    configure_logging()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    failed: list[BaseException] = []

    def guarded(work: Callable[[threading.Event], None]) -> None:
        try:
            work(stop)
        except Exception as exc:  # noqa: BLE001 - reported, then every worker stops
            logging.getLogger("contour").error("stopping: %s", exc)
            failed.append(exc)
            stop.set()

    threads = [threading.Thread(target=guarded, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)
    return 1 if failed else 0


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the file atomically; the temporary file is the writer's own (two processes
    or threads writing one status file must not move each other's half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class RollingRate:
    """Events per second over the last ``window`` seconds of a monotonically growing total."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def __call__(self, total: int) -> float:
        now = time.monotonic()
        self._samples.append((now, total))
        while len(self._samples) > 1 and now - self._samples[0][0] > self.window:
            self._samples.popleft()
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else 0.0
