"""Business calendars: SLA clocks that run only during working hours of a territory.

A claim promised "within 16 business hours" from Friday evening in Vladivostok is due on Tuesday
there, later if Monday is a holiday. Hours are wall-clock in the calendar's IANA zone (a working
day is 09:00-18:00 local even on a DST change day) while the arithmetic is done on UTC instants
so that a 23- or 25-hour day is counted by its real length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MAX_DAYS = 3 * 366  # a calendar with no working day in three years is a configuration error


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str
    day_start: time = time(9)
    day_end: time = time(18)
    weekend_isodow: frozenset[int] = frozenset({6, 7})
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        return day.isoweekday() not in self.weekend_isodow and day not in self.holidays

    def _window(self, day: date) -> tuple[datetime, datetime]:
        """The working window of a local day, as UTC instants."""
        zone = self.zone
        start = datetime.combine(day, self.day_start, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day, self.day_end, tzinfo=zone).astimezone(UTC)
        return start, end

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The UTC instant ``minutes`` of working time after ``start`` (timezone-aware)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        remaining = timedelta(minutes=minutes)
        cursor = start.astimezone(UTC)
        day = cursor.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                win_start, win_end = self._window(day)
                begin = max(cursor, win_start)
                if begin < win_end:
                    available = win_end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.timezone} has no working time within {_MAX_DAYS} days")
