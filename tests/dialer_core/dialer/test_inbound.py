"""Inbound calls: ICP (reference endpoint, real HTTP) then the operator queue."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from dialer_core.dialer import icp_reference
from dialer_core.dialer.engine import Engine, run_simulation
from dialer_core.dialer.icp import IcpSettings
from dialer_core.dialer.inbound import handle_call

from .conftest import T0
from .factory import campaign, operator
from .scripted import ScriptedInbound


def s(seconds: float) -> object:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[IcpSettings]:
    server, url = icp_reference.serve()
    yield IcpSettings(url)
    server.shutdown()


def rows(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT direction, operator_id, state, outcome, disposition, queued_at,"
                      " connected_at, ended_at, closed_at FROM call_attempts"
                      " ORDER BY attempt_id").fetchall()


def ann_ready_with_a_queued_call(db: psycopg.Connection, endpoint: IcpSettings
                                 ) -> tuple[Engine, int, int]:
    """Operator ann logged in at T0 and one inbound call that ICP routed to a queue."""
    c = campaign(db, window_start="00:00", window_end="23:59:59")
    db.execute("INSERT INTO queues (name, direction) VALUES ('inbound', 'inbound')")
    ann = operator(db, "ann", [c])
    engine = Engine(db, ScriptedInbound())
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    attempt_id, target = handle_call(db, threading.Lock(), endpoint, "+79005551234",
                                     "+78001000000", T0, random.Random(1))
    assert target == "queue:couriers"
    return engine, ann, attempt_id


def test_queued_inbound_call_connects_to_a_free_operator(db: psycopg.Connection,
                                                         endpoint: IcpSettings):
    engine, ann, attempt_id = ann_ready_with_a_queued_call(db, endpoint)
    engine.offer_inbound(attempt_id, T0)
    run_simulation(engine, T0, 80)
    assert rows(db) == [("inbound", ann, "closed", "answered", "queue:couriers", T0, T0, s(60),
                         s(70))]
    assert db.execute("SELECT seq, action, fallback FROM icp_steps").fetchall() == [
        (1, "route", False)]


def test_inbound_caller_hangs_up_after_their_patience(db: psycopg.Connection,
                                                      endpoint: IcpSettings):
    campaign(db, window_start="00:00", window_end="23:59:59")
    db.execute("INSERT INTO queues (name, direction) VALUES ('inbound', 'inbound')")
    engine = Engine(db, ScriptedInbound(patience=20))
    engine.tick(T0)                                            # nobody logged in
    attempt_id, target = handle_call(db, threading.Lock(), endpoint, "+74951234567",
                                     "+78001000000", T0, random.Random(1))
    engine.offer_inbound(attempt_id, T0)
    run_simulation(engine, T0, 30)
    assert rows(db) == [("inbound", None, "closed", "abandoned", target, T0, None, s(20),
                         s(20))]


def test_a_call_offered_ahead_of_the_tick_never_connects_before_it_queued(
        db: psycopg.Connection, endpoint: IcpSettings):
    """The service offers inbound calls from the ICP thread at its clock reading, which can
    be a moment after the engine's current second (seen live: connected 1 s before queued,
    a negative wait that failed the marts' test)."""
    engine, _, attempt_id = ann_ready_with_a_queued_call(db, endpoint)
    engine.offer_inbound(attempt_id, s(1))  # queued at T0+1 s ...
    engine.step(T0)                         # ... served by the tick of T0
    queued_at, connected_at = db.execute(
        "SELECT queued_at, connected_at FROM call_attempts").fetchone()
    assert queued_at == s(1)
    assert connected_at == s(1)
