"""The appeal workload: how many appeals arrive, when, from where, through which channel.

Pure planning, no database: :func:`plan_day` turns a configuration, the reference data and a
simulated (UTC) day into a time-ordered list of arrivals. It is deterministic: the random
stream of each day is seeded by ``(seed, day)``, so a day's plan is the same whether the
simulation starts on it or runs into it.

Shape of the traffic:
* daily volume = ``appeals_per_day`` x the weekday factor (factors average 1), with Poisson
  noise; the channel mix is allotted exactly per day (largest remainder), then shuffled;
* intraday curve by the *customer's local* hour (a morning ramp, a lunch peak, an evening
  tail), so Vladivostok's peak arrives hours before Moscow's;
* regional skew from the region weights, customers spread over the stores of their region;
* a long tail of topics (Zipf over a shuffled topic list);
* ``repeat_share`` of appeals are the same customer coming back on the same topic through
  any channel (these exercise cross-channel linking).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from types import MappingProxyType
from zoneinfo import ZoneInfo

from dialer_core.crm.reference import CHANNEL_GROUP, REGIONS, Reference, Scale
from dialer_core.crm.settings import CHANNELS

DEFAULT_CHANNEL_MIX: Mapping[str, float] = MappingProxyType({
    "call": 0.45, "chat": 0.15, "email": 0.12, "whatsapp": 0.12, "telegram": 0.08,
    "viber": 0.04, "web": 0.04})
# share of the day's appeals per local hour 00..23 (relative; normalised when used)
DEFAULT_HOURLY = (0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 3.5, 6.0, 7.5, 8.0,
                  7.6, 7.8, 7.6, 7.2, 6.8, 6.2, 5.6, 5.0, 4.2, 3.2, 2.0, 1.0)
# Monday..Sunday: busiest after the weekend, quieter on Sunday; averages exactly 1
DEFAULT_WEEKLY = (1.04, 1.02, 1.00, 0.99, 0.99, 0.98, 0.98)


@dataclass(frozen=True)
class WorkloadConfig:
    appeals_per_day: int = 40_000
    channel_mix: Mapping[str, float] = field(default_factory=lambda: DEFAULT_CHANNEL_MIX)
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY
    weekly_profile: tuple[float, ...] = DEFAULT_WEEKLY
    customers: int = 2_000_000          # population the appeals come from
    repeat_share: float = 0.10
    repeat_lookback: int = 2_000        # a repeat picks among this many recent appeals
    ticket_share: float = 0.30          # appeals that need a ticket
    claim_share: float = 0.35           # of tickets: claims (the rest are tasks)
    scale: Scale = field(default_factory=Scale)
    seed: int = 1

    def __post_init__(self) -> None:
        if set(self.channel_mix) - set(CHANNELS) or not self.channel_mix:
            raise ValueError(f"channel_mix keys must be among {CHANNELS}")
        if len(self.hourly_profile) != 24 or len(self.weekly_profile) != 7:
            raise ValueError("hourly_profile needs 24 values, weekly_profile 7")
        if abs(sum(self.weekly_profile) / 7 - 1) > 1e-6:
            raise ValueError("weekly_profile must average 1 (appeals_per_day is the mean)")
        if self.appeals_per_day < 0 or self.customers < self.scale.stores:
            raise ValueError("appeals_per_day >= 0 and customers >= stores")

    def volume(self, day: date) -> float:
        """The configured (expected) number of appeals on ``day``."""
        return self.appeals_per_day * self.weekly_profile[day.weekday()]


@dataclass(frozen=True)
class Arrival:
    at: datetime
    channel: str
    customer_no: int
    store_id: int
    region_id: int
    topic_id: int
    queue_id: int
    repeat: bool


def exact_counts(total: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` by ``mix`` so the counts add up exactly (largest remainder)."""
    weight = sum(mix.values())
    raw = {k: total * v / weight for k, v in mix.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[
            : total - sum(counts.values())]:
        counts[k] += 1
    return counts


def plan_day(config: WorkloadConfig, ref: Reference, day: date) -> list[Arrival]:
    """Every appeal arriving on the UTC day ``day``, in time order."""
    rng = random.Random(f"crm-workload:{config.seed}:{day.isoformat()}")
    expected = config.volume(day)
    total = max(0, round(rng.gauss(expected, math.sqrt(expected)))) if expected else 0
    channels = [ch for ch, n in exact_counts(total, config.channel_mix).items()
                for _ in range(n)]
    rng.shuffle(channels)
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    noon = midnight + timedelta(hours=12)
    offset = {r.region_id: int(noon.astimezone(ZoneInfo(r.timezone)).utcoffset()
                               .total_seconds())  # type: ignore[union-attr]
              for r in REGIONS}
    regions = rng.choices([r.region_id for r in REGIONS],
                          cum_weights=list(accumulate(r.weight for r in REGIONS)), k=total)
    hours = rng.choices(range(24), cum_weights=list(accumulate(config.hourly_profile)),
                        k=total)
    topics = rng.choices(ref.topic_ids, cum_weights=list(accumulate(ref.topic_weights)),
                         k=total)
    per_store = config.customers // config.scale.stores
    zone = {r.region_id: r.zone for r in REGIONS}
    arrivals = []
    for channel, region, hour, topic in zip(channels, regions, hours, topics, strict=True):
        # local hour -> second of the UTC day; wrapping keeps each day's count exact while
        # keeping the local-time shape
        second = (hour * 3600 + rng.random() * 3600 - offset[region]) % 86400
        store = rng.choice(ref.stores_by_region[region])
        customer = (store - 1) * per_store + rng.randrange(per_store)
        arrivals.append(Arrival(midnight + timedelta(seconds=second), channel, customer, store,
                                region, topic, ref.queue_id[(CHANNEL_GROUP[channel],
                                                             zone[region])], False))
    arrivals.sort(key=lambda a: a.at)
    return _with_repeats(arrivals, config, rng)


def _with_repeats(arrivals: list[Arrival], config: WorkloadConfig,
                  rng: random.Random) -> list[Arrival]:
    """Turn ``repeat_share`` of arrivals into a recent customer's repeat on the same topic
    (keeping the arrival's own time and channel, so counts and mix stay as planned)."""
    out: list[Arrival] = []
    for arrival in arrivals:
        if out and rng.random() < config.repeat_share:
            prior = out[-1 - rng.randrange(min(len(out), config.repeat_lookback))]
            arrival = Arrival(arrival.at, arrival.channel, prior.customer_no, prior.store_id,
                              prior.region_id, prior.topic_id, arrival.queue_id, True)
        out.append(arrival)
    return out
