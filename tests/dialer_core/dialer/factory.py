"""Small row builders for dialer tests (explicit ids and values, so assertions can be exact)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from dialer_core.dialer.buckets import common_bucket


def campaign(conn: psycopg.Connection, name: str = "c1", strategy: str = "progressive",
             **cols: object) -> int:
    cols = {"name": name, "strategy": strategy, **cols}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    row = conn.execute(f"INSERT INTO campaigns ({names}) VALUES ({marks}) RETURNING campaign_id",
                       list(cols.values())).fetchone()
    assert row is not None
    campaign_id = int(row[0])
    conn.execute("INSERT INTO queues (name, campaign_id) VALUES (%s, %s)",
                 (f"q:{name}", campaign_id))
    return campaign_id


def operator(conn: psycopg.Connection, login: str, campaign_ids: list[int],
             status: str = "offline") -> int:
    row = conn.execute("INSERT INTO operators (login, name) VALUES (%s, %s)"
                       " RETURNING operator_id", (login, login)).fetchone()
    assert row is not None
    op = int(row[0])
    for cid in campaign_ids:
        conn.execute("INSERT INTO queue_members (queue_id, operator_id)"
                     " SELECT queue_id, %s FROM queues WHERE campaign_id = %s", (op, cid))
    if status != "offline":
        conn.execute("UPDATE operators SET status = %s WHERE operator_id = %s", (status, op))
    return op


def lead(conn: psycopg.Connection, campaign_id: int, next_call_at: datetime,
         timezone: str = "UTC", phone: str = "+10000000000", **cols: object) -> int:
    values = {"campaign_id": campaign_id, "bucket_id": common_bucket(conn, campaign_id),
              "phone": phone, "timezone": timezone, "next_call_at": next_call_at, **cols}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = conn.execute(f"INSERT INTO leads ({names}) VALUES ({marks}) RETURNING lead_id",
                       list(values.values())).fetchone()
    assert row is not None
    return int(row[0])
