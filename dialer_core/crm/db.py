"""Small helpers over psycopg shared by the CRM modules."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from dialer_core.crm.errors import NotFound


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] | dict[str, Any] = (),
        ) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchone()


def all_rows(conn: psycopg.Connection[Any], sql: str,
             params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall()


def require(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...], what: str,
            ) -> dict[str, Any]:
    """Like :func:`one`, but a missing row is a :class:`NotFound` naming ``what``."""
    row = one(conn, sql, params)
    if row is None:
        raise NotFound(f"{what} not found")
    return row


def id_by_code(conn: psycopg.Connection[Any], table: str, key: str, code: str) -> int | None:
    """Resolve a reference code (queue, topic, group, region) to its id. ``table``/``key`` are
    module constants, never user input."""
    row = one(conn, f"SELECT {key} AS id FROM {table} WHERE code = %s", (code,))
    return None if row is None else int(row["id"])
