"""Pure pieces without a database: pacing, rules, caller-ID routing, telephony determinism."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from dialer_core.dialer.caller_id import Route, resolve
from dialer_core.dialer.pacing import CampaignStats, predictive_calls
from dialer_core.dialer.rules import Rule, decide
from dialer_core.dialer.telephony import Profile, Telephony

from .conftest import T0


def test_pacing_without_budget_dials_one_per_uncovered_operator():
    stats = CampaignStats(answered=10, abandoned=0, outcomes=30, answer_rate=0.3)
    assert predictive_calls(5, 2, stats, 0.03, 3.0) == 3
    assert predictive_calls(0, 0, stats, 0.03, 3.0) == 0


def test_pacing_with_budget_overdials_within_ratio_and_budget():
    # the aim is 60 % of the 3 % cap: 18 abandons per 1000 answered
    stats = CampaignStats(answered=1000, abandoned=0, outcomes=4000, answer_rate=0.25)
    assert predictive_calls(10, 0, stats, 0.03, 3.0) == 30           # ratio cap
    assert predictive_calls(10, 0, stats, 0.03, 5.0) == 40           # free / answer rate
    spent = CampaignStats(answered=1000, abandoned=18, outcomes=4000, answer_rate=0.25)
    assert predictive_calls(10, 0, spent, 0.03, 5.0) == 10           # no abandon left
    thin = CampaignStats(answered=1000, abandoned=16, outcomes=4000, answer_rate=0.25)
    assert predictive_calls(10, 0, thin, 0.03, 5.0) == 15            # 2 left / 0.375 -> 5
    assert predictive_calls(10, 14, thin, 0.03, 5.0) == 0            # 4 ringing at risk
    young = CampaignStats(answered=99, abandoned=0, outcomes=300, answer_rate=0.33)
    assert predictive_calls(10, 0, young, 0.03, 5.0) == 10           # still warming up


def test_first_matching_rule_and_exhaustion():
    rules = [Rule(1, 1, 1, "busy", 0, 2, "retry", timedelta(minutes=5)),
             Rule(2, 1, 2, "busy", 3, None, "retry", timedelta(hours=1)),
             Rule(3, 1, 3, "*", 0, None, "close", timedelta(0))]
    assert decide(rules, "busy", 1, 5, T0) == decide(rules, "busy", 2, 5, T0).__class__(
        "active", T0 + timedelta(minutes=5), 1)
    assert decide(rules, "busy", 3, 5, T0).rule_id == 2
    assert decide(rules, "busy", 5, 5, T0).status == "exhausted"
    assert decide(rules, "no_answer", 1, 5, T0).status == "done"
    assert decide([], "answered", 1, 5, T0).status == "done"
    assert decide([], "failed", 1, 5, T0).next_call_at == T0 + timedelta(hours=1)


def test_caller_id_operator_then_longest_region_then_campaign():
    routes = [Route("campaign", 1, None, None, "C1"), Route("regional", None, None, "+7495", "R"),
              Route("regional", 1, None, "+74951", "R1"), Route("operator", None, 7, None, "O7")]
    assert resolve(routes, 1, "+74951112233", 7, "D") == "O7"
    assert resolve(routes, 1, "+74951112233", None, "D") == "R1"
    assert resolve(routes, 2, "+74951112233", None, "D") == "R"
    assert resolve(routes, 1, "+73832223344", None, "D") == "C1"
    assert resolve(routes, 2, "+73832223344", None, "D") == "D"


def test_telephony_is_deterministic_for_a_seed_and_follows_the_profile():
    profile = Profile()
    a = [Telephony(5).plan_call(profile, 10) for _ in range(3)]
    b = [Telephony(5).plan_call(profile, 10) for _ in range(3)]
    assert a == b
    sim = Telephony(9)
    outcomes = Counter(sim.plan_call(profile, 10).outcome for _ in range(20_000))
    assert abs(outcomes["answered"] / 20_000 - 0.30) < 0.02
    assert abs(outcomes["busy"] / 20_000 - 0.10) < 0.01
    lunch = Counter(sim.plan_call(profile, 13).outcome for _ in range(20_000))
    assert lunch["answered"] < outcomes["answered"]
