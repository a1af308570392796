"""SLA reminders fire once per deadline, to the assignee or the whole group."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dialer_core.crm import appeals, reminders, tickets

from .conftest import rows, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 16, 7)  # Mon 10:00 MSK; task due 18:00 MSK, reminder at 17:00 MSK


def test_reminder_once_per_deadline(conn: psycopg.Connection[Any]) -> None:
    a = appeals.create(conn, channel="chat", address="c", topic_id=2, queue_id=2, at=T0,
                       region_id=1).appeal_id
    assigned = tickets.create(conn, appeal_id=a, ticket_type="task", at=T0, assignee_id=10)
    unassigned = tickets.create(conn, appeal_id=a, ticket_type="task",
                                at=T0 + timedelta(minutes=30))
    assert reminders.send_due(conn, utc(2026, 11, 16, 13, 59)) == []
    first = reminders.send_due(conn, utc(2026, 11, 16, 14))
    assert [(r["ticket_id"], r["employee_id"], r["group_id"], r["sla_due_at"]) for r in first] \
        == [(assigned["ticket_id"], 10, 1, utc(2026, 11, 16, 15))]
    second = reminders.send_due(conn, utc(2026, 11, 16, 14, 30))
    assert [(r["ticket_id"], r["employee_id"]) for r in second] == [
        (unassigned["ticket_id"], None)]
    assert reminders.send_due(conn, utc(2026, 11, 16, 15)) == []
    # resolved tickets are not reminded; a reopened one gets a reminder for its new deadline
    tickets.set_status(conn, assigned["ticket_id"], "resolved", utc(2026, 11, 16, 14, 40))
    tickets.reopen(conn, assigned["ticket_id"], utc(2026, 11, 17, 6))  # Tue 09:00 MSK
    again = reminders.send_due(conn, utc(2026, 11, 17, 14))
    assert [(r["ticket_id"], r["sla_due_at"]) for r in again] == [
        (assigned["ticket_id"], utc(2026, 11, 17, 14))]
    assert rows(conn, "SELECT count(*) FROM sla_reminders") == [(3,)]
