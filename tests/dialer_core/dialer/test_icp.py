"""ICP against real local HTTP servers: the reference endpoint, and a misbehaving one that is
slow, fails with 500, answers invalid JSON or an invalid instruction."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from dialer_core.dialer import icp_reference
from dialer_core.dialer.icp import IcpSettings, record, routed_to, run_session

from .conftest import T0

FALLBACK = ({"action": "route", "queue": "inbound"},)


class _Bad(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(1.0)
            body, status = b'{"action": "hangup"}', 200
        elif path == "/error":
            body, status = b"boom", 500
        elif path == "/garbage":
            body, status = b"{not json", 200
        else:
            body, status = b'{"action": "dance"}', 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def bad_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bad)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    server, url = icp_reference.serve()
    yield url
    server.shutdown()


def test_default_timeout_is_3_seconds():
    assert IcpSettings(endpoint=None).timeout_s == 3.0


def test_reference_endpoint_menu(reference: str, db: psycopg.Connection):
    settings = IcpSettings(reference, fallback=FALLBACK)
    steps = run_session(settings, 41, T0, "+74951234567", "+78001000000", lambda _: "2")
    assert [(s.seq, s.input_result, s.http_status, s.action, s.fallback, s.error, s.response)
            for s in steps] == [
        (1, "", 200, "say", False, None, {"action": "say", "text": "Welcome to the store."}),
        (2, "ok", 200, "collect", False, None,
         {"action": "collect", "max_digits": 1,
          "prompt": "Press 1 for your order, 2 for a return."}),
        (3, "2", 200, "route", False, None, {"action": "route", "queue": "returns"})]
    assert routed_to(steps) == "queue:returns"
    record(db, 41, T0, steps)
    assert db.execute("SELECT attempt_id, seq, input_result, http_status, action, fallback,"
                      " response FROM icp_steps ORDER BY seq").fetchall() == [
        (41, 1, "", 200, "say", False, steps[0].response),
        (41, 2, "ok", 200, "collect", False, steps[1].response),
        (41, 3, "2", 200, "route", False, steps[2].response)]


def test_reference_routes_couriers_by_caller_number(reference: str):
    steps = run_session(IcpSettings(reference), 1, T0, "+79005551234", "+78001000000",
                        lambda _: "")
    assert routed_to(steps) == "queue:couriers" and len(steps) == 1


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/slow", None, "timeout"),
    ("/error", 500, "HTTP 500"),
    ("/garbage", 200, "invalid JSON"),
    ("/dance", 200, "invalid instruction: unknown action 'dance'"),
])
def test_failures_fall_back_and_are_recorded(bad_server: str, db: psycopg.Connection,
                                             path: str, status: int | None, error: str):
    settings = IcpSettings(bad_server + path, timeout_s=0.3, fallback=FALLBACK)
    started = time.perf_counter()
    steps = run_session(settings, 7, T0, "+74951234567", "+78001000000", lambda _: "1")
    assert time.perf_counter() - started < 0.9          # the slow endpoint was not waited for
    assert [(s.seq, s.http_status, s.action, s.fallback) for s in steps] == [
        (1, status, "fallback", True), (2, None, "route", True)]
    assert steps[0].error is not None and steps[0].error.startswith(error)
    assert routed_to(steps) == "queue:inbound"
    record(db, 7, T0, steps)
    rows = db.execute("SELECT seq, http_status, action, fallback, error, response"
                      " FROM icp_steps ORDER BY seq").fetchall()
    assert rows == [(1, status, "fallback", True, steps[0].error,
                     None if path != "/dance" else {"action": "dance"}),
                    (2, None, "route", True, None, {"action": "route", "queue": "inbound"})]


def test_unreachable_endpoint_falls_back(db: psycopg.Connection):
    steps = run_session(IcpSettings("http://127.0.0.1:9/icp", timeout_s=0.5, fallback=FALLBACK),
                        8, T0, "+7", "+8", lambda _: "")
    assert [(s.action, s.fallback) for s in steps] == [("fallback", True), ("route", True)]
    assert json.dumps(steps[1].response) == '{"action": "route", "queue": "inbound"}'
