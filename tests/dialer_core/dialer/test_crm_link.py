"""Calls handled by the dialer service become CRM appeals, one customer per normalised phone.

The service runs against a real dialer database and a real CRM database (both on the embedded
PostgreSQL); telephony is scripted so the set of handled calls is known, and the CRM rows are
compared exactly with the dialer's own attempt rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from contour.config import Config
from dialer_core import crm
from dialer_core.clock import ManualClock
from dialer_core.crm.phones import normalise_phone
from dialer_core.dialer import service
from dialer_core.dialer.crm_link import CrmLink, HandledCall
from dialer_core.dialer.service import ServiceOptions, run

from .conftest import T0
from .factory import campaign, lead, operator
from .scripted import NO_ANSWER, ScriptedTelephony

START = T0.replace(hour=9)
ALL_DAY = {"window_start": "00:00", "window_end": "23:59:59"}
# the least the CRM needs for record_call: the default call queue and topic, one employee
REFERENCE = """
INSERT INTO queues (queue_id, code, name) VALUES (1, 'calls', 'Calls');
INSERT INTO topics (topic_id, code, name) VALUES (1, 'general', 'General');
INSERT INTO employees (employee_id, login, full_name, role, queue_id) VALUES
    (7, 'op0001', 'Operator One', 'operator', 1),
    (8, 'sup01', 'Supervisor', 'supervisor', 1);
