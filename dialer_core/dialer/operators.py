"""Operator states and the status log.

States: offline, ready, on_call, wrap_up, paused (with a reason code) and waiting_unpause. Every
change closes the open status-log interval and opens the next in the same transaction, so the
log always tiles time with no gap or overlap (occupancy and idle minutes are computed from it).
"""

from __future__ import annotations

from datetime import datetime

import psycopg

STATES = ("offline", "ready", "on_call", "wrap_up", "paused", "waiting_unpause")
#: queue penalty of an operator waiting for unpause: high enough that the queue never picks
#: them for a predictive call while anyone else can take it
UNPAUSE_PENALTY = 10_000


class OperatorError(ValueError):
    """A request the operator's state does not allow; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


Statement = tuple[str, tuple[object, ...]]


def status_statements(operator_id: int, status: str, now: datetime,
                      reason: str | None = None) -> list[Statement]:
    """The writes of one status change: the operator row, the closed and the opened log rows.
    Returned rather than executed so the engine can batch them with its other writes.

    The log tiles time per operator even when changes arrive out of clock order (the engine's
    tick, the operator API and the ICP thread read the clock separately, a moment apart): a
    change stamped before the open interval began takes effect at that interval's start, so
    no interval ends before it starts and none overlaps the next (seen at 60x: a call
    connected 2.4 s before the operator's "ready" began, and the two intervals overlapped)."""
    if status not in STATES:
        raise OperatorError(
            f"unknown operator status {status!r}; one of {', '.join(STATES)}", 422)
    if status in ("paused", "waiting_unpause") and not reason:
        raise OperatorError(f"status {status} needs a reason", 422)
    return [
        ("UPDATE operators SET status = %s, status_since = greatest(%s, status_since),"
         " pause_reason = CASE WHEN %s = 'paused' THEN %s END,"
         " wait_reason = CASE WHEN %s = 'waiting_unpause' THEN %s END"
         " WHERE operator_id = %s",
         (status, now, status, reason, status, reason, operator_id)),
        ("WITH closed AS (UPDATE operator_status_log SET ended_at = greatest(%s, started_at)"
         " WHERE operator_id = %s AND ended_at IS NULL RETURNING ended_at)"
         " INSERT INTO operator_status_log (operator_id, status, reason, started_at)"
         " SELECT %s, %s, %s, greatest(%s, (SELECT max(ended_at) FROM closed))",
         (now, operator_id, operator_id, status, reason, now)),
    ]


def penalty_statement(operator_id: int, penalty: int) -> Statement:
    return ("UPDATE queue_members SET penalty = %s WHERE operator_id = %s",
            (penalty, operator_id))


def set_status(conn: psycopg.Connection, operator_id: int, status: str, now: datetime,
               reason: str | None = None) -> None:
    statements = status_statements(operator_id, status, now, reason)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM operators WHERE operator_id = %s"
                              " AND removed_at IS NULL FOR UPDATE", (operator_id,)).fetchone()
        if exists is None:
            raise OperatorError(f"operator {operator_id} does not exist or was removed", 404)
        for sql, params in statements:
            conn.execute(sql, params)


def set_penalty(conn: psycopg.Connection, operator_id: int, penalty: int) -> None:
    conn.execute(*penalty_statement(operator_id, penalty))


def due_callback(conn: psycopg.Connection, operator_id: int, now: datetime,
                 horizon_seconds: int = 60) -> int | None:
    """The operator's earliest open callback due within ``horizon_seconds``, if any."""
    row = conn.execute(
        "SELECT callback_id FROM callbacks WHERE assigned_operator_id = %s"
        " AND status IN ('pending', 'dialing')"
        " AND next_call_at <= %s::timestamptz + make_interval(secs => %s)"
        " ORDER BY next_call_at LIMIT 1", (operator_id, now, horizon_seconds)).fetchone()
    return row[0] if row else None


def request_unpause(conn: psycopg.Connection, operator_id: int, now: datetime) -> str:
    """Unpause; with a callback of theirs due, go to waiting_unpause instead: the queue penalty
    keeps predictive calls away while the reserved callback is dialed for them, and the reason
    is stored on the operator row (durable). Returns the new status."""
    status = conn.execute("SELECT status FROM operators WHERE operator_id = %s"
                          " AND removed_at IS NULL", (operator_id,)).fetchone()
    if status is None:
        raise OperatorError(f"operator {operator_id} does not exist or was removed", 404)
    if status[0] != "paused":
        raise OperatorError(f"operator {operator_id} is {status[0]}, not paused")
    callback_id = due_callback(conn, operator_id, now)
    with conn.transaction():
        if callback_id is None:
            set_status(conn, operator_id, "ready", now)
            set_penalty(conn, operator_id, 0)
            return "ready"
        set_status(conn, operator_id, "waiting_unpause", now, f"callback_due:{callback_id}")
        set_penalty(conn, operator_id, UNPAUSE_PENALTY)
        return "waiting_unpause"


def login(conn: psycopg.Connection, operator_id: int, now: datetime) -> None:
    set_status(conn, operator_id, "ready", now)


def logout(conn: psycopg.Connection, operator_id: int, now: datetime) -> None:
    set_status(conn, operator_id, "offline", now)
