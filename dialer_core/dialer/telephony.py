"""An Asterisk-like telephony simulator, deterministic for a seed.

``plan_call`` decides everything about one originated call up front (ring time, outcome, talk,
hold, wrap-up) from a seeded generator, so that a run with the same seed and the same sequence of
originations produces the same calls. Answer probability follows the subscriber's local hour
(people answer less at lunch and late in the evening).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

OUTCOMES = ("answered", "busy", "no_answer", "failed", "machine")


@dataclass(frozen=True)
class Profile:
    """Outcome and duration distributions of one campaign."""

    answer: float = 0.30
    busy: float = 0.10
    failed: float = 0.03
    machine: float = 0.08
    ring_mean_s: float = 12.0
    no_answer_ring_s: float = 30.0
    talk_median_s: float = 100.0
    talk_sigma: float = 0.6
    hold_share: float = 0.2      # share of calls with a hold
    hold_mean_s: float = 25.0
    wrap_min_s: float = 8.0
    wrap_max_s: float = 35.0


#: relative answer likelihood by the subscriber's local hour
_HOUR_FACTOR = {12: 0.8, 13: 0.7, 18: 1.1, 19: 1.15, 20: 0.9, 21: 0.7}


@dataclass(frozen=True)
class CallPlan:
    ring_s: float
    outcome: str
    talk_s: float = 0.0
    hold_s: float = 0.0
    wrap_s: float = 0.0


def _pick(draw: float, shares: list[tuple[str, float]]) -> str:
    """The outcome whose cumulative share covers ``draw``; the remainder is no answer."""
    for outcome, share in shares:
        if draw < share:
            return outcome
        draw -= share
    return "no_answer"


class Telephony:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def answer_probability(self, profile: Profile, local_hour: int) -> float:
        return min(0.95, profile.answer * _HOUR_FACTOR.get(local_hour, 1.0))

    def plan_call(self, profile: Profile, local_hour: int) -> CallPlan:
        rng = self.rng
        p_answer = self.answer_probability(profile, local_hour)
        draw = rng.random()
        ring = max(1.0, rng.expovariate(1 / profile.ring_mean_s))
        outcome = _pick(draw, [("answered", p_answer), ("busy", profile.busy),
                               ("failed", profile.failed), ("machine", profile.machine)])
        if outcome == "no_answer":
            return CallPlan(profile.no_answer_ring_s, "no_answer")
        if outcome == "busy":
            return CallPlan(min(ring, 4.0), "busy")
        if outcome == "failed":
            return CallPlan(1.0, "failed")
        if outcome == "machine":
            return CallPlan(ring, "machine", talk_s=rng.uniform(3, 12))
        talk = rng.lognormvariate(math.log(profile.talk_median_s), profile.talk_sigma)
        hold = rng.expovariate(1 / profile.hold_mean_s) if rng.random() < profile.hold_share else 0
        wrap = rng.uniform(profile.wrap_min_s, profile.wrap_max_s)
        return CallPlan(ring, "answered", round(talk, 1), round(hold, 1), round(wrap, 1))

    def plan_inbound(self, profile: Profile) -> tuple[CallPlan, float]:
        """An inbound caller's talk/hold/wrap-up and how long they wait in queue before
        hanging up (exponential patience, mean one minute)."""
        rng = self.rng
        talk = rng.lognormvariate(math.log(profile.talk_median_s), profile.talk_sigma)
        hold = rng.expovariate(1 / profile.hold_mean_s) if rng.random() < profile.hold_share else 0
        wrap = rng.uniform(profile.wrap_min_s, profile.wrap_max_s)
        patience = max(3.0, rng.expovariate(1 / 60))
        return CallPlan(0.0, "answered", round(talk, 1), round(hold, 1), round(wrap, 1)), patience

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def uniform(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)
