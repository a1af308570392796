"""Scheduler rules: after each attempt the first matching rule decides the lead's next call.

Kept as a pure function over rules loaded once per batcher tick, so that a rule change takes
effect within a minute and no query runs per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg


@dataclass(frozen=True)
class Rule:
    rule_id: int
    campaign_id: int
    priority: int
    outcome: str          # a call outcome or '*'
    min_attempts: int
    max_attempts: int | None
    action: str           # 'retry' | 'close'
    retry_after: timedelta

    def matches(self, outcome: str, attempts: int) -> bool:
        return (self.outcome in ("*", outcome) and attempts >= self.min_attempts
                and (self.max_attempts is None or attempts <= self.max_attempts))


@dataclass(frozen=True)
class Decision:
    status: str                  # leads.status after the attempt
    next_call_at: datetime
    rule_id: int | None


#: without any matching rule: a retry in an hour, so that a lead is never lost nor hammered
DEFAULT_RETRY = timedelta(hours=1)


def decide(rules: list[Rule], outcome: str, attempts: int, max_attempts: int,
           ended_at: datetime) -> Decision:
    """``attempts`` counts the attempt just finished. An answered (connected) call closes the
    lead unless a rule says otherwise; reaching ``max_attempts`` exhausts it whatever the
    rules say."""
    for rule in sorted(rules, key=lambda r: r.priority):
        if rule.matches(outcome, attempts):
            if rule.action == "close":
                return Decision("done", ended_at, rule.rule_id)
            status = "exhausted" if attempts >= max_attempts else "active"
            return Decision(status, ended_at + rule.retry_after, rule.rule_id)
    if outcome == "answered":
        return Decision("done", ended_at, None)
    status = "exhausted" if attempts >= max_attempts else "active"
    return Decision(status, ended_at + DEFAULT_RETRY, None)


def load_rules(conn: psycopg.Connection) -> dict[int, list[Rule]]:
    """All rules by campaign, in priority order."""
    by_campaign: dict[int, list[Rule]] = {}
    for row in conn.execute(
            "SELECT rule_id, campaign_id, priority, outcome, min_attempts, max_attempts, action,"
            " retry_after FROM scheduler_rules ORDER BY campaign_id, priority"):
        by_campaign.setdefault(row[1], []).append(Rule(*row))
    return by_campaign
