"""Outgoing answers, always through the channel the appeal came from.

Answers are an outbox: :func:`send` queues one (and stops the first-response clock) in the
same transaction as the appeal update; :func:`dispatch` hands queued answers to the sender of
their channel and records the outcome. The channel and address are copied from the appeal, and
a foreign key on (appeal_id, channel) makes any other channel impossible even for raw SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm import appeals
from dialer_core.crm.db import all_rows, one, require
from dialer_core.crm.errors import Conflict, ValidationError

Sender = Callable[[dict[str, Any]], None]


def send(conn: psycopg.Connection[Any], appeal_id: int, body: str, at: datetime, *,
         employee_id: int | None = None) -> dict[str, Any]:
    """Queue an answer to an appeal on its channel of origin, to the contact it came from."""
    if not (body or "").strip():
        raise ValidationError("answer body is required", field="body")
    with conn.transaction():
        appeal = require(conn, "SELECT a.appeal_id, a.channel, a.status, c.address "
                               "FROM appeals a JOIN contacts c USING (contact_id) "
                               "WHERE a.appeal_id = %s FOR UPDATE OF a", (appeal_id,),
                         f"appeal {appeal_id}")
        if appeal["status"] == "closed":
            raise Conflict(f"appeal {appeal_id} is closed; reopen it to answer")
        if employee_id is not None and one(conn, "SELECT 1 FROM employees WHERE employee_id "
                                                 "= %s", (employee_id,)) is None:
            raise ValidationError(f"unknown employee {employee_id}", field="employee_id")
        answer = one(conn, """
            INSERT INTO answers (appeal_id, channel, address, employee_id, body, status,
                created_at)
            VALUES (%s, %s, %s, %s, %s, 'queued', %s) RETURNING *""",
                     (appeal_id, appeal["channel"], appeal["address"], employee_id, body, at))
        appeals.mark_first_response(conn, appeal_id, at)
        assert answer is not None
        return answer


def dispatch(conn: psycopg.Connection[Any], senders: Mapping[str, Sender], at: datetime,
             limit: int = 500) -> list[dict[str, Any]]:
    """Deliver queued answers through their channel's sender; returns the rows updated.

    A sender that raises marks the answer failed (kept for retry by an operator) and the rest
    go on. Rows are claimed with SKIP LOCKED so several dispatchers can run side by side.
    """
    done: list[dict[str, Any]] = []
    with conn.transaction():
        queued = all_rows(conn, "SELECT * FROM answers WHERE status = 'queued' "
                                "ORDER BY created_at, answer_id LIMIT %s FOR UPDATE SKIP LOCKED",
                          (limit,))
        for answer in queued:
            sender = senders.get(answer["channel"])
            try:
                if sender is None:
                    raise LookupError(f"no sender for channel {answer['channel']}")
                sender(answer)
                status = "sent"
            except Exception:  # noqa: BLE001 - a channel failure must not stop the others
                status = "failed"
            row = one(conn, "UPDATE answers SET status = %s, sent_at = %s WHERE answer_id = %s "
                            "RETURNING *", (status, at if status == "sent" else None,
                                            answer["answer_id"]))
            assert row is not None
            done.append(row)
    return done
