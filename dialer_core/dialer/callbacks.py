"""Callbacks: a lead bound to one operator at an agreed time.

* At creation ``next_call_at = min(agreed time, the lead's schedule)`` and never moves after that
  (a later rule change does not touch it); the lead goes to the operator's personal bucket and the
  batcher takes it each minute like any lead.
* One open callback per lead (a unique partial index): a duplicate request reschedules the open
  one instead of creating a second.
* A callback not kept within the campaign's ``callback_reassign_after`` of its due time (or of the
  campaign restarting) moves to another logged-in operator or to the common group.
* Times come from the service clock. A client clock a little behind (up to
  :data:`SKEW_TOLERANCE`) is clamped to now; further in the past is an error, not a silent
  immediate call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from dialer_core.dialer.buckets import allow_callback_move, common_bucket, personal_bucket

SKEW_TOLERANCE = timedelta(minutes=5)


class CallbackError(ValueError):
    """An invalid callback request; ``status`` is the HTTP answer (404, 409 or 422)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reassignment:
    callback_id: int
    from_operator: int | None
    to_operator: int | None    # None: the common group


def create_callback(conn: psycopg.Connection, lead_id: int, operator_id: int,
                    agreed_at: datetime, now: datetime) -> int:
    """Create (or, for a lead with an open callback, reschedule) a callback; returns its id."""
    if agreed_at.tzinfo is None:
        raise CallbackError("agreed time must carry a timezone offset", 422)
    if agreed_at < now - SKEW_TOLERANCE:
        raise CallbackError(f"agreed time {agreed_at.isoformat()} is in the past", 422)
    agreed_at = max(agreed_at, now)
    with conn.transaction():
        lead = conn.execute("SELECT campaign_id, next_call_at, status FROM leads"
                            " WHERE lead_id = %s FOR UPDATE", (lead_id,)).fetchone()
        if lead is None:
            raise CallbackError(f"lead {lead_id} does not exist", 404)
        campaign_id, scheduled, status = lead
        if status == "dnc":
            raise CallbackError(f"lead {lead_id} is on the do-not-call list")
        op = conn.execute("SELECT 1 FROM operators WHERE operator_id = %s AND removed_at IS NULL",
                          (operator_id,)).fetchone()
        if op is None:
            raise CallbackError(f"operator {operator_id} does not exist or was removed", 404)
        open_cb = conn.execute(
            "SELECT callback_id, status FROM callbacks WHERE lead_id = %s"
            " AND status IN ('pending', 'dialing') FOR UPDATE", (lead_id,)).fetchone()
        # The lead's own schedule counts only if it is still ahead and is not the open
        # callback's (a reschedule replaces that one, it does not race it).
        next_call_at = (min(agreed_at, scheduled) if scheduled > now and open_cb is None
                        else agreed_at)
        if open_cb is not None and open_cb[1] == "dialing":
            raise CallbackError(f"lead {lead_id} is being called back right now")
        if open_cb is not None:
            callback_id = int(open_cb[0])
            conn.execute(
                "UPDATE callbacks SET operator_id = %s, assigned_operator_id = %s, agreed_at = %s,"
                " next_call_at = %s, reassigned_at = NULL, reassigned_to = NULL,"
                " updated_at = %s WHERE callback_id = %s",
                (operator_id, operator_id, agreed_at, next_call_at, now, callback_id))
        else:
            row = conn.execute(
                "INSERT INTO callbacks (lead_id, campaign_id, operator_id, assigned_operator_id,"
                " agreed_at, next_call_at, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING callback_id",
                (lead_id, campaign_id, operator_id, operator_id, agreed_at, next_call_at,
                 now, now)).fetchone()
            assert row is not None
            callback_id = int(row[0])
        bucket = personal_bucket(conn, campaign_id, operator_id)
        allow_callback_move(conn)
        conn.execute("UPDATE leads SET bucket_id = %s, next_call_at = %s, status = 'active',"
                     " updated_at = %s WHERE lead_id = %s",
                     (bucket, next_call_at, now, lead_id))
    return callback_id


