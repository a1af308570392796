"""Trouble tickets: routed by topic to a group, SLA by type, every change in ticket_history.

Each function locks the ticket row first, so history ``seq`` numbers are gapless and in the
order the changes happened, and writes the ticket and its history rows in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm import appeals, routing, sla
from dialer_core.crm.db import all_rows, one, require
from dialer_core.crm.errors import Conflict, ValidationError
from dialer_core.crm.settings import DEFAULT_SETTINGS, TICKET_TYPES, CrmSettings

ACTIVE = ("open", "in_progress")
_NEXT = {  # explicit status changes; reopen (resolved/closed -> open) is its own function
    "open": {"in_progress", "resolved", "closed"},
    "in_progress": {"open", "resolved", "closed"},
    "resolved": {"closed"},
    "closed": set(),
}


def get(conn: psycopg.Connection[Any], ticket_id: int) -> dict[str, Any]:
    return require(conn, "SELECT * FROM tickets WHERE ticket_id = %s", (ticket_id,),
                   f"ticket {ticket_id}")


def history(conn: psycopg.Connection[Any], ticket_id: int) -> list[dict[str, Any]]:
    return all_rows(conn, "SELECT * FROM ticket_history WHERE ticket_id = %s ORDER BY seq",
                    (ticket_id,))


def _lock(conn: psycopg.Connection[Any], ticket_id: int) -> dict[str, Any]:
    return require(conn, "SELECT * FROM tickets WHERE ticket_id = %s FOR UPDATE",
                   (ticket_id,), f"ticket {ticket_id}")


def _log(conn: psycopg.Connection[Any], ticket_id: int, event: str, at: datetime,
         actor_id: int | None, note: str = "", **change: Any) -> None:
    conn.execute("""
        INSERT INTO ticket_history (ticket_id, seq, event, from_group_id, to_group_id,
            from_assignee_id, to_assignee_id, from_status, to_status, actor_id, note, at)
        SELECT %(t)s, COALESCE(MAX(seq), 0) + 1, %(e)s, %(fg)s, %(tg)s, %(fa)s, %(ta)s,
            %(fs)s, %(ts)s, %(actor)s, %(note)s, %(at)s
        FROM ticket_history WHERE ticket_id = %(t)s""",
                 {"t": ticket_id, "e": event, "actor": actor_id, "note": note, "at": at,
                  "fg": change.get("from_group"), "tg": change.get("to_group"),
                  "fa": change.get("from_assignee"), "ta": change.get("to_assignee"),
                  "fs": change.get("from_status"), "ts": change.get("to_status")})


def _employee(conn: psycopg.Connection[Any], employee_id: int | None,
              field: str) -> dict[str, Any] | None:
    if employee_id is None:
        return None
    row = one(conn, "SELECT employee_id, group_id, active FROM employees WHERE employee_id = %s",
              (employee_id,))
    if row is None:
        raise ValidationError(f"unknown employee {employee_id}", field=field)
    return row


def create(conn: psycopg.Connection[Any], *, appeal_id: int, ticket_type: str, at: datetime,
           settings: CrmSettings = DEFAULT_SETTINGS, topic_id: int | None = None,
           assignee_id: int | None = None, actor_id: int | None = None) -> dict[str, Any]:
    """Open a ticket for an appeal: routed to its topic's group, SLA due from now."""
    if ticket_type not in TICKET_TYPES:
        raise ValidationError(f"ticket type must be one of {', '.join(TICKET_TYPES)}",
                              field="ticket_type")
    with conn.transaction():
        _employee(conn, actor_id, "actor_id")
        appeal = appeals.get(conn, appeal_id)
        if topic_id is None:
            topic_id = appeal["topic_id"]
        elif one(conn, "SELECT 1 FROM topics WHERE topic_id = %s", (topic_id,)) is None:
            raise ValidationError(f"unknown topic_id {topic_id}", field="topic_id")
        region_id = appeal["region_id"]
        group_id = routing.route_group(conn, topic_id, region_id)
        due = sla.deadline(conn, ticket_type, region_id, at, settings)
        ticket = one(conn, """
            INSERT INTO tickets (appeal_id, ticket_type, topic_id, region_id, group_id, status,
                sla_due_at, sla_remind_at, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s) RETURNING *""",
                     (appeal_id, ticket_type, topic_id, region_id, group_id, due.due_at,
                      due.remind_at, at, at))
        assert ticket is not None
        _log(conn, ticket["ticket_id"], "created", at, actor_id, to_group=group_id,
             to_status="open")
        if assignee_id is not None:
            ticket = assign(conn, ticket["ticket_id"], at, assignee_id=assignee_id,
                            actor_id=actor_id)
        return ticket


