"""Inbound calls: each goes through interactive call processing, every step recorded.

The call's attempt row (direction ``inbound``) is written first, then the ICP session runs
without holding any database connection (the endpoint may take up to its timeout), then the
steps are recorded with where the instructions routed the call as its disposition, in one
transaction; a call routed to a queue is then offered to the engine, which connects it to a
free operator or lets the caller hang up after their patience.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime

import psycopg

from dialer_core.dialer.icp import IcpSettings, Step, record, routed_to, run_session


def open_call(conn: psycopg.Connection, numa: str, numb: str, now: datetime) -> int:
    row = conn.execute(
        "INSERT INTO call_attempts (direction, queue_id, phone, caller_id, state, originated_at,"
        " answered_at, updated_at) VALUES ('inbound',"
        " (SELECT queue_id FROM queues WHERE direction = 'inbound' ORDER BY queue_id LIMIT 1),"
        " %s, %s, 'answered', %s, %s, %s) RETURNING attempt_id",
        (numa, numb, now, now, now)).fetchone()
    assert row is not None
    return int(row[0])


def finish_icp(conn: psycopg.Connection, attempt_id: int, steps: list[Step],
               now: datetime) -> str:
    """Record the steps; a call routed to a queue is left ``queued`` for the engine to connect
    to an operator, any other ending (number, operator, hang-up) closes the attempt here."""
    target = routed_to(steps)
    queued = target.startswith("queue:")
    with conn.transaction():
        record(conn, attempt_id, now, steps)
        conn.execute(
            "UPDATE call_attempts SET state = %s, disposition = %s, updated_at = %s,"
            " queued_at = CASE WHEN %s THEN %s END, closed_at = CASE WHEN %s THEN NULL ELSE %s"
            " END, outcome = CASE WHEN %s THEN NULL ELSE 'answered' END"
            " WHERE attempt_id = %s",
            ("queued" if queued else "closed", target, now, queued, now, queued, now, queued,
             attempt_id))
    return target


def handle_call(conn: psycopg.Connection, lock: threading.Lock, settings: IcpSettings,
                numa: str, numb: str, now: datetime, rng: random.Random) -> tuple[int, str]:
    """One inbound call from ``numa`` to ``numb`` at ``now``; returns (attempt id, routed to).
    ``lock`` guards ``conn``, which concurrent calls share."""
    with lock:
        attempt_id = open_call(conn, numa, numb, now)
    steps = run_session(settings, attempt_id, now, numa, numb,
                        lambda instruction: str(rng.randint(1, 3)))
    with lock:
        return attempt_id, finish_icp(conn, attempt_id, steps, now)
