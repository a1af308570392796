"""The HTTP JSON API end to end over a real socket: happy path and clear 4xx errors."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dialer_core.clock import ManualClock
from dialer_core.crm.api import CrmApi, make_server

from .conftest import utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 16, 7)


class Client:
    def __init__(self, base: str, clock: ManualClock) -> None:
        self.base = base
        self.clock = clock

    def call(self, method: str, path: str, body: Any = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())


@pytest.fixture
def client(crm_dsn: str) -> Iterator[Client]:
    clock = ManualClock(T0)
    server = make_server(CrmApi(crm_dsn, clock))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Client(f"http://{host}:{port}", clock)
    finally:
        server.shutdown()
        server.server_close()


def test_appeal_answer_ticket_lifecycle(client: Client) -> None:
    status, appeal = client.call("POST", "/appeals", {
        "channel": "whatsapp", "address": "+7 912 111 22 33", "topic_id": 3, "queue_id": 2,
        "store_id": 100, "subject": "refund"})
    assert status == 201
    assert (appeal["channel"], appeal["status"], appeal["region_id"], appeal["opened_at"]) == (
        "whatsapp", "open", 1, "2026-11-16T07:00:00+00:00")
    aid = appeal["appeal_id"]

    client.clock.advance(60)
    status, answer = client.call("POST", f"/appeals/{aid}/answers",
                                 {"body": "We are on it", "employee_id": 1})
    assert status == 201
    assert (answer["channel"], answer["address"], answer["status"]) == (
        "whatsapp", "+79121112233", "queued")

    status, ticket = client.call("POST", "/tickets", {"appeal_id": aid, "ticket_type": "claim",
                                                      "actor_id": 1})
    assert status == 201 and ticket["group_id"] == 1 and ticket["status"] == "open"
    tid = ticket["ticket_id"]
    assert client.call("POST", f"/tickets/{tid}/assign", {"assignee_id": 10, "actor_id": 2}
                       )[1]["status"] == "in_progress"
    client.clock.advance(3600)
    status, closed = client.call("POST", f"/tickets/{tid}/close", {"actor_id": 10})
    assert (status, closed["status"], closed["closed_at"]) == (
        200, "closed", (T0 + timedelta(seconds=3660)).isoformat())
    status, full = client.call("GET", f"/tickets/{tid}")
    assert [(h["seq"], h["event"], h["to_status"]) for h in full["history"]] == [
        (1, "created", "open"), (2, "assigned", None), (3, "status", "in_progress"),
        (4, "status", "closed")]
    status, got = client.call("GET", f"/appeals/{aid}")
    assert status == 200 and got["first_response_at"] == "2026-11-16T07:01:00+00:00"
    assert [a["body"] for a in got["answers"]] == ["We are on it"]
    assert client.call("POST", f"/tickets/{tid}/reopen", {})[1]["reopened_count"] == 1


def test_idempotent_external_ref_returns_200(client: Client) -> None:
    body = {"channel": "call", "address": "+79121112233", "topic_id": 1, "queue_id": 1,
            "external_ref": "dialer:42"}
    first = client.call("POST", "/appeals", body)
    again = client.call("POST", "/appeals", body)
    assert (first[0], again[0]) == (201, 200)
    assert first[1]["appeal_id"] == again[1]["appeal_id"]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("POST", "/appeals", {"channel": "fax", "address": "1", "topic_id": 1, "queue_id": 1},
     400, "channel"),
    ("POST", "/appeals", {"channel": "chat", "address": "c", "topic_id": "1", "queue_id": 1},
     400, "topic_id"),
    ("POST", "/appeals", {"channel": "chat", "address": "c", "queue_id": 1}, 400, "topic_id"),
    ("POST", "/appeals", {"channel": "chat", "address": "c", "topic_id": 1, "queue_id": 1,
                          "colour": "red"}, 400, "colour"),
    ("POST", "/appeals", {"channel": "chat", "address": "c", "topic_id": True, "queue_id": 1},
     400, "topic_id"),
    ("POST", "/appeals", [1, 2], 400, None),
    ("POST", "/appeals/999/answers", {"body": "x"}, 404, None),
    ("POST", "/tickets", {"appeal_id": 999, "ticket_type": "task"}, 404, None),
    ("POST", "/tickets", {"appeal_id": 1, "ticket_type": "bug"}, 400, "ticket_type"),
    ("POST", "/tickets/5/assign", {}, 400, "assignee_id"),
    ("GET", "/tickets/999", None, 404, None),
    ("GET", "/nowhere", None, 404, None),
    ("GET", "/tickets/99999999999999999999", None, 404, None),
    ("DELETE", "/appeals", None, 405, None),
])
def test_validation_errors_are_clear_4xx(client: Client, method: str, path: str, body: Any,
                                         status: int, field: str | None) -> None:
    got_status, reply = client.call(method, path, body)
    assert got_status == status, reply
    assert reply["error"] and reply.get("field") == field


def test_malformed_json_and_state_conflict(client: Client) -> None:
    status, reply = client.call("POST", "/appeals", raw=b"{not json")
    assert status == 400 and "not valid JSON" in reply["error"]
    _, appeal = client.call("POST", "/appeals", {"channel": "chat", "address": "c",
                                                 "topic_id": 1, "queue_id": 2})
    aid = appeal["appeal_id"]
    assert client.call("POST", f"/appeals/{aid}/status", {"status": "closed"})[0] == 200
    status, reply = client.call("POST", f"/appeals/{aid}/answers", {"body": "late"})
    assert status == 409 and reply["kind"] == "Conflict"
    assert client.call("GET", "/health")[0] == 200
    status, reply = client.call("POST", "/appeals", raw=b"{" + b" " * 70_000 + b"}")
    assert status == 413
