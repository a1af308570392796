"""The CRM schema: migrations apply once, every table has a primary key and a deliberate
REPLICA IDENTITY (these tables are CDC sources)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dialer_core import crm
from tests.conftest import Stack

from .conftest import rows

pytestmark = pytest.mark.integration

FULL = {"business_calendars", "calendar_holidays", "regions", "territories", "stores", "queues",
        "specialist_groups", "employees", "topics", "topic_routes", "sla_policies", "appeals",
        "tickets"}
DEFAULT = {"customers", "contacts", "ticket_history", "sla_reminders", "answers"}


def test_migrate_the_crm_database_is_idempotent(pg: Stack) -> None:
    dsn = pg.config.pg_dsn(crm.DATABASE)
    first = crm.migrate(dsn)
    assert crm.migrate(dsn) == []
    assert first in ([], ["0001_schema"])
    with psycopg.connect(dsn) as conn:
        assert rows(conn, "SELECT version, name FROM schema_migrations WHERE component = 'crm' "
                          "ORDER BY version") == [(1, "0001_schema")]


def test_every_table_has_a_primary_key_and_chosen_replica_identity(
        conn: psycopg.Connection[Any]) -> None:
    tables = dict(rows(conn, """
        SELECT c.relname, c.relreplident FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'"""))
    assert set(tables) == FULL | DEFAULT
    assert {t for t, ident in tables.items() if ident == "f"} == FULL
    assert {t for t, ident in tables.items() if ident == "d"} == DEFAULT
    without_pk = rows(conn, """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid
                          AND k.contype = 'p')""")
    assert without_pk == []
    uncommented = rows(conn, """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'
          AND obj_description(c.oid, 'pg_class') IS NULL""")
    assert uncommented == []


def test_customer_lookups_are_indexed(conn: psycopg.Connection[Any]) -> None:
    indexes = {name for (name,) in rows(conn, "SELECT indexname FROM pg_indexes "
                                              "WHERE tablename IN ('customers', 'contacts')")}
    assert {"customers_phone_uq", "customers_store_idx", "contacts_channel_address_key",
            "contacts_customer_idx"} <= indexes
