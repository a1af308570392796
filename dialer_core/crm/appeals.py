"""Appeals: every contact of a customer through any channel, and cross-channel linking.

A repeat appeal (same customer, same topic, any channel, within ``repeat_window`` of the case's
first appeal) is stored with status ``linked`` and ``linked_appeal_id`` = the first appeal, so
that it is counted as a repeat contact and not as a new case. :func:`record_call` is the entry
point for the dialer: calls create or update appeals keyed on the normalised phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm import customers
from dialer_core.crm.db import id_by_code, one, require
from dialer_core.crm.errors import Conflict, ValidationError
from dialer_core.crm.settings import DEFAULT_SETTINGS, CrmSettings

OPEN_STATUSES = ("open", "in_progress")
# allowed explicit status changes of an appeal (reopen is its own function)
_TRANSITIONS = {
    "open": {"in_progress", "resolved", "closed"},
    "in_progress": {"resolved", "closed"},
    "resolved": {"closed"},
    "closed": set(),
    "linked": {"closed"},
}


@dataclass(frozen=True)
class Appeal:
    appeal_id: int
    customer_id: int
    channel: str
    status: str
    linked_appeal_id: int | None
    created: bool  # False when an idempotent retry returned an existing appeal


def get(conn: psycopg.Connection[Any], appeal_id: int) -> dict[str, Any]:
    return require(conn, "SELECT * FROM appeals WHERE appeal_id = %s", (appeal_id,),
                   f"appeal {appeal_id}")


def _check_ref(conn: psycopg.Connection[Any], table: str, key: str, value: int | None,
               field: str) -> None:
    if value is not None and one(conn, f"SELECT 1 FROM {table} WHERE {key} = %s",
                                 (value,)) is None:
        raise ValidationError(f"unknown {field} {value}", field=field)


def create(conn: psycopg.Connection[Any], *, channel: str, address: str, topic_id: int,
           queue_id: int, at: datetime, settings: CrmSettings = DEFAULT_SETTINGS,
           region_id: int | None = None, subject: str = "", phone: str | None = None,
           full_name: str = "", store_id: int | None = None, operator_id: int | None = None,
           external_ref: str | None = None) -> Appeal:
    """Open an appeal, or link it to the customer's open case on the same topic.

    ``external_ref`` makes the call idempotent: a retry returns the appeal already recorded.
    The region defaults to the region of the customer's store.
    """
    with conn.transaction():
        if external_ref is not None:
            row = one(conn, "SELECT * FROM appeals WHERE external_ref = %s", (external_ref,))
            if row:
                return _appeal(row, created=False)
        _check_ref(conn, "topics", "topic_id", topic_id, "topic_id")
        _check_ref(conn, "queues", "queue_id", queue_id, "queue_id")
        _check_ref(conn, "regions", "region_id", region_id, "region_id")
        _check_ref(conn, "stores", "store_id", store_id, "store_id")
        _check_ref(conn, "employees", "employee_id", operator_id, "operator_id")
        who = customers.resolve(conn, channel, address, at, phone=phone, full_name=full_name,
                                store_id=store_id)
        # one writer per customer at a time, so two simultaneous repeats cannot both open cases
        cust = one(conn, "SELECT c.customer_id, t.region_id FROM customers c "
                         "LEFT JOIN stores s USING (store_id) "
                         "LEFT JOIN territories t USING (territory_id) "
                         "WHERE c.customer_id = %s FOR NO KEY UPDATE OF c", (who.customer_id,))
        assert cust is not None
        if region_id is None:
            region_id = cust["region_id"]
        # the window extends both ways: of two near-simultaneous appeals the later-stamped
        # one may commit first, and the earlier must still join its case, not open another
        first = one(conn, "SELECT appeal_id, status FROM appeals WHERE customer_id = %s "
                          "AND topic_id = %s AND linked_appeal_id IS NULL "
                          "AND opened_at > %s AND opened_at < %s "
                          "ORDER BY opened_at DESC, appeal_id DESC LIMIT 1",
                    (who.customer_id, topic_id, at - settings.repeat_window,
                     at + settings.repeat_window))
        linked_to = first["appeal_id"] if first else None
        row = one(conn, """
            INSERT INTO appeals (customer_id, contact_id, channel, status, queue_id, region_id,
                topic_id, operator_id, linked_appeal_id, external_ref, subject, opened_at,
                updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *""",
                  (who.customer_id, who.contact_id, channel,
                   "linked" if linked_to else "open", queue_id, region_id, topic_id,
                   operator_id, linked_to, external_ref, subject, at, at))
        assert row is not None
        if first and first["status"] == "resolved" and settings.reopen_resolved_on_repeat:
            reopen(conn, first["appeal_id"], at)
        return _appeal(row, created=True)


def _appeal(row: dict[str, Any], created: bool) -> Appeal:
    return Appeal(row["appeal_id"], row["customer_id"], row["channel"], row["status"],
                  row["linked_appeal_id"], created)


def set_status(conn: psycopg.Connection[Any], appeal_id: int, status: str,
               at: datetime) -> dict[str, Any]:
    """Move an appeal forward (in_progress, resolved, closed); stamps the matching time."""
    with conn.transaction():
        row = require(conn, "SELECT status FROM appeals WHERE appeal_id = %s FOR UPDATE",
                      (appeal_id,), f"appeal {appeal_id}")
        if status not in _TRANSITIONS:
            raise ValidationError(f"unknown appeal status {status!r}", field="status")
        if status not in _TRANSITIONS[row["status"]]:
            raise Conflict(f"appeal {appeal_id} is {row['status']}; cannot become {status}")
        updated = one(conn, """
            UPDATE appeals SET status = %(s)s, updated_at = %(at)s,
                resolved_at = CASE WHEN %(s)s = 'resolved' THEN %(at)s ELSE resolved_at END,
                closed_at = CASE WHEN %(s)s = 'closed' THEN %(at)s ELSE closed_at END
            WHERE appeal_id = %(id)s RETURNING *""", {"s": status, "at": at, "id": appeal_id})
        assert updated is not None
        return updated


def reopen(conn: psycopg.Connection[Any], appeal_id: int, at: datetime) -> dict[str, Any]:
    """Reopen a resolved or closed appeal: the case goes on, its reopen count grows."""
    with conn.transaction():
        row = require(conn, "SELECT status FROM appeals WHERE appeal_id = %s FOR UPDATE",
                      (appeal_id,), f"appeal {appeal_id}")
        if row["status"] not in ("resolved", "closed"):
            raise Conflict(f"appeal {appeal_id} is {row['status']}; only resolved or closed "
                           "appeals can be reopened")
        updated = one(conn, """
            UPDATE appeals SET status = 'in_progress', resolved_at = NULL, closed_at = NULL,
                reopened_count = reopened_count + 1, updated_at = %s
            WHERE appeal_id = %s RETURNING *""", (at, appeal_id))
        assert updated is not None
        return updated


def mark_first_response(conn: psycopg.Connection[Any], appeal_id: int, at: datetime) -> None:
    """The first answer or the operator picking up: first response time stops, work starts."""
    conn.execute("""
        UPDATE appeals SET first_response_at = COALESCE(first_response_at, %(at)s),
            status = CASE WHEN status = 'open' THEN 'in_progress' ELSE status END,
            updated_at = %(at)s
        WHERE appeal_id = %(id)s
          AND (first_response_at IS NULL OR status = 'open')""", {"at": at, "id": appeal_id})


def record_call(conn: psycopg.Connection[Any], phone: str, *, call_id: str, at: datetime,
                answered_at: datetime | None = None, operator_id: int | None = None,
                topic_id: int | None = None, queue_id: int | None = None,
                settings: CrmSettings = DEFAULT_SETTINGS) -> Appeal:
    """Create or update the appeal of one dialer call (inbound or outbound), idempotently.

    The dialer calls this when a call starts and again when an operator answers; both calls
    with the same ``call_id`` touch one appeal. The customer is the one with this normalised
    phone (created if new), the same identity as the dialer's lead. Answering is the appeal's
    first response.
    """
    with conn.transaction():
        if queue_id is None:
            queue_id = id_by_code(conn, "queues", "queue_id", settings.call_queue_code)
        if topic_id is None:
            topic_id = id_by_code(conn, "topics", "topic_id", settings.call_topic_code)
        if queue_id is None or topic_id is None:
            raise ValidationError(f"default call queue {settings.call_queue_code!r} or topic "
                                  f"{settings.call_topic_code!r} is not configured")
        appeal = create(conn, channel="call", address=phone, topic_id=topic_id,
                        queue_id=queue_id, at=at, settings=settings, operator_id=operator_id,
                        external_ref=f"dialer:{call_id}")
        if operator_id is not None and not appeal.created:
            conn.execute("UPDATE appeals SET operator_id = %s, updated_at = %s "
                         "WHERE appeal_id = %s AND operator_id IS DISTINCT FROM %s",
                         (operator_id, answered_at or at, appeal.appeal_id, operator_id))
        if answered_at is not None:
            mark_first_response(conn, appeal.appeal_id, answered_at)
        return appeal
