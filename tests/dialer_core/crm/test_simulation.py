"""The simulation writes the planned workload through the CRM functions on a ManualClock:
every planned arrival becomes an appeal, cases live on (answers, tickets, history), and a run
is reproducible."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from dialer_core import crm
from dialer_core.clock import ManualClock
from dialer_core.crm import reference
from dialer_core.crm.reference import Scale
from dialer_core.crm.simulation import Simulation
from dialer_core.crm.workload import WorkloadConfig, plan_day
from tests.conftest import Stack

from .conftest import rows, utc

pytestmark = pytest.mark.integration

START = utc(2026, 11, 23, 4)          # Monday 07:00 Moscow
END = START + timedelta(hours=8)
SMALL = WorkloadConfig(appeals_per_day=3_000, customers=20_000,
                       scale=Scale(stores=400, operators=26, supervisors=4,
                                   engineers_per_group=3))


@pytest.fixture
def empty_dsn(pg: Stack) -> Iterator[str]:
    name = f"crm_s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = pg.config.pg_dsn(name)
        crm.migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def simulate(dsn: str, until: datetime) -> tuple[Simulation, psycopg.Connection[Any]]:
    conn = psycopg.connect(dsn, autocommit=True)
    ref = reference.build(SMALL.scale)
    reference.load(conn, ref)
    reference.load(conn, ref)  # idempotent: a restart loads nothing twice
    sim = Simulation(conn, ref, SMALL)
    for step in range(1, 9):   # in hourly steps, like a clock would drive it
        sim.advance(START, min(until, START + timedelta(hours=step)))
    return sim, conn


def test_planned_arrivals_become_appeals_and_cases_live_on(empty_dsn: str) -> None:
    sim, conn = simulate(empty_dsn, END)
    with conn:
        planned = [a for a in plan_day(SMALL, sim.ref, START.date()) if START <= a.at <= END]
        assert rows(conn, "SELECT count(*) FROM appeals") == [(len(planned),)]
        assert sim.stats.appeals == len(planned) and sim.stats.rejected == 0
        by_channel = dict(rows(conn, "SELECT channel, count(*) FROM appeals GROUP BY 1"))
        assert by_channel == {ch: sum(a.channel == ch for a in planned) for ch in by_channel}
        # repeats are linked, the dialer's calls are answered by an operator
        assert rows(conn, "SELECT count(*) FROM appeals WHERE status = 'linked'") == [
            (sim.stats.linked,)]
        assert sim.stats.linked > 0
        assert rows(conn, "SELECT count(*) FROM appeals WHERE channel = 'call' AND "
                          "(operator_id IS NULL OR first_response_at IS NULL) "
                          "AND opened_at < %s", END - timedelta(minutes=2)) == [(0,)]
        # tickets: created, assigned, resolved; history numbered 1..n without gaps
        assert sim.stats.tickets > 0
        assert rows(conn, "SELECT count(*) FROM tickets") == [(sim.stats.tickets,)]
        assert rows(conn, "SELECT count(*) FROM tickets t WHERE (SELECT max(seq) FROM "
                          "ticket_history h WHERE h.ticket_id = t.ticket_id) <> (SELECT count(*) "
                          "FROM ticket_history h WHERE h.ticket_id = t.ticket_id)") == [(0,)]
        assert rows(conn, "SELECT count(DISTINCT status) > 1 FROM tickets") == [(True,)]
        assert rows(conn, "SELECT count(*) FROM answers WHERE status = 'queued' "
                          "AND created_at < %s", END - timedelta(minutes=2)) == [(0,)]
        # a case reopened by a repeat is settled again: each one still open has no ticket in
        # work, so a resolution must be pending for it
        reopened = {a for (a,) in rows(
            conn, "SELECT appeal_id FROM appeals a WHERE linked_appeal_id IS NULL "
                  "AND reopened_count > 0 AND status IN ('open', 'in_progress') AND NOT EXISTS "
                  "(SELECT 1 FROM tickets t WHERE t.appeal_id = a.appeal_id "
                  "AND t.status IN ('open', 'in_progress'))")}
        pending = {data["appeal_id"] for _, _, kind, data in sim._events
                   if kind == "appeal_resolved"}
        assert reopened <= pending
        # one customer per phone, whatever the channels used
        assert rows(conn, "SELECT count(*) FROM (SELECT phone FROM customers GROUP BY phone "
                          "HAVING count(*) > 1) d") == [(0,)]


def test_same_seed_same_rows(empty_dsn: str, pg: Stack) -> None:
    until = START + timedelta(hours=2)
    query = ("SELECT appeal_id, customer_id, channel, topic_id, status, opened_at, "
             "first_response_at FROM appeals ORDER BY appeal_id")
    _, conn = simulate(empty_dsn, until)
    with conn:
        first = rows(conn, query)
    conn = psycopg.connect(empty_dsn, autocommit=True)
    with conn:
        conn.execute("TRUNCATE customers, contacts, appeals, tickets, ticket_history, answers, "
                     "sla_reminders RESTART IDENTITY CASCADE")
    _, conn = simulate(empty_dsn, until)
    with conn:
        assert rows(conn, query) == first and len(first) > 100


def test_run_follows_the_clock(empty_dsn: str) -> None:
    class StoppingClock(ManualClock):
        """Advances one simulated minute per tick and stops the run at END."""

        def __init__(self, stop: asyncio.Event) -> None:
            super().__init__(START)
            self.stop = stop

        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            if self.now() >= START + timedelta(minutes=30):
                self.stop.set()

    conn = psycopg.connect(empty_dsn, autocommit=True)
    with conn:
        ref = reference.build(SMALL.scale)
        reference.load(conn, ref)
        sim = Simulation(conn, ref, SMALL)

        async def main() -> None:
            stop = asyncio.Event()
            await sim.run(StoppingClock(stop), stop, tick=60)

        asyncio.run(main())
        planned = [a for a in plan_day(SMALL, ref, START.date())
                   if START <= a.at <= START + timedelta(minutes=30)]
        assert rows(conn, "SELECT count(*) FROM appeals") == [(len(planned),)]
