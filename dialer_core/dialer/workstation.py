"""The operator workstation API: HTTP + JSON on the stdlib server (aiohttp is not installed).

Every request goes through the running engine under its lock, so the engine's in-memory view of
operators never disagrees with the rows. Validation errors are 4xx with a message saying what is
wrong: 400 malformed JSON or body, 404 unknown path or id, 409 the current state forbids it,
422 a value is invalid. Each action is one transaction: nothing is half-written.

Routes (also served as an OpenAPI document at ``GET /openapi.json``):

- ``POST /operators/{id}/login|logout|unpause`` and ``POST /operators/{id}/pause``
  ``{"reason": "..."}``
- ``POST /callbacks`` ``{"lead_id", "operator_id", "agreed_at"}`` (ISO 8601 with an offset)
- ``POST /callbacks/{id}/reschedule`` ``{"agreed_at"}``, ``POST /callbacks/{id}/cancel``
- ``POST /attempts/{id}/disposition`` ``{"disposition": "..."}``
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dialer_core.clock import Clock
from dialer_core.dialer.callbacks import CallbackError, cancel_callback, create_callback
from dialer_core.dialer.engine import Engine
from dialer_core.dialer.operators import OperatorError
from dialer_core.http_json import JsonHandler

DISPOSITIONS = ("completed", "sale", "refused", "wrong_number", "callback", "do_not_call")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        raise ApiError(422, f"'{name}' is required")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ApiError(422, f"'{name}' must be {kind.__name__}")
    return value


def _moment(body: dict[str, Any], name: str) -> datetime:
    text = _field(body, name, str)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(422, f"'{name}' is not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise ApiError(422, f"'{name}' must carry a UTC offset, e.g. {text}+03:00")
    return value


class Desk:
    """The actions, independent of HTTP (the handler only parses and maps errors)."""

    def __init__(self, engine: Engine, lock: threading.Lock, clock: Clock) -> None:
        self.engine, self.lock, self.clock = engine, lock, clock

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def operator(self, operator_id: int, action: str, body: dict[str, Any]) -> dict[str, Any]:
        reason = _field(body, "reason", str) if action == "pause" else None
        with self.lock:
            if self.engine.conn.execute("SELECT 1 FROM operators WHERE operator_id = %s",
                                        (operator_id,)).fetchone() is None:
                raise ApiError(404, f"operator {operator_id} not found")
            status = self.engine.operator_action(operator_id, action, self._now(), reason)
        return {"operator_id": operator_id, "status": status}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        lead_id, op = _field(body, "lead_id", int), _field(body, "operator_id", int)
        agreed = _moment(body, "agreed_at")
        with self.lock:
            self.engine.writer.flush()
            callback_id = create_callback(self.engine.conn, lead_id, op, agreed, self._now())
        return {"callback_id": callback_id}

    def reschedule(self, callback_id: int, body: dict[str, Any]) -> dict[str, Any]:
        agreed = _moment(body, "agreed_at")
        with self.lock:
            row = self.engine.conn.execute(
                "SELECT lead_id, assigned_operator_id, status FROM callbacks"
                " WHERE callback_id = %s", (callback_id,)).fetchone()
            if row is None:
                raise ApiError(404, f"callback {callback_id} not found")
            if row[2] != "pending" or row[0] is None or row[1] is None:
                raise ApiError(409, f"callback {callback_id} is {row[2]}, not reschedulable")
            self.engine.writer.flush()
            create_callback(self.engine.conn, row[0], row[1], agreed, self._now())
        return {"callback_id": callback_id}

    def cancel(self, callback_id: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.engine.writer.flush()
            cancel_callback(self.engine.conn, callback_id, self._now())
        return {"callback_id": callback_id, "status": "cancelled"}

    def disposition(self, attempt_id: int, body: dict[str, Any]) -> dict[str, Any]:
        value = _field(body, "disposition", str)
        if value not in DISPOSITIONS:
            raise ApiError(422, f"'disposition' must be one of {', '.join(DISPOSITIONS)}")
        with self.lock:
            self.engine.writer.flush()
            row = self.engine.conn.execute(
                "UPDATE call_attempts SET disposition = %s, updated_at = %s"
                " WHERE attempt_id = %s AND connected_at IS NOT NULL RETURNING attempt_id",
                (value, self._now(), attempt_id)).fetchone()
            if row is None:
                raise ApiError(404, f"no connected call attempt {attempt_id}")
        return {"attempt_id": attempt_id, "disposition": value}


_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/operators/(\d+)/(login|logout|pause|unpause)$"), "operator"),
    (re.compile(r"^/callbacks$"), "create"),
    (re.compile(r"^/callbacks/(\d+)/reschedule$"), "reschedule"),
    (re.compile(r"^/callbacks/(\d+)/cancel$"), "cancel"),
    (re.compile(r"^/attempts/(\d+)/disposition$"), "disposition"),
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Contour operator workstation API", "version": "1"},
    "paths": {
        "/operators/{id}/{action}": {"post": {
            "summary": "login, logout, pause (body: reason), unpause",
            "responses": {"200": {"description": "new status"},
                          "404": {"description": "unknown operator"},
                          "409": {"description": "state forbids it"},
                          "422": {"description": "invalid body"}}}},
        "/callbacks": {"post": {"summary": "create a callback (lead_id, operator_id, agreed_at)",
                                "responses": {"201": {"description": "created"}}}},
        "/callbacks/{id}/reschedule": {"post": {"summary": "move to agreed_at",
                                                "responses": {"200": {"description": "ok"}}}},
        "/callbacks/{id}/cancel": {"post": {"summary": "cancel a pending callback",
                                            "responses": {"200": {"description": "ok"}}}},
        "/attempts/{id}/disposition": {"post": {"summary": "set the call's disposition",
                                                "responses": {"200": {"description": "ok"}}}},
    },
}


def _handler(desk: Desk) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/openapi.json":
                self._send(200, OPENAPI)
            else:
                self._send(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                self._send(*self._dispatch())
            except ApiError as exc:
                self._send(exc.status, {"error": str(exc)})
            except (OperatorError, CallbackError) as exc:
                self._send(exc.status, {"error": str(exc)})

        def _dispatch(self) -> tuple[int, dict[str, Any]]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"body is not JSON: {exc.msg}") from exc
            if not isinstance(body, dict):
                raise ApiError(400, "body must be a JSON object")
            for pattern, name in _ROUTES:
                match = pattern.match(self.path)
                if match:
                    action: Callable[..., dict[str, Any]] = getattr(desk, name)
                    args: list[Any] = [int(match[1])] if match.groups() else []
                    if name == "operator":
                        args.append(match[2])
                    result = action(*args, body)
                    return (201 if name == "create" else 200), result
            raise ApiError(404, f"no such path {self.path}")


    return Handler


def serve(engine: Engine, lock: threading.Lock, clock: Clock,
          port: int = 0, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, str]:
    """Start the API in a daemon thread; returns the server and its base URL."""
    server = ThreadingHTTPServer((host, port), _handler(Desk(engine, lock, clock)))
    threading.Thread(target=server.serve_forever, daemon=True, name="workstation-api").start()
    return server, f"http://{host}:{server.server_address[1]}"
