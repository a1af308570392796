"""The fixture day, 2026-11-20 (UTC): a small hand-written day of dialer and CRM activity.

Every expected KPI in test_kpis.py is derived by hand from these rows (the comments there
show the arithmetic). Reference rows were committed at 08:00:00 and exported at 08:00:05;
activity rows committed at 11:58:00 and exported at 11:58:02. Attempt 10 is first exported
at 09:56 while its operator is still talking (LATE_ATTEMPT_BEFORE), and updated at 11:55
(LATE_ATTEMPT_AFTER): two hours after it started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.dbt_project.staging import upsert

Row = dict[str, Any]


def at(hms: str) -> datetime:
    """A time of the fixture day, 'HH:MM:SS' in UTC."""
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 11, 20, h, m, s, tzinfo=UTC)


REFERENCE_TS = at("08:00:00")
ACTIVITY_TS = at("11:58:00")
LATE_TS = at("11:55:00")        # attempt 10 updated 2 h after its start (09:55)
LATE_EXPORTED = at("12:00:00")  # and exported 5 minutes later

REFERENCE: dict[str, list[Row]] = {
    "dialer__campaigns": [
        {"campaign_id": 1, "name": "Sales", "strategy": "predictive"},
        {"campaign_id": 2, "name": "Callbacks", "strategy": "callback"},
    ],
    "dialer__operators": [
        {"operator_id": 1, "login": "op0001", "name": "Ann", "status": "offline"},
        {"operator_id": 2, "login": "op0002", "name": "Bob", "status": "offline"},
    ],
    "dialer__queues": [
        {"queue_id": 1, "name": "sales", "campaign_id": 1, "direction": "outbound"},
        {"queue_id": 2, "name": "inbound", "campaign_id": None, "direction": "inbound"},
    ],
    "crm__business_calendars": [{"calendar_id": 1, "code": "default",
                                 "timezone": "Europe/Moscow"}],
    "crm__regions": [
        {"region_id": 1, "code": "MOW", "name": "Moscow", "timezone": "Europe/Moscow",
         "calendar_id": 1},
        {"region_id": 2, "code": "VVO", "name": "Primorye", "timezone": "Asia/Vladivostok",
         "calendar_id": 1},
    ],
    "crm__queues": [{"queue_id": 1, "code": "calls", "name": "Calls"},
                    {"queue_id": 2, "code": "digital", "name": "Digital"}],
    "crm__specialist_groups": [{"group_id": 1, "code": "billing", "name": "Billing"},
                               {"group_id": 2, "code": "tech", "name": "Technical"}],
    "crm__employees": [
        {"employee_id": 1, "login": "op0001", "full_name": "Ann", "role": "operator",
         "queue_id": 1, "region_id": 1},
        {"employee_id": 10, "login": "bill1", "full_name": "Bill", "role": "engineer",
         "group_id": 1},
        {"employee_id": 20, "login": "tech1", "full_name": "Tess", "role": "engineer",
         "group_id": 2},
    ],
    "crm__topics": [
        {"topic_id": 1, "code": "general", "name": "General"},
        {"topic_id": 2, "code": "billing", "name": "Billing"},
        {"topic_id": 3, "code": "billing_refund", "name": "Refund", "parent_topic_id": 2},
    ],
    "crm__sla_policies": [
        {"ticket_type": "task", "resolve_minutes": 480, "remind_before_minutes": 60},
        {"ticket_type": "claim", "resolve_minutes": 960, "remind_before_minutes": 120},
    ],
}


def attempt(attempt_id: int, direction: str, campaign_id: int | None, queue_id: int | None,
            lead_id: int | None, operator_id: int | None, originated: str, outcome: str | None,
            *, answered: str | None = None, queued: str | None = None,
            connected: str | None = None, ended: str | None = None,
            wrap_ended: str | None = None, hold: int = 0, callback_id: int | None = None,
            state: str = "closed", closed: str | None = None) -> Row:
    def t(v: str | None) -> datetime | None:
        return at(v) if v else None

    last = closed or wrap_ended or ended or connected or answered or originated
    return {
        "attempt_id": attempt_id, "direction": direction, "campaign_id": campaign_id,
        "lead_id": lead_id, "callback_id": callback_id, "queue_id": queue_id,
        "operator_id": operator_id, "phone": f"+7900000{attempt_id:04d}", "state": state,
        "outcome": outcome, "disposition": outcome, "originated_at": at(originated),
        "answered_at": t(answered), "queued_at": t(queued), "connected_at": t(connected),
        "ended_at": t(ended), "wrap_ended_at": t(wrap_ended),
        "closed_at": t(last) if state == "closed" else None, "hold_seconds": hold,
        "updated_at": at(last),
    }


CALL_ATTEMPTS: list[Row] = [
    # 1: outbound, answered 09:00:10, operator 5 s later, talk 180 s incl. 20 s hold, wrap 60 s
    attempt(1, "outbound", 1, 1, 101, 1, "09:00:00", "answered", answered="09:00:10",
            queued="09:00:10", connected="09:00:15", ended="09:03:15", wrap_ended="09:04:15",
            hold=20),
    # 2: the kept callback 503's dial; operator after 30 s, talk 120, wrap 30
    attempt(2, "outbound", 1, 1, 102, 2, "09:05:00", "answered", answered="09:05:08",
            queued="09:05:08", connected="09:05:38", ended="09:07:38", wrap_ended="09:08:08",
            callback_id=503),
    # 3: answered, nobody took it within 2 s: abandoned (short)
    attempt(3, "outbound", 1, 1, 103, None, "09:10:00", "abandoned", answered="09:10:06",
            queued="09:10:06", ended="09:10:08"),
    # 4, 5: the same lead twice, no contact
    attempt(4, "outbound", 1, 1, 104, None, "09:20:00", "no_answer", ended="09:20:30"),
    attempt(5, "outbound", 1, 1, 104, None, "09:40:00", "busy", ended="09:40:05"),
    # 6: answering machine: not a live contact, not offered
    attempt(6, "outbound", 1, 1, 105, None, "09:50:00", "machine", ended="09:50:12"),
    # 7: inbound, queued 10:02:30, operator at 10:02:40, talk 240 incl. 40 hold, wrap 30
    attempt(7, "inbound", None, 2, None, 1, "10:02:00", "answered", answered="10:02:00",
            queued="10:02:30", connected="10:02:40", ended="10:06:40", wrap_ended="10:07:10",
            hold=40),
    # 8: inbound caller hung up after 60 s in the queue
    attempt(8, "inbound", None, 2, None, None, "10:20:00", "abandoned", answered="10:20:00",
            queued="10:20:20", ended="10:21:20"),
    # 9: callback 501 dialed at 11:00 (due 10:50), reserved operator: connected at answer
    attempt(9, "outbound", 2, None, 106, 2, "11:00:00", "answered", answered="11:00:07",
            connected="11:00:07", ended="11:02:07", wrap_ended="11:03:07", callback_id=501),
]
# 10: answered 09:55:10, operator 09:55:12; first seen mid-call, finished (talk 300, wrap 60)
# and dispositioned at 11:55
LATE_ATTEMPT_BEFORE = attempt(10, "outbound", 1, 1, 107, 2, "09:55:00", None,
                              answered="09:55:10", queued="09:55:10", connected="09:55:12",
                              state="connected")
LATE_ATTEMPT_AFTER = {**attempt(10, "outbound", 1, 1, 107, 2, "09:55:00", "answered",
                                answered="09:55:10", queued="09:55:10", connected="09:55:12",
                                ended="10:00:12", wrap_ended="10:01:12", closed="11:55:00"),
                      "disposition": "sale"}


def statuses(log_id: int, operator_id: int, *changes: tuple[str, str]) -> list[Row]:
    """Status-log rows: each (time, status) interval ends when the next starts."""
    rows = []
    for i, (start, status) in enumerate(changes):
        end = at(changes[i + 1][0]) if i + 1 < len(changes) else None
        rows.append({"log_id": log_id + i, "operator_id": operator_id, "status": status,
                     "reason": "break" if status == "paused" else None,
                     "started_at": at(start), "ended_at": end})
    return rows


OPERATOR_STATUS_LOG: list[Row] = [
    *statuses(1, 1, ("08:50:00", "ready"), ("09:00:15", "on_call"), ("09:03:15", "wrap_up"),
              ("09:04:15", "ready"), ("09:30:00", "paused"), ("10:00:00", "ready"),
              ("10:02:40", "on_call"), ("10:06:40", "wrap_up"), ("10:07:10", "offline")),
    *statuses(101, 2, ("09:00:00", "ready"), ("09:05:38", "on_call"), ("09:07:38", "wrap_up"),
              ("09:08:08", "ready"), ("09:55:12", "on_call"), ("10:00:12", "wrap_up"),
              ("10:01:12", "ready"), ("11:00:07", "on_call"), ("11:02:07", "wrap_up"),
              ("11:03:07", "offline")),
]


def callback(callback_id: int, campaign_id: int, lead_id: int, operator_id: int,
             assigned: int, due: str, status: str, updated: str, **extra: Any) -> Row:
    return {"callback_id": callback_id, "lead_id": lead_id, "campaign_id": campaign_id,
            "operator_id": operator_id, "assigned_operator_id": assigned, "agreed_at": at(due),
            "next_call_at": at(due), "status": status, "created_at": at("09:00:00"),
            "updated_at": at(updated), **extra}


CALLBACKS: list[Row] = [
    callback(501, 2, 106, 2, 2, "10:50:00", "late", "11:00:07", attempt_id=9),
    callback(502, 1, 101, 1, 1, "09:20:00", "missed", "09:50:00"),
    callback(503, 1, 102, 2, 2, "09:05:00", "kept", "09:05:38", attempt_id=2),
    callback(504, 1, 103, 1, 1, "11:30:00", "cancelled", "10:00:00", reason="lead_deleted"),
    callback(505, 1, 104, 1, 2, "10:40:00", "pending", "10:55:00",
             reassigned_at=at("10:55:00"), reassigned_to="operator"),
]

ICP_STEPS: list[Row] = [
    {"step_id": 1, "attempt_id": 7, "seq": 1, "requested_at": at("10:02:00"),
     "http_status": 200, "latency_ms": 120, "action": "say", "fallback": False},
    {"step_id": 2, "attempt_id": 7, "seq": 2, "requested_at": at("10:02:00"),
     "http_status": 200, "latency_ms": 80, "action": "route", "fallback": False},
    {"step_id": 3, "attempt_id": 8, "seq": 1, "requested_at": at("10:20:00"),
     "http_status": 500, "latency_ms": 300, "action": "fallback", "fallback": True,
     "error": "HTTP 500"},
    {"step_id": 4, "attempt_id": 8, "seq": 2, "requested_at": at("10:20:00"),
     "action": "route", "fallback": True},
]

HOPPER_TICKS: list[Row] = [
    {"campaign_id": 1, "tick_at": at("09:00:00"), "selected": 100, "duration_ms": 50},
    {"campaign_id": 1, "tick_at": at("09:01:00"), "selected": 80, "duration_ms": 30},
    {"campaign_id": 1, "tick_at": at("09:16:00"), "selected": 60, "duration_ms": 40},
    {"campaign_id": 2, "tick_at": at("10:00:00"), "selected": 5, "duration_ms": 10},
]


def appeal(appeal_id: int, customer_id: int, channel: str, queue_id: int, region_id: int,
           topic_id: int, status: str, opened: str, **times: Any) -> Row:
    row = {"appeal_id": appeal_id, "customer_id": customer_id, "contact_id": appeal_id,
           "channel": channel, "status": status, "queue_id": queue_id, "region_id": region_id,
           "topic_id": topic_id, "opened_at": at(opened), "updated_at": at(opened)}
    for key, value in times.items():
        row[key] = at(value) if isinstance(value, str) else value
    return row


APPEALS: list[Row] = [
    appeal(1, 1, "call", 1, 1, 2, "resolved", "09:00:00", first_response_at="09:05:00",
           resolved_at="10:00:00"),
    # a repeat of appeal 1 (same customer and topic) through another channel: linked
    appeal(2, 1, "chat", 2, 1, 2, "linked", "09:30:00", linked_appeal_id=1),
    appeal(3, 2, "email", 2, 2, 3, "in_progress", "09:10:00", first_response_at="09:40:00",
           reopened_count=1),
    appeal(4, 3, "call", 1, 2, 1, "closed", "10:05:00", first_response_at="10:06:00",
           resolved_at="10:35:00", closed_at="11:00:00"),
    # customer 2 again, another topic: a repeat contact, not a linked duplicate
    appeal(5, 2, "whatsapp", 2, 2, 1, "open", "10:50:00"),
]
DELETED_APPEALS: list[Row] = [appeal(6, 3, "chat", 2, 1, 1, "open", "09:45:00")]


def ticket(ticket_id: int, appeal_id: int, ticket_type: str, topic_id: int, region_id: int,
           group_id: int, assignee_id: int, status: str, created: str, due: str,
           updated: str, **extra: Any) -> Row:
    row = {"ticket_id": ticket_id, "appeal_id": appeal_id, "ticket_type": ticket_type,
           "topic_id": topic_id, "region_id": region_id, "group_id": group_id,
           "assignee_id": assignee_id, "status": status, "sla_due_at": at(due),
           "sla_remind_at": at(due) - timedelta(hours=1), "created_at": at(created),
           "updated_at": at(updated)}
    for key, value in extra.items():
        row[key] = at(value) if isinstance(value, str) else value
    return row


TICKETS: list[Row] = [
    ticket(1, 1, "task", 2, 1, 1, 10, "resolved", "09:05:00", "13:00:00", "09:55:00",
           resolved_at="09:55:00"),
    # a claim reassigned billing -> tech, reopened once, still open after its 10:40 deadline
    ticket(2, 3, "claim", 3, 2, 2, 20, "in_progress", "09:40:00", "10:40:00", "10:10:00",
           reopened_count=1),
    # resolved at 10:30, after its 10:20 deadline
    ticket(3, 4, "claim", 1, 2, 2, 20, "closed", "10:10:00", "10:20:00", "10:50:00",
           resolved_at="10:30:00", closed_at="10:50:00"),
]


def history(history_id: int, ticket_id: int, seq: int, event: str, when: str,
            **change: Any) -> Row:
    return {"history_id": history_id, "ticket_id": ticket_id, "seq": seq, "event": event,
            "at": at(when), **change}


TICKET_HISTORY: list[Row] = [
    history(1, 1, 1, "created", "09:05:00", to_group_id=1),
    history(2, 1, 2, "assigned", "09:06:00", to_group_id=1, to_assignee_id=10),
    history(3, 1, 3, "status", "09:55:00", from_status="in_progress", to_status="resolved"),
    history(4, 2, 1, "created", "09:40:00", to_group_id=1),
    history(5, 2, 2, "assigned", "09:41:00", to_group_id=1, to_assignee_id=10),
    history(6, 2, 3, "assigned", "10:10:00", from_group_id=1, to_group_id=2,
            from_assignee_id=10, to_assignee_id=20),
    history(7, 3, 1, "created", "10:10:00", to_group_id=2),
    history(8, 3, 2, "assigned", "10:11:00", to_group_id=2, to_assignee_id=20),
    history(9, 3, 3, "status", "10:30:00", from_status="in_progress", to_status="resolved"),
]

ACTIVITY: dict[str, list[Row]] = {
    "dialer__call_attempts": CALL_ATTEMPTS,
    "dialer__operator_status_log": OPERATOR_STATUS_LOG,
    "dialer__callbacks": CALLBACKS,
    "dialer__icp_steps": ICP_STEPS,
    "dialer__hopper_ticks": HOPPER_TICKS,
    "crm__appeals": APPEALS,
    "crm__tickets": TICKETS,
    "crm__ticket_history": TICKET_HISTORY,
}


def load_day(conn: psycopg.Connection[Any]) -> None:
    """The whole day as first exported: attempt 10 still in conversation."""
    for table, rows in REFERENCE.items():
        upsert(conn, table, rows, REFERENCE_TS, REFERENCE_TS + timedelta(seconds=5))
    for table, rows in ACTIVITY.items():
        upsert(conn, table, rows, ACTIVITY_TS, ACTIVITY_TS + timedelta(seconds=2))
    upsert(conn, "crm__appeals", DELETED_APPEALS, ACTIVITY_TS,
           ACTIVITY_TS + timedelta(seconds=2), deleted=True)
    upsert(conn, "dialer__call_attempts", [LATE_ATTEMPT_BEFORE], at("09:56:00"),
           at("09:56:01"))


def apply_late_update(conn: psycopg.Connection[Any]) -> None:
    upsert(conn, "dialer__call_attempts", [LATE_ATTEMPT_AFTER], LATE_TS, LATE_EXPORTED)
