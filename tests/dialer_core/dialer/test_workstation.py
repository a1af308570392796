"""The operator workstation API over real HTTP: actions, their rows, and 4xx validation."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dialer_core.clock import ManualClock
from dialer_core.dialer import workstation
from dialer_core.dialer.engine import Engine

from .conftest import T0
from .factory import campaign, lead, operator
from .scripted import ScriptedTelephony


@pytest.fixture
def api(db: psycopg.Connection) -> Iterator[tuple[str, dict[str, int]]]:
    c = campaign(db, window_start="00:00", window_end="23:59:59")
    ids = {"campaign": c, "ann": operator(db, "ann", [c]),
           "lead": lead(db, c, T0 + timedelta(days=3))}
    engine = Engine(db, ScriptedTelephony())
    engine.tick(T0)
    server, url = workstation.serve(engine, threading.Lock(), ManualClock(T0))
    yield url, ids
    server.shutdown()


def call(url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    request = urllib.request.Request(url, data=data, method="POST" if data or body == {}
                                     else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_operator_actions_and_their_rows(api, db: psycopg.Connection):  # type: ignore[no-untyped-def]
    url, ids = api
    ann = ids["ann"]
    assert call(f"{url}/operators/{ann}/login", {}) == (200, {"operator_id": ann,
                                                               "status": "ready"})
    assert call(f"{url}/operators/{ann}/pause", {"reason": "lunch"})[1]["status"] == "paused"
    assert call(f"{url}/operators/{ann}/unpause", {})[1]["status"] == "ready"
    assert db.execute("SELECT status, reason FROM operator_status_log ORDER BY log_id"
                      ).fetchall() == [("ready", None), ("paused", "lunch"), ("ready", None)]


def test_callback_create_reschedule_cancel(api, db: psycopg.Connection):  # type: ignore[no-untyped-def]
    url, ids = api
    status, body = call(f"{url}/callbacks", {"lead_id": ids["lead"], "operator_id": ids["ann"],
                                             "agreed_at": "2026-03-02T18:00:00+03:00"})
    assert status == 201
    cb = body["callback_id"]
    assert call(f"{url}/callbacks/{cb}/reschedule",
                {"agreed_at": "2026-03-02T19:00:00+03:00"}) == (200, {"callback_id": cb})
    assert db.execute("SELECT next_call_at, status FROM callbacks").fetchone() == (
        T0.replace(hour=16), "pending")
    assert call(f"{url}/callbacks/{cb}/cancel", {})[0] == 200
    assert call(f"{url}/callbacks/{cb}/cancel", {})[0] == 409


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/operators/{ann}/pause", {}, 422, "'reason' is required"),
    ("/operators/{ann}/unpause", {}, 409, "not paused"),
    ("/operators/999/login", {}, 404, "operator 999 not found"),
    ("/callbacks", {"lead_id": "x", "operator_id": 1, "agreed_at": "2026-03-02T18:00:00Z"},
     422, "'lead_id' must be int"),
    ("/callbacks", {"lead_id": "{lead}", "operator_id": "{ann}",
                    "agreed_at": "2026-03-02T18:00:00"}, 422, "must carry a UTC offset"),
    ("/callbacks", {"lead_id": "{lead}", "operator_id": "{ann}",
                    "agreed_at": "2026-03-01T18:00:00+00:00"}, 422, "is in the past"),
    ("/callbacks", {"lead_id": 123456, "operator_id": "{ann}",
                    "agreed_at": "2026-03-02T18:00:00+00:00"}, 404, "lead 123456 does not"),
    ("/callbacks", [1], 400, "body must be a JSON object"),
    ("/attempts/5/disposition", {"disposition": "maybe"}, 422, "must be one of"),
    ("/attempts/5/disposition", {"disposition": "sale"}, 404, "no connected call attempt 5"),
    ("/nowhere", {}, 404, "no such path"),
])
def test_validation_errors_are_4xx_and_write_nothing(api, db: psycopg.Connection,  # type: ignore[no-untyped-def]
                                                     path, body, status, message):
    url, ids = api
    if isinstance(body, dict):
        body = {k: int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v
                for k, v in body.items()}
    got_status, got = call(url + path.format(**ids), body)
    assert got_status == status and message in got["error"]
    assert db.execute("SELECT (SELECT count(*) FROM callbacks),"
                      " (SELECT count(*) FROM operator_status_log)").fetchone() == (0, 0)


def test_malformed_json_is_400_and_openapi_is_served(api):  # type: ignore[no-untyped-def]
    url, _ = api
    assert call(f"{url}/callbacks", raw=b"{nope")[0] == 400
    status, doc = call(f"{url}/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.") and "/callbacks" in doc["paths"]
