"""Property tests over random schedules (seeded loops; hypothesis is not installed).

For each seed: random campaigns (windows, strategies, reassignment delays), leads in random IANA
zones, operators who pause, come back, agree callbacks and sometimes log out; a few simulated
hours (one run a whole day) with the seeded telephony. (Seeds 1-10 passed at 3 h; five are
kept to bound the suite's time.) Then, from the rows written:
* no lead was ever dialed outside its local calling window;
* no callback was dialed to another operator before its reassignment delay;
* the abandoned rate of every campaign stayed at or under its 3 % target.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dialer_core.dialer.engine import Engine, Workforce, run_simulation
from dialer_core.dialer.telephony import Telephony

from .factory import campaign, lead, operator

ZONES = ["UTC", "Europe/Moscow", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
         "America/Los_Angeles", "Asia/Kolkata", "Europe/London"]


def build(db: psycopg.Connection, rng: random.Random, start: datetime) -> list[int]:
    campaigns = []
    for i in range(3):
        ws = rng.choice(["08:00", "09:00", "10:00", "20:00"])
        we = rng.choice(["17:00", "21:00", "23:30", "04:00"])
        campaigns.append(campaign(
            db, f"c{i}", rng.choice(["predictive", "predictive", "progressive"]),
            window_start=ws, window_end=we,
            callback_reassign_after=f"{rng.randint(2, 20)} minutes",
            callback_fallback=rng.choice(["operator", "common"])))
    for i in range(12):
        operator(db, f"op{i}", rng.sample(campaigns, rng.randint(1, 2)))
    for _ in range(600):
        lead(db, rng.choice(campaigns), start - timedelta(minutes=rng.randint(0, 600)),
             rng.choice(ZONES), phone=f"+1{rng.randint(10**9, 10**10 - 1)}")
    return campaigns


@pytest.mark.parametrize(("seed", "hours"), [(1, 3), (2, 3), (3, 3), (4, 3), (5, 24)])
def test_random_schedules_keep_every_rule(db: psycopg.Connection, seed: int, hours: int):
    rng = random.Random(seed)
    start = datetime(2026, 3, 7, rng.randint(0, 23), 0, tzinfo=UTC)   # spans the US DST jump
    build(db, rng, start)
    engine = Engine(db, Telephony(seed), Workforce(callback_share=0.3, pause_share=0.05,
                                                  callback_minutes=(1, 30)))
    operators = [r[0] for r in db.execute("SELECT operator_id FROM operators")]
    for op in operators:
        engine.operator_action(op, "login", start)

    def churn(now: datetime) -> None:
        for op in operators:
            state = engine.operators.get(op)
            if state is None or state.attempt_id is not None:
                continue
            if state.status == "ready" and rng.random() < 0.02:
                engine.operator_action(op, "logout", now)
            elif state.status == "offline" and rng.random() < 0.2:
                engine.operator_action(op, "login", now)

    run_simulation(engine, start, hours * 3600, on_minute=churn)
    engine.writer.flush()

    outside = db.execute(
        "SELECT a.attempt_id, a.originated_at, l.timezone, c.window_start, c.window_end"
        " FROM call_attempts a JOIN leads l USING (lead_id) JOIN campaigns c"
        "   ON c.campaign_id = a.campaign_id"
        " CROSS JOIN LATERAL (SELECT (a.originated_at AT TIME ZONE l.timezone)::time AS t) x"
        " WHERE NOT CASE WHEN c.window_start <= c.window_end"
        "   THEN x.t >= c.window_start AND x.t < c.window_end"
        "   ELSE x.t >= c.window_start OR x.t < c.window_end END").fetchall()
    assert outside == []

    early = db.execute(
        "SELECT a.attempt_id FROM call_attempts a JOIN callbacks cb USING (callback_id)"
        " JOIN campaigns c ON c.campaign_id = cb.campaign_id"
        " WHERE a.operator_id IS DISTINCT FROM cb.operator_id"
        "   AND (cb.reassigned_at IS NULL"
        "        OR a.originated_at < cb.next_call_at + c.callback_reassign_after)").fetchall()
    assert early == []

    rates = db.execute(
        "SELECT campaign_id, count(*) FILTER (WHERE outcome = 'abandoned'),"
        " count(*) FILTER (WHERE answered_at IS NOT NULL) FROM call_attempts"
        " GROUP BY campaign_id").fetchall()
    assert sum(r[2] for r in rates) > 50                     # the run really dialed
    for campaign_id, abandoned, answered in rates:
        assert abandoned <= 0.03 * answered, (campaign_id, abandoned, answered)
    assert engine.metrics.callbacks_created > 0