"""


def _database(pg, prefix: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = pg.config.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg.config.pg_dsn(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_crm_dsn(pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    yield from _database(pg, "crm_link_empty")


@pytest.fixture
def crm_dsn(pg) -> Iterator[str]:  # type: ignore[no-untyped-def]
    for dsn in _database(pg, "crm_link"):
        crm.migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(REFERENCE)
        yield dsn


def run_service(pg, dialer_dsn: str, crm_dsn: str, minutes: int,  # type: ignore[no-untyped-def]
                crm_link: bool = True) -> list[str]:
    config = Config.from_env({**pg.env, "CONTOUR_PG_DIALER_DSN": dialer_dsn,
                              "CONTOUR_PG_CRM_DSN": crm_dsn})
    clock = ManualClock(START)
    stop = asyncio.Event()
    logged: list[str] = []

    async def main() -> None:
        async def stopper() -> None:
            while clock.now() < START + timedelta(minutes=minutes):
                await asyncio.sleep(0)
            stop.set()

        task = asyncio.create_task(stopper())
        await run(config, clock, stop, ServiceOptions(inbound_per_minute=0, crm_link=crm_link),
                  log=logged.append)
        await task

    asyncio.run(main())
    return logged


def scenario(db: psycopg.Connection) -> dict[str, int]:
    """Two operators (one also a CRM employee by login), three leads: two of them are the same
    person written two ways, one is a customer the CRM already knows."""
    c = campaign(db, **ALL_DAY, max_attempts=10)
    db.execute("INSERT INTO scheduler_rules (campaign_id, priority, outcome, action,"
               " retry_after) VALUES (%s, 1, 'answered', 'retry', '2 minutes'),"
               " (%s, 2, '*', 'retry', '1 minute')", (c, c))
    ids = {"op0001": operator(db, "op0001", [c]), "temp7": operator(db, "temp7", [c])}
    ids["anna"] = lead(db, c, START - timedelta(minutes=3), phone="8 (912) 345-67-89")
    ids["boris"] = lead(db, c, START - timedelta(minutes=2), phone="+7 912 000-11-22")
    ids["anna2"] = lead(db, c, START - timedelta(minutes=1), phone="9123456789")
    return ids


def test_handled_calls_become_appeals_of_one_customer(  # type: ignore[no-untyped-def]
        pg, dialer_dsn: str, db: psycopg.Connection, crm_dsn: str, monkeypatch):
    ids = scenario(db)
    with psycopg.connect(crm_dsn, autocommit=True) as crm_db:
        known = crm_db.execute(
            "INSERT INTO customers (phone, full_name, created_at, updated_at)"
            " VALUES ('+79120001122', 'Boris', %s, %s) RETURNING customer_id",
            (T0, T0)).fetchone()
    # the first call is not answered (no appeal); every later one is answered (ring 5 s,
    # talk 60 s, wrap 10 s)
    monkeypatch.setattr(service, "Telephony", lambda seed: ScriptedTelephony(NO_ANSWER))

    logged = run_service(pg, dialer_dsn, crm_dsn, minutes=12)

    calls = db.execute(
        "SELECT a.attempt_id, a.lead_id, l.phone, a.originated_at, a.connected_at, o.login"
        " FROM call_attempts a JOIN leads l USING (lead_id)"
        " LEFT JOIN operators o ON o.operator_id = a.operator_id"
        " ORDER BY a.attempt_id").fetchall()
    handled = [c for c in calls if c[4] is not None]
    # 10 attempts in 12 min: the first unanswered, 9 handled (every lead three times)
    assert len(calls) == 10 and calls[0][4] is None and len(handled) == 9
    assert sorted(c[1] for c in handled) == sorted([ids["anna"], ids["boris"], ids["anna2"]] * 3)

    with psycopg.connect(crm_dsn) as crm_db:
        appeals = crm_db.execute(
            "SELECT a.external_ref, c.phone, a.channel, a.opened_at, a.first_response_at,"
            " a.operator_id, a.status, a.customer_id, a.appeal_id, a.linked_appeal_id,"
            " k.channel, k.address"
            " FROM appeals a JOIN customers c USING (customer_id)"
            " JOIN contacts k USING (contact_id) ORDER BY a.opened_at, a.appeal_id").fetchall()
        customers = dict(crm_db.execute("SELECT phone, customer_id FROM customers").fetchall())

    # exactly one appeal per handled call, none for unanswered attempts; channel 'call';
    # opened at the call's start, first response when the operator was connected; the
    # operator is the CRM employee with the same login, or none
    assert [(a[0], a[1], a[2], a[3], a[4], a[5], a[10], a[11]) for a in appeals] == [
        (f"dialer:{aid}", normalise_phone(phone), "call", started, connected,
         7 if login == "op0001" else None, "call", normalise_phone(phone))
        for aid, _, phone, started, connected, login in sorted(handled, key=lambda c: c[3])]
    assert {a[6] for a in appeals} <= {"in_progress", "linked"}
    # one customer identity: the two spellings of Anna's number are one customer, and Boris's
    # calls joined the customer the CRM already had
    assert customers == {"+79123456789": customers["+79123456789"], "+79120001122": known[0]}
    lead_of = {aid: lid for aid, lid, *_ in calls}
    by_lead: dict[int, set[int]] = {}
    for a in appeals:
        by_lead.setdefault(lead_of[int(a[0].split(":")[1])], set()).add(a[7])
    assert by_lead == {ids["anna"]: {customers["+79123456789"]},
                       ids["anna2"]: {customers["+79123456789"]},
                       ids["boris"]: {known[0]}}
    # a repeat call of the customer (same default topic, within the window) is linked to the
    # customer's first appeal instead of opening a new case
    for customer_id in customers.values():
        mine = [a for a in appeals if a[7] == customer_id]
        root = mine[0]
        assert root[6] == "in_progress" and root[9] is None
        assert all(a[6] == "linked" and a[9] == root[8] for a in mine[1:])
    assert f"dialer: CRM link recorded {len(handled)} calls as appeals" in "\n".join(logged)
    assert not any("CRM link off" in line for line in logged)


def test_unreachable_crm_is_logged_once_and_dialing_goes_on(  # type: ignore[no-untyped-def]
        pg, dialer_dsn: str, db: psycopg.Connection, monkeypatch):
    scenario(db)
    monkeypatch.setattr(service, "Telephony", lambda seed: ScriptedTelephony())
    missing = pg.config.pg_dsn(f"no_such_crm_{uuid.uuid4().hex[:8]}")
    logged = run_service(pg, dialer_dsn, missing, minutes=5)
    off = [line for line in logged if "CRM link off" in line]
    assert len(off) == 1 and "OperationalError" in off[0], logged
    connected = db.execute("SELECT count(*) FROM call_attempts WHERE connected_at IS NOT NULL"
                           ).fetchone()
    assert connected is not None and connected[0] >= 4
    assert any(f"{connected[0]} while the CRM was down" in line for line in logged), logged


def test_unmigrated_crm_is_migrated_and_missing_reference_is_logged_once(  # type: ignore[no-untyped-def]
        pg, dialer_dsn: str, db: psycopg.Connection, empty_crm_dsn: str, monkeypatch):
    scenario(db)
    monkeypatch.setattr(service, "Telephony", lambda seed: ScriptedTelephony())
    logged = run_service(pg, dialer_dsn, empty_crm_dsn, minutes=5)
    off = [line for line in logged if "CRM link off" in line]
    assert len(off) == 1 and "reference data missing" in off[0], logged
    with psycopg.connect(empty_crm_dsn) as conn:
        # the CRM's own migration ran (the CRM's convention: migrate on start)
        assert conn.execute("SELECT count(*) FROM public.schema_migrations"
                            " WHERE component = 'crm'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM appeals").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM call_attempts WHERE connected_at IS NOT NULL"
                      ).fetchone()[0] >= 4  # type: ignore[index]


def test_link_off_writes_nothing(  # type: ignore[no-untyped-def]
        pg, dialer_dsn: str, db: psycopg.Connection, crm_dsn: str, monkeypatch):
    scenario(db)
    monkeypatch.setattr(service, "Telephony", lambda seed: ScriptedTelephony())
    logged = run_service(pg, dialer_dsn, crm_dsn, minutes=3, crm_link=False)
    with psycopg.connect(crm_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM appeals").fetchone() == (0,)
    assert not any("CRM" in line for line in logged)


def test_link_is_idempotent_per_attempt_and_skips_non_phones(crm_dsn: str):
    """A batch re-sent (e.g. after a commit whose outcome was lost) adds nothing; a caller
    number that is not a phone is skipped, logged once, and does not lose its batch."""
    logged: list[str] = []
    link = CrmLink(crm_dsn, logged.append)
    link.start()
    call = HandledCall(41, "outbound", "8 912 345 67 89", START, START + timedelta(seconds=6),
                       "op0001")
    link.submit([call, HandledCall(42, "inbound", "anonymous", START, START, "temp7")])
    link.submit([call, HandledCall(43, "inbound", "+7 (495) 123-45-67", START,
                                   START + timedelta(seconds=20), "temp7")])
    stats = link.close()
    assert (stats.recorded, stats.invalid_phone, stats.rejected, stats.dropped) == (3, 1, 0, 0)
    assert [line for line in logged if "not phones" in line] == [
        "dialer: CRM link skips calls from numbers that are not phones (first: 'anonymous')"]
    with psycopg.connect(crm_dsn) as conn:
        assert conn.execute(
            "SELECT a.external_ref, c.phone, a.operator_id, a.opened_at, a.first_response_at"
            " FROM appeals a JOIN customers c USING (customer_id) ORDER BY a.appeal_id"
        ).fetchall() == [
            ("dialer:41", "+79123456789", 7, START, START + timedelta(seconds=6)),
            ("dialer:43", "+74951234567", None, START, START + timedelta(seconds=20))]
