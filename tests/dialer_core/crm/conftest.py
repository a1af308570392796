"""CRM test fixtures: a migrated template database with a small reference set, and a fresh
copy of it per test (CREATE DATABASE ... TEMPLATE is fast), so every test asserts exact rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from dialer_core import crm
from tests.conftest import Stack

TEMPLATE = "crm_test_template"

SEED = """
INSERT INTO business_calendars (calendar_id, code, timezone, day_start, day_end) VALUES
    (1, 'default', 'Europe/Moscow', '09:00', '18:00'),
    (2, 'far_east', 'Asia/Vladivostok', '09:00', '18:00'),
    (3, 'berlin', 'Europe/Berlin', '09:00', '17:00');
INSERT INTO calendar_holidays (calendar_id, holiday, name) VALUES
    (1, '2026-11-04', 'Unity Day'), (2, '2026-11-04', 'Unity Day');
INSERT INTO regions (region_id, code, name, timezone, calendar_id) VALUES
    (1, 'MOW', 'Moscow', 'Europe/Moscow', 1),
    (2, 'VVO', 'Primorye', 'Asia/Vladivostok', 2),
    (3, 'BER', 'Berlin', 'Europe/Berlin', 3);
INSERT INTO territories (territory_id, region_id, code, name) VALUES
    (10, 1, 'MOW-C', 'Moscow centre'), (20, 2, 'VVO-C', 'Vladivostok'), (30, 3, 'BER-M', 'Mitte');
INSERT INTO stores (store_id, territory_id, code, name) VALUES
    (100, 10, 'S100', 'Tverskaya'), (200, 20, 'S200', 'Svetlanskaya'),
    (300, 30, 'S300', 'Alexanderplatz');
INSERT INTO queues (queue_id, code, name) VALUES (1, 'calls', 'Calls'), (2, 'digital', 'Digital');
INSERT INTO specialist_groups (group_id, code, name) VALUES
    (1, 'billing', 'Billing'), (2, 'tech', 'Technical'), (3, 'tech_far_east', 'Tech Far East'),
    (4, 'support', 'General support');
INSERT INTO employees (employee_id, login, full_name, role, group_id, queue_id, region_id,
                       active) VALUES
    (1, 'op1', 'Operator One', 'operator', NULL, 1, 1, true),
    (2, 'sup1', 'Supervisor One', 'supervisor', NULL, 1, 1, true),
    (10, 'bill1', 'Billing One', 'engineer', 1, NULL, 1, true),
    (11, 'bill2', 'Billing Two', 'engineer', 1, NULL, 1, true),
    (20, 'tech1', 'Tech One', 'engineer', 2, NULL, 1, true),
    (21, 'tech2', 'Tech Two', 'engineer', 2, NULL, 1, true),
    (30, 'fe1', 'Far East One', 'engineer', 3, NULL, 2, true),
    (40, 'gone', 'Left Company', 'engineer', 2, NULL, 1, false);
INSERT INTO topics (topic_id, code, name, parent_topic_id) VALUES
    (1, 'general', 'General', NULL), (2, 'billing', 'Billing', NULL),
    (3, 'billing_refund', 'Refund', 2), (4, 'internet', 'Internet', NULL),
    (5, 'internet_outage', 'Outage', 4), (6, 'orphan', 'Not routed', NULL);
INSERT INTO topic_routes (route_id, topic_id, region_id, group_id) VALUES
    (1, 1, NULL, 4), (2, 2, NULL, 1), (3, 4, NULL, 2), (4, 4, 2, 3);
INSERT INTO sla_policies (ticket_type, resolve_minutes, remind_before_minutes) VALUES
    ('task', 480, 60), ('claim', 960, 120);
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(scope="session")
def crm_template(pg: Stack) -> str:
    with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    dsn = pg.config.pg_dsn(TEMPLATE)
    crm.migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED)
    return TEMPLATE


@pytest.fixture
def crm_dsn(pg: Stack, crm_template: str) -> Iterator[str]:
    name = f"crm_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{crm_template}"')
    try:
        yield pg.config.pg_dsn(name)
    finally:
        with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(crm_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit: each CRM function's own transaction really commits (or rolls back)."""
    with psycopg.connect(crm_dsn, autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()
