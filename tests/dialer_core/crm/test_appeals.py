"""Appeals: one customer identity across channels, repeat linking within/outside the window,
reopen, and the dialer's record_call entry point."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dialer_core.crm import appeals
from dialer_core.crm.errors import Conflict, NotFound, ValidationError
from dialer_core.crm.settings import CrmSettings

from .conftest import rows, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 16, 7)
APPEAL_COLS = ("SELECT appeal_id, customer_id, contact_id, channel, status, queue_id, region_id, "
               "topic_id, linked_appeal_id, opened_at FROM appeals ORDER BY appeal_id")


def new(conn: psycopg.Connection[Any], channel: str, address: str, topic: int, at: Any,
        **kw: Any) -> appeals.Appeal:
    return appeals.create(conn, channel=channel, address=address, topic_id=topic, queue_id=2,
                          at=at, **kw)


def test_first_appeal_creates_customer_contact_and_region_from_store(
        conn: psycopg.Connection[Any]) -> None:
    a = new(conn, "whatsapp", "8 (912) 345-67-89", 2, T0, full_name="Ivan", store_id=200)
    assert (a.status, a.linked_appeal_id, a.created) == ("open", None, True)
    assert rows(conn, "SELECT customer_id, phone, full_name, store_id FROM customers") == [
        (a.customer_id, "+79123456789", "Ivan", 200)]
    assert rows(conn, "SELECT customer_id, channel, address FROM contacts") == [
        (a.customer_id, "whatsapp", "+79123456789")]
    assert rows(conn, APPEAL_COLS) == [
        (a.appeal_id, a.customer_id, 1, "whatsapp", "open", 2, 2, 2, None, T0)]


def test_repeat_on_same_topic_through_other_channels_is_linked_to_the_first(
        conn: psycopg.Connection[Any]) -> None:
    first = new(conn, "call", "+7 912 345 67 89", 2, T0)
    by_viber = new(conn, "viber", "89123456789", 2, T0 + timedelta(hours=5))
    by_web = new(conn, "web", "account-77", 2, T0 + timedelta(days=2), phone="9123456789")
    other_topic = new(conn, "call", "+79123456789", 4, T0 + timedelta(days=3))
    assert {first.customer_id, by_viber.customer_id, by_web.customer_id,
            other_topic.customer_id} == {first.customer_id}
    cid = first.customer_id
    assert rows(conn, APPEAL_COLS) == [
        (first.appeal_id, cid, 1, "call", "open", 2, None, 2, None, T0),
        (by_viber.appeal_id, cid, 2, "viber", "linked", 2, None, 2, first.appeal_id,
         T0 + timedelta(hours=5)),
        (by_web.appeal_id, cid, 3, "web", "linked", 2, None, 2, first.appeal_id,
         T0 + timedelta(days=2)),
        (other_topic.appeal_id, cid, 1, "call", "open", 2, None, 4, None,
         T0 + timedelta(days=3)),
    ]


def test_repeat_outside_the_window_is_a_new_case(conn: psycopg.Connection[Any]) -> None:
    settings = CrmSettings(repeat_window=timedelta(hours=24))
    first = new(conn, "email", "Ann@Example.com", 4, T0, settings=settings)
    inside = new(conn, "chat", "chat-ann", 4, T0 + timedelta(hours=23), settings=settings,
                 phone=None)
    # chat-ann has no phone, so it is a different customer: not linked
    assert inside.customer_id != first.customer_id
    again = new(conn, "email", "ann@example.com", 4, T0 + timedelta(hours=23, minutes=59),
                settings=settings)
    later = new(conn, "email", "ann@example.com", 4, T0 + timedelta(hours=24), settings=settings)
    after_later = new(conn, "email", "ann@example.com", 4, T0 + timedelta(hours=30),
                      settings=settings)
    assert [(a.status, a.linked_appeal_id) for a in (first, inside, again, later, after_later)] \
        == [("open", None), ("open", None), ("linked", first.appeal_id), ("open", None),
            ("linked", later.appeal_id)]


def test_repeat_reopens_a_resolved_case_but_not_a_closed_one(
        conn: psycopg.Connection[Any]) -> None:
    first = new(conn, "call", "+79990000001", 2, T0)
    appeals.set_status(conn, first.appeal_id, "resolved", T0 + timedelta(hours=1))
    new(conn, "telegram", "@tg1", 2, T0 + timedelta(hours=2), phone="+79990000001")
    assert rows(conn, "SELECT status, resolved_at, reopened_count, updated_at FROM appeals "
                      "WHERE appeal_id = %s", first.appeal_id) == [
        ("in_progress", None, 1, T0 + timedelta(hours=2))]
    appeals.set_status(conn, first.appeal_id, "closed", T0 + timedelta(hours=3))
    new(conn, "chat", "chat-1", 2, T0 + timedelta(hours=4), phone="+79990000001")
    assert rows(conn, "SELECT status, closed_at, reopened_count FROM appeals "
                      "WHERE appeal_id = %s", first.appeal_id) == [
        ("closed", T0 + timedelta(hours=3), 1)]


def test_explicit_reopen_and_invalid_transitions(conn: psycopg.Connection[Any]) -> None:
    a = new(conn, "chat", "c-1", 1, T0)
    with pytest.raises(Conflict):
        appeals.reopen(conn, a.appeal_id, T0)
    appeals.set_status(conn, a.appeal_id, "closed", T0 + timedelta(minutes=5))
    with pytest.raises(Conflict):
        appeals.set_status(conn, a.appeal_id, "resolved", T0 + timedelta(minutes=6))
    appeals.reopen(conn, a.appeal_id, T0 + timedelta(minutes=7))
    assert rows(conn, "SELECT status, closed_at, reopened_count FROM appeals") == [
        ("in_progress", None, 1)]
    with pytest.raises(NotFound):
        appeals.reopen(conn, 999, T0)


@pytest.mark.parametrize(("kw", "field"), [
    ({"channel": "fax", "address": "x"}, "channel"),
    ({"channel": "call", "address": "12"}, "phone"),
    ({"channel": "email", "address": "nobody"}, "address"),
    ({"channel": "chat", "address": "c", "topic_id": 99}, "topic_id"),
    ({"channel": "chat", "address": "c", "queue_id": 99}, "queue_id"),
    ({"channel": "chat", "address": "c", "store_id": 99}, "store_id"),
])
def test_invalid_appeals_write_nothing(conn: psycopg.Connection[Any], kw: dict[str, Any],
                                       field: str) -> None:
    args: dict[str, Any] = {"topic_id": 1, "queue_id": 1, "at": T0} | kw
    with pytest.raises(ValidationError) as err:
        appeals.create(conn, **args)
    assert err.value.field == field
    assert rows(conn, "SELECT count(*) FROM customers") == [(0,)]
    assert rows(conn, "SELECT count(*) FROM appeals") == [(0,)]


def test_record_call_creates_then_updates_one_appeal(conn: psycopg.Connection[Any]) -> None:
    started = appeals.record_call(conn, "8-912-000-11-22", call_id="cdr-1", at=T0)
    answered = appeals.record_call(conn, "+79120001122", call_id="cdr-1", at=T0,
                                   answered_at=T0 + timedelta(seconds=12), operator_id=1)
    assert answered.appeal_id == started.appeal_id and not answered.created
    assert rows(conn, "SELECT channel, status, queue_id, topic_id, operator_id, external_ref, "
                      "opened_at, first_response_at FROM appeals") == [
        ("call", "in_progress", 1, 1, 1, "dialer:cdr-1", T0, T0 + timedelta(seconds=12))]
    assert rows(conn, "SELECT phone FROM customers") == [("+79120001122",)]
    # a second call of the same customer on the same topic is a linked repeat
    repeat = appeals.record_call(conn, "+79120001122", call_id="cdr-2",
                                 at=T0 + timedelta(hours=1))
    assert (repeat.status, repeat.linked_appeal_id) == ("linked", started.appeal_id)
