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
from datetime import UTC, datetime, timedelta
from typing import Protocol


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