def cancel_callback(conn: psycopg.Connection, callback_id: int, now: datetime,
                    reason: str = "cancelled_by_operator") -> None:
    """Cancel an open callback; its lead returns to the common bucket with its schedule."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE callbacks SET status = 'cancelled', reason = %s, updated_at = %s"
            " WHERE callback_id = %s AND status = 'pending' RETURNING lead_id, campaign_id",
            (reason, now, callback_id)).fetchone()
        if row is None:
            raise CallbackError(f"callback {callback_id} is not pending")
        lead_id, campaign_id = row
        if lead_id is not None:
            allow_callback_move(conn)
            conn.execute("UPDATE leads SET bucket_id = %s, updated_at = %s WHERE lead_id = %s",
                          (common_bucket(conn, campaign_id), now, lead_id))


# Overdue: pending, assigned to an operator, the campaign active, and not kept within the delay
# counted from the latest of its due time, its last reassignment, the campaign's (re)start and
# the lead's own next call (a callback tried without answer waits for its rule's retry),
# while the lead's calling window was open all along (the window open now and a delay ago): a
# callback that could not be dialed (night in the lead's zone) was not "not kept".
_OVERDUE = """
SELECT cb.callback_id, cb.lead_id, cb.campaign_id, cb.assigned_operator_id, c.callback_fallback
  FROM callbacks cb JOIN campaigns c USING (campaign_id) LEFT JOIN leads l USING (lead_id)
 WHERE cb.status = 'pending' AND cb.assigned_operator_id IS NOT NULL AND c.status = 'active'
   AND %(now)s >= greatest(cb.next_call_at, cb.reassigned_at, c.status_changed_at,
                           l.next_call_at) + c.callback_reassign_after
   AND (l.lead_id IS NULL OR (
        dialer_window_open(%(now)s, l.timezone, c.window_start, c.window_end)
        AND dialer_window_open(%(now)s - c.callback_reassign_after, l.timezone,
                               c.window_start, c.window_end)))
 ORDER BY cb.next_call_at, cb.callback_id
 FOR UPDATE OF cb SKIP LOCKED
"""

# Another logged-in operator of the campaign's queues, least loaded with open callbacks.
_PICK_OPERATOR = """
SELECT o.operator_id
  FROM operators o
  JOIN queue_members qm ON qm.operator_id = o.operator_id
  JOIN queues q ON q.queue_id = qm.queue_id AND q.campaign_id = %(campaign)s
 WHERE o.removed_at IS NULL AND o.status <> 'offline' AND o.operator_id <> %(current)s
 ORDER BY (SELECT count(*) FROM callbacks x WHERE x.assigned_operator_id = o.operator_id
            AND x.status IN ('pending', 'dialing')),
          (o.status = 'ready') DESC, o.operator_id
 LIMIT 1
"""


def reassign_overdue(conn: psycopg.Connection, now: datetime) -> list[Reassignment]:
    """Move every callback not kept in time (runs once per batcher tick)."""
    done: list[Reassignment] = []
    with conn.transaction():
        allow_callback_move(conn)
        for callback_id, lead_id, campaign_id, current, fallback in conn.execute(
                _OVERDUE, {"now": now}).fetchall():
            target = None
            if fallback == "operator":
                row = conn.execute(_PICK_OPERATOR,
                                   {"campaign": campaign_id, "current": current}).fetchone()
                target = row[0] if row else None
            bucket = (personal_bucket(conn, campaign_id, target) if target is not None
                      else common_bucket(conn, campaign_id))
            conn.execute(
                "UPDATE callbacks SET assigned_operator_id = %s, reassigned_at = %s,"
                " reassigned_to = %s, updated_at = %s WHERE callback_id = %s",
                (target, now, "operator" if target is not None else "common", now, callback_id))
            if lead_id is not None:
                conn.execute("UPDATE leads SET bucket_id = %s, updated_at = %s"
                             " WHERE lead_id = %s", (bucket, now, lead_id))
            done.append(Reassignment(callback_id, current, target))
    return done
