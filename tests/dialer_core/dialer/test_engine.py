"""The engine's call life cycle and strategies, asserting the exact rows written."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from dialer_core.dialer.engine import Engine, run_simulation
from dialer_core.dialer.pacing import CampaignStats

from .conftest import T0
from .factory import campaign, lead, operator
from .scripted import ANSWER, BUSY, NO_ANSWER, ScriptedTelephony

ALL_DAY = {"window_start": "00:00", "window_end": "23:59:59"}


def s(seconds: float) -> object:
    return T0 + timedelta(seconds=seconds)


def attempts(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT lead_id, operator_id, strategy, state, outcome, disposition, originated_at,"
        " ringing_at, answered_at, queued_at, connected_at, ended_at, wrap_ended_at, closed_at"
        " FROM call_attempts ORDER BY attempt_id").fetchall()


def status_log(db: psycopg.Connection, op: int) -> list[tuple]:
    return db.execute("SELECT status, reason, started_at, ended_at FROM operator_status_log"
                      " WHERE operator_id = %s ORDER BY log_id", (op,)).fetchall()


def test_progressive_call_life_cycle_rows(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    op = operator(db, "ann", [c])
    first = lead(db, c, T0 - timedelta(minutes=2))
    second = lead(db, c, T0 - timedelta(minutes=1))
    engine = Engine(db, ScriptedTelephony(ANSWER))
    engine.tick(T0)
    engine.operator_action(op, "login", T0)
    run_simulation(engine, T0, 90)
    # one operator: one reserved call; ring 1 s after origination, answered 5 s later, 60 s of
    # talk, 10 s of wrap-up; then the second lead at once
    assert attempts(db) == [
        (first, op, "progressive", "closed", "answered", "completed", T0, s(1), s(6), None,
         s(6), s(66), s(76), s(76)),
        (second, op, "progressive", "connected", None, None, s(76), s(77), s(82), None, s(82),
         None, None, None)]
    assert db.execute("SELECT status, attempts, locked_by, last_outcome FROM leads"
                      " WHERE lead_id = %s", (first,)).fetchone() == ("done", 1, None, "answered")
    assert status_log(db, op) == [
        ("ready", None, T0, s(6)), ("on_call", None, s(6), s(66)),
        ("wrap_up", None, s(66), s(76)), ("ready", None, s(76), s(82)),
        ("on_call", None, s(82), None)]


def test_first_matching_rule_writes_next_call_at(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, max_attempts=3)
    db.execute("INSERT INTO scheduler_rules (campaign_id, priority, outcome, action, retry_after)"
               " VALUES (%s, 1, 'busy', 'retry', '10 minutes'),"
               "        (%s, 2, '*', 'retry', '2 hours')", (c, c))
    op = operator(db, "ann", [c])
    busy = lead(db, c, T0 - timedelta(minutes=2))
    engine = Engine(db, ScriptedTelephony(BUSY, NO_ANSWER))
    engine.tick(T0)
    engine.operator_action(op, "login", T0)
    no_answer = lead(db, c, T0 - timedelta(minutes=1))
    engine.tick(T0)
    run_simulation(engine, T0 + timedelta(seconds=1), 60)
    rows = db.execute("SELECT lead_id, status, attempts, next_call_at, last_outcome, locked_by"
                      " FROM leads ORDER BY lead_id").fetchall()
    # busy: originated T0+1, rings T0+2, 3 s later busy -> T0+5, rule 1: +10 min;
    # no answer: originated at T0+5, rings T0+6, 30 s -> T0+36, rule 2 ('*'): +2 h
    assert rows == [
        (busy, "active", 1, s(5) + timedelta(minutes=10), "busy", None),
        (no_answer, "active", 1, s(36) + timedelta(hours=2), "no_answer", None)]


def test_predictive_abandons_answered_calls_without_operator_after_2s(db: psycopg.Connection):
    c = campaign(db, "pred", "predictive", **ALL_DAY)
    op = operator(db, "ann", [c])
    leads = [lead(db, c, T0 - timedelta(minutes=5 - i)) for i in range(4)]
    engine = Engine(db, ScriptedTelephony(ANSWER, ANSWER, ANSWER))
    engine.metrics.stats[c] = CampaignStats(answered=200, abandoned=0, outcomes=600)
    engine.tick(T0)
    engine.operator_action(op, "login", T0)
    run_simulation(engine, T0, 10)
    # 1 free operator, answer rate 0.3, budget 3.6 abandons: 3 calls, all answered at T0+6
    assert db.execute("SELECT lead_id, operator_id, state, outcome, answered_at, queued_at,"
                      " connected_at, ended_at FROM call_attempts ORDER BY attempt_id"
                      ).fetchall() == [
        (leads[0], op, "connected", None, s(6), s(6), s(6), None),
        (leads[1], None, "closed", "abandoned", s(6), s(6), None, s(8)),
        (leads[2], None, "closed", "abandoned", s(6), s(6), None, s(8))]
    assert engine.metrics.stats[c].abandoned == 2


def test_predictive_without_abandon_budget_never_overdials(db: psycopg.Connection):
    c = campaign(db, "pred", "predictive", **ALL_DAY)
    ops = [operator(db, f"op{i}", [c]) for i in range(2)]
    for i in range(10):
        lead(db, c, T0 - timedelta(minutes=10 - i))
    engine = Engine(db, ScriptedTelephony())
    engine.tick(T0)
    for op in ops:
        engine.operator_action(op, "login", T0)
    run_simulation(engine, T0, 30)
    assert db.execute("SELECT count(*), count(*) FILTER (WHERE outcome = 'abandoned')"
                      " FROM call_attempts").fetchone() == (2, 0)


def test_preview_reserves_the_operator_before_dialing(db: psycopg.Connection):
    c = campaign(db, "pv", "preview", **ALL_DAY)
    op = operator(db, "ann", [c])
    x = lead(db, c, T0 - timedelta(minutes=1))
    engine = Engine(db, ScriptedTelephony(ANSWER))
    engine.tick(T0)
    engine.operator_action(op, "login", T0)
    run_simulation(engine, T0, 20)
    # 8 s of preview (the operator reads the lead, nobody else can take them), then the call;
    # no attempt row exists during the preview
    assert db.execute("SELECT lead_id, operator_id, strategy, originated_at, ringing_at,"
                      " answered_at, connected_at FROM call_attempts").fetchall() == [
        (x, op, "preview", s(8), s(9), s(14), s(14))]


def test_personal_campaign_dials_only_owners_their_own_leads(db: psycopg.Connection):
    from dialer_core.dialer.buckets import personal_bucket

    c = campaign(db, "mine", "personal", **ALL_DAY)
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    own = lead(db, c, T0 - timedelta(minutes=1), bucket_id=personal_bucket(db, c, ann))
    lead(db, c, T0 - timedelta(minutes=2))            # common: a personal campaign skips it
    engine = Engine(db, ScriptedTelephony())
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    engine.operator_action(bob, "login", T0)
    run_simulation(engine, T0, 30)
    assert db.execute("SELECT lead_id, operator_id, strategy FROM call_attempts").fetchall() == [
        (own, ann, "personal")]


def test_operator_removed_mid_call_finishes_it_then_leaves(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    op = operator(db, "ann", [c])
    x = lead(db, c, T0 - timedelta(minutes=2))
    lead(db, c, T0 - timedelta(minutes=1))
    engine = Engine(db, ScriptedTelephony(ANSWER))
    engine.tick(T0)
    engine.operator_action(op, "login", T0)
    run_simulation(engine, T0, 30)
    db.execute("UPDATE operators SET removed_at = %s WHERE operator_id = %s", (s(30), op))
    run_simulation(engine, s(60), 60)                  # the tick at T0+60 sees the removal
    assert db.execute("SELECT lead_id, state, closed_at FROM call_attempts").fetchall() == [
        (x, "closed", s(76))]                          # finished, and no new call
    assert db.execute("SELECT status FROM operators").fetchone() == ("offline",)
    assert op not in engine.operators


def test_caller_id_routing_on_the_attempt(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, caller_id="+78000000000")
    ann = operator(db, "ann", [c])
    db.execute("INSERT INTO caller_id_routes (kind, phone_prefix, caller_id)"
               " VALUES ('regional', '+7383', '+73830000000')")
    db.execute("INSERT INTO caller_id_routes (kind, operator_id, caller_id)"
               " VALUES ('operator', %s, '+74950000001')", (ann,))
    from dialer_core.dialer.buckets import personal_bucket

    lead(db, c, T0 - timedelta(minutes=3), phone="+73831112233")
    lead(db, c, T0 - timedelta(minutes=2), phone="+74951112233")
    lead(db, c, T0 - timedelta(minutes=1), phone="+74951112244",
         bucket_id=personal_bucket(db, c, ann))
    engine = Engine(db, ScriptedTelephony(default=BUSY))
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    run_simulation(engine, T0, 20)
    # personal lead first (the operator's own number), then regional, then the campaign's
    assert db.execute("SELECT phone, strategy, caller_id FROM call_attempts"
                      " ORDER BY attempt_id").fetchall() == [
        ("+74951112244", "personal", "+74950000001"),
        ("+73831112233", "progressive", "+73830000000"),
        ("+74951112233", "progressive", "+78000000000")]
