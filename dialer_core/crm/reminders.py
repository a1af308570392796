"""SLA reminders: tell the assignee (or the whole group) that a ticket's deadline nears.

Run every simulated minute. Each ticket gets one reminder per deadline (``reminded_at`` plus a
unique key on (ticket_id, sla_due_at)); a reopened ticket has a new deadline, hence a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm.db import all_rows


def send_due(conn: psycopg.Connection[Any], at: datetime, limit: int = 1000,
             ) -> list[dict[str, Any]]:
    """Create the reminders that are due at ``at``; returns the rows written."""
    with conn.transaction():
        return all_rows(conn, """
            WITH due AS (
                SELECT ticket_id FROM tickets
                WHERE reminded_at IS NULL AND status IN ('open', 'in_progress')
                  AND sla_remind_at <= %(at)s
                ORDER BY sla_remind_at, ticket_id LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), marked AS (
                UPDATE tickets t SET reminded_at = %(at)s, updated_at = %(at)s
                FROM due WHERE t.ticket_id = due.ticket_id
                RETURNING t.ticket_id, t.assignee_id, t.group_id, t.sla_due_at
            )
            INSERT INTO sla_reminders (ticket_id, employee_id, group_id, sla_due_at, created_at)
            SELECT ticket_id, assignee_id, group_id, sla_due_at, %(at)s FROM marked
            ORDER BY ticket_id
            ON CONFLICT (ticket_id, sla_due_at) DO NOTHING
            RETURNING *""", {"at": at, "limit": limit})
