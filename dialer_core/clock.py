"""The shared clock of the dialer and the CRM: real time, or simulated time running faster.

A simulated clock maps real elapsed time to simulated time: ``sim = start + (real - t0) * speed``.
With ``speed=60`` one real second is one simulated minute. Every component asks the clock for
``now()`` and sleeps through it, so a whole simulated day runs in 24 real minutes at speed 60 and
behaves exactly like a real one, only faster. ``ManualClock`` is for tests: time moves only when
the test says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import psycopg


class Clock(Protocol):
    def now(self) -> datetime:
        """Current (simulated) time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        ...


class SimClock:
    """Real time (speed 1) or accelerated simulated time starting at ``start``."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self.speed = speed
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


def newest_recorded(dsn: str, columns: tuple[str, ...]) -> datetime | None:
    """The newest of the ``table.column`` timestamps in the database; None when it holds none
    (or is not migrated yet)."""
    selects = " UNION ALL ".join(
        f"SELECT max({column}) AS t FROM {table}"
        for table, column in (c.split(".", 1) for c in columns))
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            row = conn.execute(f"SELECT max(t) FROM ({selects}) s").fetchone()  # type: ignore[arg-type]
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return None  # not migrated yet / not reachable: the service's own start says so
    return row[0] if row else None


def resumed_clock(speed: float, start: datetime | None, newest: datetime | None,
                  say: Callable[[str], object] = print) -> SimClock:
    """A simulated clock that never runs backwards across restarts: a run at speed 60 writes
    events hours ahead of the wall clock, so a restarted service starting at "now" would write
    new events before old ones (overlapping operator states, negative durations). It starts at
    ``start`` (default now) or, when the database already holds later events, at the newest."""
    begin = (start or datetime.now(UTC)).astimezone(UTC)
    if newest is not None and newest > begin:
        say(f"simulated clock resumes at {newest:%Y-%m-%d %H:%M:%S} UTC, the newest event "
            f"already recorded (later than {begin:%Y-%m-%d %H:%M:%S}): time never runs "
            "backwards across a restart")
        begin = newest
    return SimClock(speed, begin)


class ManualClock:
    """A clock for tests: ``advance()`` moves it; ``sleep()`` returns at once after advancing."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
