"""SLA clocks across weekends, holidays, time zones and DST (unit tests, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from dialer_core.crm.business_calendar import BusinessCalendar

MSK = BusinessCalendar("Europe/Moscow", holidays=frozenset({date(2026, 11, 4)}))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_within_one_working_day() -> None:
    # Mon 2026-11-16 10:00 MSK = 07:00 UTC; +120 min -> 12:00 MSK
    assert MSK.add_business_minutes(utc(2026, 11, 16, 7), 120) == utc(2026, 11, 16, 9)


def test_friday_evening_rolls_over_the_weekend() -> None:
    # Fri 2026-11-20 17:00 MSK: 60 min left that day, 420 on Monday from 09:00 -> 16:00 MSK
    assert MSK.add_business_minutes(utc(2026, 11, 20, 14), 480) == utc(2026, 11, 23, 13)


def test_start_on_weekend_counts_from_monday_morning() -> None:
    assert MSK.add_business_minutes(utc(2026, 11, 21, 12), 30) == utc(2026, 11, 23, 6, 30)


def test_holiday_is_skipped() -> None:
    # Tue 2026-11-03 17:30 MSK; Wed 11-04 is a holiday -> Thu 09:00 + 90 min = 10:30 MSK
    assert MSK.add_business_minutes(utc(2026, 11, 3, 14, 30), 120) == utc(2026, 11, 5, 7, 30)


def test_same_instant_different_timezone() -> None:
    vvo = BusinessCalendar("Asia/Vladivostok")  # UTC+10
    # 2026-11-16 07:00 UTC is 17:00 in Vladivostok (1 h left) but 10:00 in Moscow
    # Vladivostok: 60 min on Monday, 60 on Tuesday from 09:00 -> 10:00 VVO = 00:00 UTC
    assert vvo.add_business_minutes(utc(2026, 11, 16, 7), 120) == utc(2026, 11, 17, 0)
    assert MSK.add_business_minutes(utc(2026, 11, 16, 7), 120) == utc(2026, 11, 16, 9)


def test_dst_change_keeps_wall_clock_hours() -> None:
    berlin = BusinessCalendar("Europe/Berlin", day_end=time(17))
    # Fri 2026-03-27 16:00 CET (15:00 UTC); DST starts Sun 03-29; Mon 09:00 CEST = 07:00 UTC
    assert berlin.add_business_minutes(utc(2026, 3, 27, 15), 120) == utc(2026, 3, 30, 8)


def test_zero_minutes_outside_hours_is_next_opening() -> None:
    assert MSK.add_business_minutes(utc(2026, 11, 16, 20), 0) == utc(2026, 11, 17, 6)


def test_calendar_without_working_days_is_an_error() -> None:
    never = BusinessCalendar("UTC", weekend_isodow=frozenset(range(1, 8)))
    with pytest.raises(ValueError, match="no working time"):
        never.add_business_minutes(utc(2026, 1, 1), 1)


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MSK.add_business_minutes(datetime(2026, 1, 1), 1)
