"""The migrations: every table has a primary key and a deliberate replica identity."""

from __future__ import annotations

import psycopg

from dialer_core.dialer.db import migrate_dialer

FULL = {"calendars", "holidays", "campaigns", "scheduler_rules", "caller_id_routes", "operators",
        "queues", "queue_members", "buckets", "callbacks"}
DEFAULT = {"leads", "operator_status_log", "call_attempts", "icp_steps", "hopper_ticks"}


def test_every_table_has_a_primary_key_and_chosen_replica_identity(db: psycopg.Connection):
    rows = db.execute(
        "SELECT c.relname, c.relreplident,"
        " EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'"
    ).fetchall()
    identity = {name: ident for name, ident, _ in rows}
    assert set(identity) == FULL | DEFAULT
    assert all(has_pk for _, _, has_pk in rows)
    assert {n for n, i in identity.items() if i == "f"} == FULL
    assert {n for n, i in identity.items() if i == "d"} == DEFAULT


def test_migrating_twice_applies_nothing(dialer_dsn: str):
    assert migrate_dialer(dialer_dsn) == []


def test_batcher_uses_the_partial_due_index(db: psycopg.Connection):
    db.execute("SET enable_seqscan = off")
    plan = db.execute(
        "EXPLAIN SELECT lead_id FROM leads WHERE campaign_id = 1 AND status = 'active'"
        " AND locked_by IS NULL AND next_call_at <= now() ORDER BY next_call_at LIMIT 10"
    ).fetchall()
    assert "leads_due" in "\n".join(r[0] for r in plan)
