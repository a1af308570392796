"""Operator status changes: the status log tiles time even when changes arrive out of order."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from dialer_core.dialer import operators
from tests.dialer_core.dialer.conftest import T0
from tests.dialer_core.dialer.factory import operator


def log(db: psycopg.Connection, operator_id: int) -> list[tuple[object, ...]]:
    return db.execute("SELECT status, started_at, ended_at FROM operator_status_log"
                      " WHERE operator_id = %s ORDER BY log_id", (operator_id,)).fetchall()


def test_a_change_stamped_before_the_open_interval_began_takes_effect_at_its_start(
        db: psycopg.Connection) -> None:
    """The engine's tick connects a call at 12:00:57.6 while the API thread, reading the clock
    a moment later, has already made the operator ready at 12:01:00: the log must not hold a
    ready interval ending before it starts, overlapped by the call."""
    op = operator(db, "anna", [])
    operators.set_status(db, op, "ready", T0)
    operators.set_status(db, op, "waiting_unpause", T0 + timedelta(seconds=2), "callback due")
    operators.set_status(db, op, "ready", T0 + timedelta(seconds=60))
    operators.set_status(db, op, "on_call", T0 + timedelta(seconds=57.6))   # out of order
    operators.set_status(db, op, "wrap_up", T0 + timedelta(seconds=90))
    rows = log(db, op)
    assert [r[0] for r in rows] == ["ready", "waiting_unpause", "ready", "on_call", "wrap_up"]
    for (_, started, ended), (_, next_started, _) in zip(rows, rows[1:], strict=False):
        assert ended is not None and started <= ended == next_started   # tiles, no overlap
    assert rows[3][1] == T0 + timedelta(seconds=60)   # on_call from the end of "ready"
    assert rows[-1][2] is None
    status_since = db.execute("SELECT status_since FROM operators WHERE operator_id = %s",
                              (op,)).fetchone()
    assert status_since == (T0 + timedelta(seconds=90),)


def test_changes_in_clock_order_are_stamped_as_given(db: psycopg.Connection) -> None:
    op = operator(db, "anna", [])
    times = [T0 + timedelta(seconds=s) for s in (0, 30, 45)]
    for status, at in zip(("ready", "on_call", "wrap_up"), times, strict=True):
        operators.set_status(db, op, status, at)
    assert log(db, op) == [("ready", times[0], times[1]), ("on_call", times[1], times[2]),
                           ("wrap_up", times[2], None)]
