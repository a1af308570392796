"""Callbacks, including every failure case that broke the older design (DESIGN.md), each
asserting the exact resulting rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dialer_core.dialer.buckets import common_bucket, personal_bucket
from dialer_core.dialer.callbacks import CallbackError, cancel_callback, create_callback
from dialer_core.dialer.engine import Engine, run_simulation
from dialer_core.dialer.telephony import CallPlan

from .conftest import T0
from .factory import campaign, lead, operator
from .scripted import ScriptedTelephony

ALL_DAY = {"window_start": "00:00", "window_end": "23:59:59"}
FAR = T0 + timedelta(days=30)


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def callback_rows(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT lead_id, operator_id, assigned_operator_id, agreed_at, next_call_at, status,"
        " reason, reassigned_at, reassigned_to FROM callbacks ORDER BY callback_id").fetchall()


def callback_attempts(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT callback_id, lead_id, operator_id, strategy, originated_at"
                      " FROM call_attempts WHERE callback_id IS NOT NULL ORDER BY attempt_id"
                      ).fetchall()


def lead_place(db: psycopg.Connection, lead_id: int) -> tuple:
    return db.execute("SELECT bucket_id, next_call_at, status FROM leads WHERE lead_id = %s",
                      (lead_id,)).fetchone()  # type: ignore[return-value]


def engine_for(db: psycopg.Connection, *plans: CallPlan) -> Engine:
    return Engine(db, ScriptedTelephony(*plans))


def test_next_call_at_is_min_of_agreed_time_and_schedule(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    later = lead(db, c, m(60))
    sooner = lead(db, c, m(60))
    due = lead(db, c, m(-60))
    create_callback(db, later, ann, m(120), T0)     # schedule (T0+1h) comes first
    create_callback(db, sooner, ann, m(30), T0)     # agreed time comes first
    create_callback(db, due, ann, m(120), T0)       # already due: nothing later to respect
    assert callback_rows(db) == [
        (later, ann, ann, m(120), m(60), "pending", None, None, None),
        (sooner, ann, ann, m(30), m(30), "pending", None, None, None),
        (due, ann, ann, m(120), m(120), "pending", None, None, None)]
    personal = personal_bucket(db, c, ann)
    assert [lead_place(db, x) for x in (later, sooner, due)] == [
        (personal, m(60), "active"), (personal, m(30), "active"), (personal, m(120), "active")]


def test_duplicate_callback_reschedules_the_open_one(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    first = create_callback(db, x, ann, m(60), T0)
    assert create_callback(db, x, ann, m(60), T0) == first          # same request twice
    assert create_callback(db, x, bob, m(180), m(1)) == first       # rescheduled, later
    assert callback_rows(db) == [(x, bob, bob, m(180), m(180), "pending", None, None, None)]
    assert lead_place(db, x) == (personal_bucket(db, c, bob), m(180), "active")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("INSERT INTO callbacks (lead_id, campaign_id, agreed_at, next_call_at,"
                   " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                   (x, c, m(5), m(5), T0, T0))


def test_lead_deleted_with_a_pending_callback(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    x = lead(db, c, FAR)
    create_callback(db, x, ann, m(1), T0)
    engine = engine_for(db)
    engine.tick(T0)                       # the callback is in the hopper now
    engine.operator_action(ann, "login", T0)
    db.execute("DELETE FROM leads WHERE lead_id = %s", (x,))
    run_simulation(engine, m(1), 120)
    assert callback_rows(db) == [(None, ann, ann, m(1), m(1), "cancelled", "lead_deleted",
                                  None, None)]
    assert callback_attempts(db) == []
    assert db.execute("SELECT count(*) FROM call_attempts").fetchone() == (0,)


def test_lead_moved_by_a_supervisor_cancels_its_callback(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    other = campaign(db, "other", **ALL_DAY)
    ann = operator(db, "ann", [c])
    x = lead(db, c, FAR)
    y = lead(db, c, FAR)
    create_callback(db, x, ann, m(1), T0)
    create_callback(db, y, ann, m(1), T0)
    engine = engine_for(db)
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    db.execute("UPDATE leads SET bucket_id = %s WHERE lead_id = %s", (common_bucket(db, c), x))
    db.execute("UPDATE leads SET campaign_id = %s, bucket_id = %s WHERE lead_id = %s",
               (other, common_bucket(db, other), y))
    run_simulation(engine, m(1), 30)
    assert [r[5:7] for r in callback_rows(db)] == [("cancelled", "lead_moved"),
                                                    ("cancelled", "lead_moved")]
    # both keep the callback's time as their schedule and stay dialable where they were put:
    # x is called as an ordinary lead of c, y as one of the other campaign (nobody staffs it)
    assert callback_attempts(db) == []
    assert db.execute("SELECT lead_id, operator_id, strategy, originated_at FROM call_attempts"
                      ).fetchall() == [(x, ann, "progressive", m(1))]


def test_rules_changed_after_creation_do_not_move_the_callback(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(10), T0)
    db.execute("INSERT INTO scheduler_rules (campaign_id, priority, outcome, action,"
               " retry_after) VALUES (%s, 1, '*', 'retry', '1 minute')", (c,))
    engine = engine_for(db)
    engine.operator_action(ann, "login", T0)
    run_simulation(engine, T0, 10 * 60 + 10)
    assert callback_attempts(db) == [(cb, x, ann, "callback", m(10))]
    assert callback_rows(db)[0][4:6] == (m(10), "kept")


def test_operator_paused_at_due_time_waits_for_unpause(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    for i in range(5):
        lead(db, c, m(-10 + i))
    cb = create_callback(db, x, ann, m(5), T0)
    engine = engine_for(db)
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    engine.operator_action(bob, "login", T0)
    engine.operator_action(ann, "pause", T0, "lunch")
    run_simulation(engine, T0, 10 * 60)
    assert callback_attempts(db) == []                 # nobody else got it
    assert callback_rows(db)[0][5] == "pending"
    # ann asks to unpause with the callback due: waiting_unpause, penalty, reason kept
    assert engine.operator_action(ann, "unpause", m(10)) == "waiting_unpause"
    assert db.execute("SELECT status, pause_reason, wait_reason FROM operators"
                      " WHERE operator_id = %s", (ann,)).fetchone() == (
        "waiting_unpause", None, f"callback_due:{cb}")
    assert db.execute("SELECT penalty FROM queue_members WHERE operator_id = %s",
                      (ann,)).fetchone() == (10_000,)
    run_simulation(engine, m(10), 10)
    assert callback_attempts(db) == [(cb, x, ann, "callback", m(10))]
    # connected at +6 s: the penalty and the kept reason are lifted
    assert db.execute("SELECT status, wait_reason FROM operators WHERE operator_id = %s",
                      (ann,)).fetchone() == ("on_call", None)
    assert db.execute("SELECT penalty FROM queue_members WHERE operator_id = %s",
                      (ann,)).fetchone() == (0,)
    assert [r[:2] for r in db.execute(
        "SELECT status, reason FROM operator_status_log WHERE operator_id = %s"
        " ORDER BY log_id", (ann,))] == [
        ("ready", None), ("paused", "lunch"), ("waiting_unpause", f"callback_due:{cb}"),
        ("on_call", None)]
    assert callback_rows(db)[0][5] == "late"            # due T0+5 min, connected T0+10 min


def test_unpause_without_a_due_callback_is_plain_ready(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    engine = engine_for(db)
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    engine.operator_action(ann, "pause", T0, "training")
    assert engine.operator_action(ann, "unpause", m(1)) == "ready"
    assert db.execute("SELECT status, pause_reason, wait_reason FROM operators").fetchone() == (
        "ready", None, None)


def test_operator_on_a_call_at_due_time_gets_the_callback_next(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    x = lead(db, c, FAR)
    ordinary = [lead(db, c, m(-10 + i)) for i in range(3)]
    cb = create_callback(db, x, ann, m(2), T0)
    long_call = CallPlan(ring_s=5, outcome="answered", talk_s=600, wrap_s=10)
    engine = engine_for(db, long_call)
    engine.operator_action(ann, "login", T0)
    run_simulation(engine, T0, 700)
    # ann's first call: originated T0, connected T0+6, talk ends T0+606, wrap ends T0+616;
    # then the due callback, not the next ordinary lead
    assert db.execute("SELECT lead_id, callback_id, originated_at FROM call_attempts"
                      " ORDER BY attempt_id").fetchall() == [
        (ordinary[0], None, T0), (x, cb, T0 + timedelta(seconds=616)),
        (ordinary[1], None, T0 + timedelta(seconds=616 + 76))]
    assert engine.metrics.idle_due_callback_seconds == 0


def test_logged_out_operator_callback_moves_to_another_after_the_delay(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, callback_reassign_after="15 minutes")
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(1), T0)
    engine = engine_for(db)
    engine.operator_action(bob, "login", T0)             # ann stays logged out
    run_simulation(engine, T0, 16 * 60 - 1)
    assert callback_attempts(db) == []                   # not before the delay
    run_simulation(engine, m(16), 10)
    assert callback_rows(db) == [(x, ann, bob, m(1), m(1), "late", None, m(16), "operator")]
    assert callback_attempts(db) == [(cb, x, bob, "callback", m(16))]
    assert lead_place(db, x)[0] == personal_bucket(db, c, bob)


def test_removed_operator_callback_falls_back_to_the_common_group(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, callback_fallback="common")
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(1), T0)
    engine = engine_for(db)
    engine.operator_action(ann, "login", T0)
    engine.operator_action(bob, "login", T0)
    db.execute("UPDATE operators SET removed_at = %s WHERE operator_id = %s", (T0, ann))
    run_simulation(engine, T0, 16 * 60 + 10)
    assert callback_rows(db) == [(x, ann, None, m(1), m(1), "late", None, m(16), "common")]
    assert callback_attempts(db) == [(cb, x, bob, "callback", m(16))]
    assert lead_place(db, x)[0] == common_bucket(db, c)


def test_campaign_stopped_holds_callbacks_and_restart_resets_the_delay(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, status="stopped", status_changed_at=T0)
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(1), T0)
    engine = engine_for(db)
    engine.operator_action(bob, "login", T0)             # ann is not there
    run_simulation(engine, T0, 30 * 60)
    assert callback_rows(db)[0][2:] == (ann, m(1), m(1), "pending", None, None, None)
    db.execute("UPDATE campaigns SET status = 'active', status_changed_at = %s", (m(30),))
    run_simulation(engine, m(30), 15 * 60 - 1)           # the delay counts from the restart
    assert callback_attempts(db) == []
    run_simulation(engine, m(45), 10)
    assert callback_attempts(db) == [(cb, x, bob, "callback", m(45))]


def test_callbacks_respect_the_leads_window_across_dst(db: psycopg.Connection):
    c = campaign(db, window_start="09:00", window_end="21:00")
    ann = operator(db, "ann", [c])
    x = lead(db, c, datetime(2026, 4, 1, tzinfo=UTC), "America/New_York")
    start = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)       # 08:00 EDT, the day clocks jumped
    cb = create_callback(db, x, ann, start + timedelta(minutes=30), start)
    engine = engine_for(db)
    engine.operator_action(ann, "login", start)
    run_simulation(engine, start, 62 * 60)
    # agreed 08:30 EDT is outside the window; dialed when it opens at 09:00 EDT = 13:00 UTC
    # (it would have been 14:00 UTC the day before)
    assert callback_attempts(db) == [(cb, x, ann, "callback", start + timedelta(hours=1))]


def test_clock_skew(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    x, y, z = (lead(db, c, FAR) for _ in range(3))
    # the workstation's clock is 2 minutes behind: clamped to the service clock, not lost
    create_callback(db, x, ann, m(-2), T0)
    with pytest.raises(CallbackError, match="in the past"):
        create_callback(db, y, ann, m(-10), T0)
    with pytest.raises(CallbackError, match="timezone"):
        create_callback(db, z, ann, m(10).replace(tzinfo=None), T0)
    assert callback_rows(db) == [(x, ann, ann, T0, T0, "pending", None, None, None)]
    # decisions use the service clock, never the database's now(): a run years ahead of the
    # database server behaves the same
    future = datetime(2031, 6, 2, 12, 0, tzinfo=UTC)
    w = lead(db, c, future - timedelta(seconds=1))
    engine = engine_for(db)
    engine.tick(future)
    # (x's callback, years overdue with nobody logged in, went to the common group first)
    assert [e.lead_id for e in engine.hopper.pools[c].common] == [x, y, z, w]
    assert callback_rows(db)[0][2:] == (None, T0, T0, "pending", None, future, "common")


def test_cancel_returns_the_lead_to_the_common_bucket(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY)
    ann = operator(db, "ann", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(30), T0)
    cancel_callback(db, cb, m(1))
    assert callback_rows(db)[0][5:7] == ("cancelled", "cancelled_by_operator")
    assert lead_place(db, x) == (common_bucket(db, c), m(30), "active")
    with pytest.raises(CallbackError):
        cancel_callback(db, cb, m(2))


def test_no_reassignment_while_the_leads_window_is_closed(db: psycopg.Connection):
    c = campaign(db, window_start="09:00", window_end="21:00",
                 callback_reassign_after="15 minutes")
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR, "UTC")
    due = T0.replace(hour=20, minute=55)
    cb = create_callback(db, x, ann, due, T0)
    engine = engine_for(db)
    engine.operator_action(bob, "login", T0)              # ann never comes
    evening = T0.replace(hour=20, minute=50)
    run_simulation(engine, evening, 60 * 60)               # 20:50 .. 21:50: window closes 21:00
    assert callback_rows(db)[0][2] == ann and callback_attempts(db) == []
    morning = T0.replace(hour=9) + timedelta(days=1)
    run_simulation(engine, morning, 15 * 60 + 10)          # opened 09:00; delay 15 min
    assert callback_rows(db)[0][2:] == (bob, due, due, "late", None,
                                        morning + timedelta(minutes=15), "operator")
    assert callback_attempts(db) == [(cb, x, bob, "callback", morning + timedelta(minutes=15))]


def test_unanswered_callback_waits_for_its_retry_not_for_reassignment(db: psycopg.Connection):
    c = campaign(db, **ALL_DAY, callback_reassign_after="15 minutes")
    db.execute("INSERT INTO scheduler_rules (campaign_id, priority, outcome, action,"
               " retry_after) VALUES (%s, 1, 'no_answer', 'retry', '1 hour')", (c,))
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, FAR)
    cb = create_callback(db, x, ann, m(1), T0)
    engine = engine_for(db, CallPlan(ring_s=30, outcome="no_answer"))
    engine.operator_action(ann, "login", T0)
    engine.operator_action(bob, "login", T0)
    run_simulation(engine, T0, 62 * 60)
    # tried at T0+1 min (no answer at +31 s), retried by the rule an hour later, by ann both
    # times: the 15-minute reassignment counts from the retry, not from the first due time
    assert callback_attempts(db) == [(cb, x, ann, "callback", m(1)),
                                     (cb, x, ann, "callback", m(61) + timedelta(seconds=31))]
    assert callback_rows(db)[0][2] == ann and callback_rows(db)[0][7] is None
