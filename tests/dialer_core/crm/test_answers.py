"""Answers go out through the channel of origin, to the contact the appeal came from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dialer_core.crm import answers, appeals
from dialer_core.crm.errors import Conflict, ValidationError

from .conftest import rows, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 16, 7)


def test_answer_uses_channel_and_address_of_origin(conn: psycopg.Connection[Any]) -> None:
    first = appeals.create(conn, channel="telegram", address="@ivan", topic_id=2, queue_id=2,
                           at=T0, phone="+79120000001")
    repeat = appeals.create(conn, channel="email", address="ivan@example.com", topic_id=2,
                            queue_id=2, at=T0 + timedelta(minutes=5), phone="+79120000001")
    answers.send(conn, first.appeal_id, "Hello on Telegram", T0 + timedelta(minutes=10),
                 employee_id=1)
    answers.send(conn, repeat.appeal_id, "Hello by mail", T0 + timedelta(minutes=11),
                 employee_id=1)
    assert rows(conn, "SELECT appeal_id, channel, address, employee_id, body, status FROM "
                      "answers ORDER BY answer_id") == [
        (first.appeal_id, "telegram", "@ivan", 1, "Hello on Telegram", "queued"),
        (repeat.appeal_id, "email", "ivan@example.com", 1, "Hello by mail", "queued")]
    assert rows(conn, "SELECT status, first_response_at FROM appeals ORDER BY appeal_id") == [
        ("in_progress", T0 + timedelta(minutes=10)), ("linked", T0 + timedelta(minutes=11))]

    sent: list[tuple[str, str]] = []
    senders = {
        "telegram": lambda a: sent.append(("telegram", a["address"])),
        "email": lambda a: (_ for _ in ()).throw(OSError("smtp down")),
    }
    at = T0 + timedelta(minutes=12)
    done = answers.dispatch(conn, senders, at)
    assert [(d["channel"], d["status"], d["sent_at"]) for d in done] == [
        ("telegram", "sent", at), ("email", "failed", None)]
    assert sent == [("telegram", "@ivan")]


def test_database_refuses_an_answer_through_another_channel(
        conn: psycopg.Connection[Any]) -> None:
    a = appeals.create(conn, channel="viber", address="+79120000002", topic_id=1, queue_id=2,
                       at=T0)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO answers (appeal_id, channel, address, body, status, "
                     "created_at) VALUES (%s, 'email', 'x@y', 'b', 'queued', %s)",
                     (a.appeal_id, T0))


def test_first_response_is_kept_and_closed_appeals_refuse_answers(
        conn: psycopg.Connection[Any]) -> None:
    a = appeals.create(conn, channel="chat", address="c-9", topic_id=1, queue_id=2, at=T0)
    answers.send(conn, a.appeal_id, "one", T0 + timedelta(minutes=1))
    answers.send(conn, a.appeal_id, "two", T0 + timedelta(minutes=2))
    assert rows(conn, "SELECT first_response_at FROM appeals") == [(T0 + timedelta(minutes=1),)]
    with pytest.raises(ValidationError):
        answers.send(conn, a.appeal_id, "  ", T0)
    appeals.set_status(conn, a.appeal_id, "closed", T0 + timedelta(minutes=3))
    with pytest.raises(Conflict):
        answers.send(conn, a.appeal_id, "three", T0 + timedelta(minutes=4))
    assert rows(conn, "SELECT count(*) FROM answers") == [(2,)]
