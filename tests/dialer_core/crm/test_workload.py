"""The workload plan at default settings (pure, no database, no sleeping): daily volume,
channel mix, intraday and regional shape, long tail, repeats, determinism."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from dialer_core.crm import reference
from dialer_core.crm.workload import (
    DEFAULT_CHANNEL_MIX,
    Arrival,
    WorkloadConfig,
    exact_counts,
    plan_day,
)

CONFIG = WorkloadConfig()
REF = reference.build(CONFIG.scale)
WEEK = [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]  # Monday..Sunday


@pytest.fixture(scope="module")
def week() -> dict[date, list[Arrival]]:
    return {day: plan_day(CONFIG, REF, day) for day in WEEK}


def test_defaults_match_the_brief() -> None:
    assert (CONFIG.appeals_per_day, CONFIG.scale.operators, CONFIG.scale.supervisors,
            CONFIG.scale.stores) == (40_000, 500, 100, 16_000)
    roles = Counter(row[3] for row in REF.tables["employees"])
    assert (roles["operator"], roles["supervisor"]) == (500, 100)
    assert len(REF.tables["stores"]) == 16_000


def test_each_day_within_5_percent_of_configured_volume(week: dict[date, list[Arrival]]) -> None:
    for day, arrivals in week.items():
        assert abs(len(arrivals) - CONFIG.appeals_per_day) <= 0.05 * CONFIG.appeals_per_day
        assert abs(len(arrivals) - CONFIG.volume(day)) <= 0.05 * CONFIG.volume(day)
        assert all(a.at.date() == day for a in arrivals)
        assert [a.at for a in arrivals] == sorted(a.at for a in arrivals)
    total = sum(len(a) for a in week.values())
    assert abs(total - 7 * CONFIG.appeals_per_day) <= 0.01 * 7 * CONFIG.appeals_per_day


def test_each_day_has_the_configured_channel_mix(week: dict[date, list[Arrival]]) -> None:
    for arrivals in week.values():
        counts = Counter(a.channel for a in arrivals)
        assert counts == exact_counts(len(arrivals), DEFAULT_CHANNEL_MIX)
        for channel, share in DEFAULT_CHANNEL_MIX.items():
            assert abs(counts[channel] / len(arrivals) - share) < 0.001


def test_intraday_curve_follows_local_time(week: dict[date, list[Arrival]]) -> None:
    arrivals = week[WEEK[0]]
    moscow = Counter((a.at.hour + 3) % 24 for a in arrivals if a.region_id == 1)
    vladivostok = Counter((a.at.hour + 10) % 24 for a in arrivals if a.region_id == 12)
    for local in (moscow, vladivostok):
        day = sum(local[h] for h in range(10, 17))
        night = sum(local[h] for h in range(2, 5))
        assert day > 20 * night


def test_regional_skew_topic_tail_and_repeats(week: dict[date, list[Arrival]]) -> None:
    arrivals = [a for day in week.values() for a in day]
    regions = Counter(a.region_id for a in arrivals)
    assert abs(regions[1] / len(arrivals) - 0.28) < 0.01        # Moscow
    assert abs(regions[13] / len(arrivals) - 0.03) < 0.005      # Khabarovsk
    topics = Counter(a.topic_id for a in arrivals).most_common()
    assert topics[0][1] / len(arrivals) > 0.15                   # a head ...
    assert len(topics) == CONFIG.scale.topics                    # ... and a long tail
    assert sum(n for _, n in topics[40:]) / len(arrivals) < 0.15
    repeats = sum(a.repeat for a in arrivals) / len(arrivals)
    assert 0.09 < repeats < 0.11
    assert all(REF.store_region[a.store_id] == a.region_id for a in arrivals)


def test_deterministic_by_seed() -> None:
    day = WEEK[2]
    small = WorkloadConfig(appeals_per_day=2_000)
    assert plan_day(small, REF, day) == plan_day(small, REF, day)
    other = WorkloadConfig(appeals_per_day=2_000, seed=2)
    assert plan_day(small, REF, day) != plan_day(other, REF, day)


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="average 1"):
        WorkloadConfig(weekly_profile=(1, 1, 1, 1, 1, 1, 2))
    with pytest.raises(ValueError, match="channel_mix"):
        WorkloadConfig(channel_mix={"fax": 1.0})
