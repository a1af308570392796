"""Common and per-operator personal buckets (created on first use)."""

from __future__ import annotations

import psycopg


def common_bucket(conn: psycopg.Connection, campaign_id: int) -> int:
    conn.execute("INSERT INTO buckets (campaign_id, kind, name) VALUES (%s, 'common', 'common')"
                 " ON CONFLICT (campaign_id) WHERE kind = 'common' DO NOTHING", (campaign_id,))
    row = conn.execute("SELECT bucket_id FROM buckets WHERE campaign_id = %s AND kind = 'common'",
                       (campaign_id,)).fetchone()
    assert row is not None
    return int(row[0])


def personal_bucket(conn: psycopg.Connection, campaign_id: int, operator_id: int) -> int:
    conn.execute(
        "INSERT INTO buckets (campaign_id, kind, operator_id, name)"
        " VALUES (%s, 'personal', %s, 'personal:' || %s)"
        " ON CONFLICT (campaign_id, operator_id) WHERE kind = 'personal' DO NOTHING",
        (campaign_id, operator_id, operator_id))
    row = conn.execute("SELECT bucket_id FROM buckets WHERE campaign_id = %s AND"
                       " operator_id = %s AND kind = 'personal'",
                       (campaign_id, operator_id)).fetchone()
    assert row is not None
    return int(row[0])


def allow_callback_move(conn: psycopg.Connection) -> None:
    """Mark this transaction's lead moves as done by the callback machinery, so the move
    trigger does not cancel the callback it is carrying out."""
    conn.execute("SELECT set_config('dialer.callback_move', 'on', true)")
