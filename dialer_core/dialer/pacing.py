"""Predictive pacing: how many calls to originate now for one campaign.

The dialer over-dials only with abandon budget in hand. Abandoned calls (answered, no operator
within 2 s) are capped by regulators at 3 % of answered calls per campaign, so the budget is
``MARGIN * target * answered - abandoned - abandons at risk from calls already ringing``; the
margin keeps the aim under the cap (the cap is a hard limit, the estimate is not) and the risk
uses a pessimistic answer rate. With budget, it dials for the expected answers (free operators /
answer rate) within the budget and the campaign's maximum ratio; without, it dials at most one
call per free operator not already covered by a ringing call, which cannot abandon. The rate
therefore stays under the target instead of being corrected after the fact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: aim at this share of the regulatory cap: calls already ringing when the budget runs out
#: (an operator logs out, a callback claims them) can still abandon, so the aim stays below it
MARGIN = 0.6
#: answered calls a campaign needs before any over-dialing: a rate from a handful of calls is
#: noise, and a few abandons on a small base already exceed the cap
WARM_UP = 100
#: answer rate used for risk: the smoothed estimate lags a rising answer rate
RISK_FACTOR = 1.5


@dataclass
class CampaignStats:
    """Running counts for one campaign (the day so far) and a smoothed answer rate."""

    answered: int = 0        # answered by a person (connected or abandoned)
    abandoned: int = 0
    outcomes: int = 0
    answer_rate: float = 0.3  # prior until outcomes arrive

    def record(self, answered: bool, abandoned: bool = False) -> None:
        self.outcomes += 1
        alpha = max(0.02, 1 / self.outcomes)
        self.answer_rate += alpha * ((1.0 if answered else 0.0) - self.answer_rate)
        if answered:
            self.answered += 1
        if abandoned:
            self.abandoned += 1

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


def predictive_calls(free_operators: int, ringing: int, stats: CampaignStats,
                     target: float, max_ratio: float) -> int:
    """Calls to originate now (never negative)."""
    if free_operators <= 0:
        return 0
    p = min(max(stats.answer_rate, 0.05), 1.0)
    p_risk = min(1.0, p * RISK_FACTOR)
    safe = max(0, free_operators - ringing)
    budget = MARGIN * target * stats.answered - stats.abandoned
    if stats.answered < WARM_UP:
        budget = 0.0
    # a ringing call beyond the free operators abandons if answered
    at_risk = max(0.0, ringing - free_operators) * p_risk
    if budget - at_risk < 1.0:
        return safe
    wanted = math.floor((free_operators - ringing * p) / p)
    cap = math.floor(free_operators * max_ratio) - ringing
    # each call beyond the safe count abandons with probability at most ~p_risk
    affordable = safe + math.floor((budget - at_risk) / p_risk)
    return max(safe, min(wanted, cap, affordable))
