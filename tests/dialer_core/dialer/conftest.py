"""Dialer test fixtures: a fresh, migrated ``dialer`` database per test, cloned from a template.

The template is migrated once per run (the real migrations on the real embedded PostgreSQL);
cloning it costs tens of milliseconds, so each test starts from exactly known rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from dialer_core.dialer.db import connect, migrate_dialer

TEMPLATE = "dialer_test_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def dialer_template(pg) -> str:  # type: ignore[no-untyped-def]
    admin = pg.config.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    migrate_dialer(pg.config.pg_dsn(TEMPLATE))
    return admin


@pytest.fixture
def dialer_dsn(pg, dialer_template: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"dialer_t{next(_counter)}"
    with psycopg.connect(dialer_template, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield pg.config.pg_dsn(name)
    with psycopg.connect(dialer_template, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(dialer_dsn: str) -> Iterator[psycopg.Connection]:
    with connect(dialer_dsn) as conn:
        yield conn


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, 12:00 UTC