def assign(conn: psycopg.Connection[Any], ticket_id: int, at: datetime, *,
           assignee_id: int | None = None, group_id: int | None = None,
           actor_id: int | None = None, note: str = "") -> dict[str, Any]:
    """Hand a ticket to a person and/or another group.

    Giving only a group puts the ticket back in that group's queue (no assignee, status open);
    giving a person moves it to their group if needed and starts work (in_progress). The
    assignment and the status change each get their own history row, in that order.
    """
    if assignee_id is None and group_id is None:
        raise ValidationError("give assignee_id and/or group_id", field="assignee_id")
    with conn.transaction():
        _employee(conn, actor_id, "actor_id")
        ticket = _lock(conn, ticket_id)
        if ticket["status"] not in ACTIVE:
            raise Conflict(f"ticket {ticket_id} is {ticket['status']}; reopen it first")
        person = _employee(conn, assignee_id, "assignee_id")
        if group_id is not None and one(conn, "SELECT 1 FROM specialist_groups "
                                              "WHERE group_id = %s", (group_id,)) is None:
            raise ValidationError(f"unknown group {group_id}", field="group_id")
        if person is not None:
            if not person["active"]:
                raise ValidationError(f"employee {assignee_id} is not active",
                                      field="assignee_id")
            if person["group_id"] is None:
                raise ValidationError(f"employee {assignee_id} belongs to no specialist group",
                                      field="assignee_id")
            if group_id is not None and person["group_id"] != group_id:
                raise ValidationError(f"employee {assignee_id} is not in group {group_id}",
                                      field="assignee_id")
            group_id = person["group_id"]
        new_group = group_id if group_id is not None else ticket["group_id"]
        new_status = "in_progress" if assignee_id is not None else "open"
        if new_group == ticket["group_id"] and assignee_id == ticket["assignee_id"]:
            return ticket  # nothing changes: no history noise
        updated = one(conn, "UPDATE tickets SET group_id = %s, assignee_id = %s, status = %s, "
                            "updated_at = %s WHERE ticket_id = %s RETURNING *",
                      (new_group, assignee_id, new_status, at, ticket_id))
        _log(conn, ticket_id, "assigned", at, actor_id, note,
             from_group=ticket["group_id"], to_group=new_group,
             from_assignee=ticket["assignee_id"], to_assignee=assignee_id)
        if new_status != ticket["status"]:
            _log(conn, ticket_id, "status", at, actor_id, from_status=ticket["status"],
                 to_status=new_status)
        assert updated is not None
        return updated


def set_status(conn: psycopg.Connection[Any], ticket_id: int, status: str, at: datetime, *,
               actor_id: int | None = None, note: str = "") -> dict[str, Any]:
    """Resolve, close, or move a ticket between open and in progress."""
    if status not in _NEXT:
        raise ValidationError(f"unknown ticket status {status!r}", field="status")
    with conn.transaction():
        _employee(conn, actor_id, "actor_id")
        ticket = _lock(conn, ticket_id)
        if status not in _NEXT[ticket["status"]]:
            hint = "; reopen it instead" if status in ACTIVE else ""
            raise Conflict(f"ticket {ticket_id} is {ticket['status']}; cannot become "
                           f"{status}{hint}")
        updated = one(conn, """
            UPDATE tickets SET status = %(s)s, updated_at = %(at)s,
                resolved_at = CASE WHEN %(s)s = 'resolved' THEN %(at)s ELSE resolved_at END,
                closed_at = CASE WHEN %(s)s = 'closed' THEN %(at)s ELSE closed_at END
            WHERE ticket_id = %(id)s RETURNING *""", {"s": status, "at": at, "id": ticket_id})
        _log(conn, ticket_id, "status", at, actor_id, note, from_status=ticket["status"],
             to_status=status)
        assert updated is not None
        return updated


def close(conn: psycopg.Connection[Any], ticket_id: int, at: datetime, *,
          actor_id: int | None = None, note: str = "") -> dict[str, Any]:
    return set_status(conn, ticket_id, "closed", at, actor_id=actor_id, note=note)


def reopen(conn: psycopg.Connection[Any], ticket_id: int, at: datetime, *,
           actor_id: int | None = None, note: str = "",
           settings: CrmSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """Reopen a resolved or closed ticket with a fresh SLA from now (a new promise to the
    customer) and a fresh reminder; it goes back to its assignee if it still has one."""
    with conn.transaction():
        _employee(conn, actor_id, "actor_id")
        ticket = _lock(conn, ticket_id)
        if ticket["status"] in ACTIVE:
            raise Conflict(f"ticket {ticket_id} is {ticket['status']}; only resolved or closed "
                           "tickets can be reopened")
        due = sla.deadline(conn, ticket["ticket_type"], ticket["region_id"], at, settings)
        status = "in_progress" if ticket["assignee_id"] is not None else "open"
        updated = one(conn, """
            UPDATE tickets SET status = %s, resolved_at = NULL, closed_at = NULL,
                reopened_count = reopened_count + 1, sla_due_at = %s, sla_remind_at = %s,
                reminded_at = NULL, updated_at = %s
            WHERE ticket_id = %s RETURNING *""", (status, due.due_at, due.remind_at, at,
                                                 ticket_id))
        _log(conn, ticket_id, "status", at, actor_id, note or "reopened",
             from_status=ticket["status"], to_status=status)
        assert updated is not None
        return updated
