"""Tickets: routing by topic to groups, SLA due by type on the region's calendar,
reassignment with a complete ordered history, close and reopen."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dialer_core.crm import appeals, routing, tickets
from dialer_core.crm.errors import Conflict, NotFound, ValidationError

from .conftest import rows, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 20, 14)  # Friday 17:00 Moscow, Saturday 00:00 Vladivostok


def appeal(conn: psycopg.Connection[Any], topic: int, region: int | None = None) -> int:
    return appeals.create(conn, channel="chat", address=f"chat-{topic}-{region}",
                          topic_id=topic, queue_id=2, at=T0, region_id=region).appeal_id


HISTORY = ("SELECT seq, event, from_group_id, to_group_id, from_assignee_id, to_assignee_id, "
           "from_status, to_status, actor_id, at FROM ticket_history WHERE ticket_id = %s "
           "ORDER BY seq")


@pytest.mark.parametrize(("topic", "region", "group"), [
    (1, None, 4),   # own route
    (2, 1, 1),      # own route
    (3, 1, 1),      # refund -> parent billing's route
    (4, 1, 2),      # generic internet route
    (4, 2, 3),      # regional route beats the generic one
    (5, 2, 3),      # outage -> parent internet, regional
    (5, 3, 2),      # outage -> parent internet, generic
])
def test_routing_by_topic_tree_and_region(conn: psycopg.Connection[Any], topic: int,
                                          region: int | None, group: int) -> None:
    assert routing.route_group(conn, topic, region) == group


def test_unrouted_topic_is_a_validation_error_and_writes_nothing(
        conn: psycopg.Connection[Any]) -> None:
    a = appeal(conn, 6, 1)
    with pytest.raises(ValidationError, match="no route"):
        tickets.create(conn, appeal_id=a, ticket_type="task", at=T0)
    assert rows(conn, "SELECT count(*) FROM tickets") == [(0,)]


def test_ticket_is_routed_and_gets_sla_by_type_on_region_calendar(
        conn: psycopg.Connection[Any]) -> None:
    moscow = appeal(conn, 3, 1)
    far_east = appeal(conn, 5, 2)
    task = tickets.create(conn, appeal_id=moscow, ticket_type="task", at=T0, actor_id=1)
    claim = tickets.create(conn, appeal_id=far_east, ticket_type="claim", at=T0, actor_id=1)
    assert rows(conn, "SELECT ticket_id, appeal_id, ticket_type, topic_id, region_id, group_id, "
                      "assignee_id, status, sla_due_at, sla_remind_at FROM tickets "
                      "ORDER BY ticket_id") == [
        # Moscow task, 480 business min from Fri 17:00: 60 Fri + 420 Mon -> Mon 16:00 MSK;
        # reminder with 60 left: Mon 15:00 MSK
        (task["ticket_id"], moscow, "task", 3, 1, 1, None, "open",
         utc(2026, 11, 23, 13), utc(2026, 11, 23, 12)),
        # Vladivostok claim from Sat 00:00 local: 960 min = Mon 9 h + Tue 7 h -> Tue 16:00 VVO
        (claim["ticket_id"], far_east, "claim", 5, 2, 3, None, "open",
         utc(2026, 11, 24, 6), utc(2026, 11, 24, 4)),
    ]
    assert rows(conn, HISTORY, task["ticket_id"]) == [
        (1, "created", None, 1, None, None, None, "open", 1, T0)]


def test_sla_skips_holiday(conn: psycopg.Connection[Any]) -> None:
    a = appeal(conn, 2, 1)
    at = utc(2026, 11, 3, 14)  # Tue 17:00 MSK; Wed 11-04 holiday
    t = tickets.create(conn, appeal_id=a, ticket_type="task", at=at)
    assert t["sla_due_at"] == utc(2026, 11, 5, 13)  # 60 Tue + 420 Thu -> Thu 16:00 MSK


def test_reassignment_history_is_complete_and_ordered(conn: psycopg.Connection[Any]) -> None:
    t = tickets.create(conn, appeal_id=appeal(conn, 2, 1), ticket_type="task", at=T0,
                       assignee_id=10, actor_id=2)
    tid = t["ticket_id"]
    m = [T0 + timedelta(minutes=n) for n in range(10)]
    tickets.assign(conn, tid, m[1], assignee_id=11, actor_id=2)          # same group, new person
    tickets.assign(conn, tid, m[2], group_id=2, actor_id=2)              # to tech's queue
    tickets.assign(conn, tid, m[3], assignee_id=21, actor_id=2)          # a tech engineer
    tickets.assign(conn, tid, m[4], assignee_id=21, actor_id=2)          # no change: no row
    tickets.set_status(conn, tid, "resolved", m[5], actor_id=21)
    tickets.close(conn, tid, m[6], actor_id=2)
    assert rows(conn, HISTORY, tid) == [
        (1, "created", None, 1, None, None, None, "open", 2, T0),
        (2, "assigned", 1, 1, None, 10, None, None, 2, T0),
        (3, "status", None, None, None, None, "open", "in_progress", 2, T0),
        (4, "assigned", 1, 1, 10, 11, None, None, 2, m[1]),
        (5, "assigned", 1, 2, 11, None, None, None, 2, m[2]),
        (6, "status", None, None, None, None, "in_progress", "open", 2, m[2]),
        (7, "assigned", 2, 2, None, 21, None, None, 2, m[3]),
        (8, "status", None, None, None, None, "open", "in_progress", 2, m[3]),
        (9, "status", None, None, None, None, "in_progress", "resolved", 21, m[5]),
        (10, "status", None, None, None, None, "resolved", "closed", 2, m[6]),
    ]
    assert rows(conn, "SELECT group_id, assignee_id, status, resolved_at, closed_at FROM tickets"
                ) == [(2, 21, "closed", m[5], m[6])]


def test_assignment_rules(conn: psycopg.Connection[Any]) -> None:
    tid = tickets.create(conn, appeal_id=appeal(conn, 2, 1), ticket_type="task",
                         at=T0)["ticket_id"]
    for kw, field in [({"assignee_id": 40}, "assignee_id"),       # inactive
                      ({"assignee_id": 1}, "assignee_id"),        # operator: no group
                      ({"assignee_id": 10, "group_id": 2}, "assignee_id"),
                      ({"group_id": 99}, "group_id"),
                      ({"assignee_id": 999}, "assignee_id"),
                      ({}, "assignee_id")]:
        with pytest.raises(ValidationError) as err:
            tickets.assign(conn, tid, T0, **kw)
        assert err.value.field == field
    with pytest.raises(NotFound):
        tickets.assign(conn, 999, T0, assignee_id=10)
    assert rows(conn, "SELECT count(*) FROM ticket_history") == [(1,)]


def test_reopen_gives_a_new_sla_and_keeps_the_assignee(conn: psycopg.Connection[Any]) -> None:
    tid = tickets.create(conn, appeal_id=appeal(conn, 2, 1), ticket_type="task", at=T0,
                         assignee_id=10)["ticket_id"]
    with pytest.raises(Conflict):
        tickets.reopen(conn, tid, T0)
    tickets.close(conn, tid, T0 + timedelta(hours=1), actor_id=10)
    with pytest.raises(Conflict, match="reopen"):
        tickets.assign(conn, tid, T0, assignee_id=11)
    with pytest.raises(Conflict, match="reopen it instead"):
        tickets.set_status(conn, tid, "in_progress", T0)
    reopened_at = utc(2026, 11, 24, 7)  # Tue 10:00 MSK
    tickets.reopen(conn, tid, reopened_at, actor_id=2)
    assert rows(conn, "SELECT status, assignee_id, reopened_count, closed_at, sla_due_at, "
                      "reminded_at FROM tickets") == [
        ("in_progress", 10, 1, None, utc(2026, 11, 24, 15), None)]  # Tue 18:00 MSK
    assert rows(conn, "SELECT seq, event, from_status, to_status, actor_id, note FROM "
                      "ticket_history ORDER BY seq")[-2:] == [
        (4, "status", "in_progress", "closed", 10, ""),
        (5, "status", "closed", "in_progress", 2, "reopened")]


def test_unknown_ticket_type(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(ValidationError) as err:
        tickets.create(conn, appeal_id=appeal(conn, 2, 1), ticket_type="incident", at=T0)
    assert err.value.field == "ticket_type"
