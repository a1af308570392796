"""The CRM's HTTP JSON API (stdlib ``http.server``): create appeals, answer, manage tickets.

Requests are validated field by field before anything touches the database; every error is a
JSON body ``{"error", "kind", "field"?}`` with a 4xx status (400 invalid, 404 unknown id or
route, 405 wrong method, 409 not allowed in the current state, 413 body too large). Time comes
from the shared clock, so the API and the workload generator live on the same simulated time.

    POST /appeals                {channel, address, topic_id, queue_id, region_id?, subject?,
                                  phone?, full_name?, store_id?, external_ref?, operator_id?}
    GET  /appeals/{id}
    POST /appeals/{id}/answers   {body, employee_id?}
    POST /appeals/{id}/status    {status}
    POST /appeals/{id}/reopen    {}
    POST /tickets                {appeal_id, ticket_type, topic_id?, assignee_id?, actor_id?}
    GET  /tickets/{id}           (with its ordered history)
    POST /tickets/{id}/assign    {assignee_id?, group_id?, actor_id?, note?}
    POST /tickets/{id}/status    {status, actor_id?, note?}
    POST /tickets/{id}/close     {actor_id?, note?}
    POST /tickets/{id}/reopen    {actor_id?, note?}
    GET  /health
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import ThreadingHTTPServer
from typing import Any

import psycopg

from dialer_core.clock import Clock
from dialer_core.crm import answers, appeals, tickets
from dialer_core.crm.db import all_rows
from dialer_core.crm.errors import CrmError, NotFound, ValidationError
from dialer_core.crm.settings import DEFAULT_SETTINGS, CrmSettings
from dialer_core.http_json import JsonHandler

MAX_BODY = 64 * 1024

# field name -> (python type, required)
Spec = dict[str, tuple[type, bool]]
Handler = Callable[["CrmApi", psycopg.Connection[Any], int | None, dict[str, Any]],
                   tuple[int, Any]]


class MethodNotAllowed(CrmError):
    status = 405


def parse(body: Any, spec: Spec) -> dict[str, Any]:
    """Check a JSON body against ``spec``: an object, known fields only, right types."""
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    unknown = sorted(set(body) - set(spec))
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}; allowed: {', '.join(spec)}",
                              field=unknown[0])
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        value = body.get(name)
        if value is None:
            if required:
                raise ValidationError(f"{name} is required", field=name)
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValidationError(f"{name} must be {'an integer' if kind is int else 'a string'}",
                                  field=name)
        out[name] = value
    return out


APPEAL_SPEC: Spec = {"channel": (str, True), "address": (str, True), "topic_id": (int, True),
                     "queue_id": (int, True), "region_id": (int, False), "subject": (str, False),
                     "phone": (str, False), "full_name": (str, False), "store_id": (int, False),
                     "external_ref": (str, False), "operator_id": (int, False)}
ANSWER_SPEC: Spec = {"body": (str, True), "employee_id": (int, False)}
STATUS_SPEC: Spec = {"status": (str, True)}
TICKET_SPEC: Spec = {"appeal_id": (int, True), "ticket_type": (str, True),
                     "topic_id": (int, False), "assignee_id": (int, False),
                     "actor_id": (int, False)}
ASSIGN_SPEC: Spec = {"assignee_id": (int, False), "group_id": (int, False),
                     "actor_id": (int, False), "note": (str, False)}
TICKET_STATUS_SPEC: Spec = {"status": (str, True), "actor_id": (int, False),
                            "note": (str, False)}
ACTOR_SPEC: Spec = {"actor_id": (int, False), "note": (str, False)}


@dataclass
class CrmApi:
    """Request dispatch, independent of the HTTP server so that it is easy to test."""

    dsn: str
    clock: Clock
    settings: CrmSettings = DEFAULT_SETTINGS
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def _conn(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = psycopg.connect(self.dsn, autocommit=True)
            self._local.conn = conn
        return conn

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Answer one request: (HTTP status, JSON-able body)."""
        try:
            handler, ident = self._route(method, path)
            return handler(self, self._conn(), ident, body)
        except CrmError as exc:
            return exc.status, exc.as_dict()

    def _route(self, method: str, path: str) -> tuple[Handler, int | None]:
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(path.rstrip("/") or "/")
            if match:
                if method not in methods:
                    raise MethodNotAllowed(f"{method} not allowed on {path}; use "
                                           f"{', '.join(methods)}")
                ident = match.groupdict().get("id")
                return methods[method], int(ident) if ident else None
        raise NotFound(f"no such endpoint: {path}")

    # ---------------------------------------------------------------- handlers
    def create_appeal(self, conn: psycopg.Connection[Any], _: int | None,
                      body: Any) -> tuple[int, Any]:
        args = parse(body, APPEAL_SPEC)
        appeal = appeals.create(conn, at=self.clock.now(), settings=self.settings, **args)
        return (201 if appeal.created else 200), appeals.get(conn, appeal.appeal_id)

    def get_appeal(self, conn: psycopg.Connection[Any], ident: int | None,
                   body: Any) -> tuple[int, Any]:
        assert ident is not None
        row = appeals.get(conn, ident)
        row["answers"] = all_rows(conn, "SELECT * FROM answers WHERE appeal_id = %s "
                                        "ORDER BY answer_id", (ident,))
        return 200, row

    def answer(self, conn: psycopg.Connection[Any], ident: int | None,
               body: Any) -> tuple[int, Any]:
        args = parse(body, ANSWER_SPEC)
        assert ident is not None
        return 201, answers.send(conn, ident, args["body"], self.clock.now(),
                                 employee_id=args.get("employee_id"))

    def appeal_status(self, conn: psycopg.Connection[Any], ident: int | None,
                      body: Any) -> tuple[int, Any]:
        args = parse(body, STATUS_SPEC)
        assert ident is not None
        return 200, appeals.set_status(conn, ident, args["status"], self.clock.now())

    def appeal_reopen(self, conn: psycopg.Connection[Any], ident: int | None,
                      body: Any) -> tuple[int, Any]:
        parse(body if body is not None else {}, {})
        assert ident is not None
        return 200, appeals.reopen(conn, ident, self.clock.now())

    def create_ticket(self, conn: psycopg.Connection[Any], _: int | None,
                      body: Any) -> tuple[int, Any]:
        args = parse(body, TICKET_SPEC)
        return 201, tickets.create(conn, at=self.clock.now(), settings=self.settings, **args)

    def get_ticket(self, conn: psycopg.Connection[Any], ident: int | None,
                   body: Any) -> tuple[int, Any]:
        assert ident is not None
        row = tickets.get(conn, ident)
        row["history"] = tickets.history(conn, ident)
        return 200, row

    def assign(self, conn: psycopg.Connection[Any], ident: int | None,
               body: Any) -> tuple[int, Any]:
        args = parse(body, ASSIGN_SPEC)
        assert ident is not None
        return 200, tickets.assign(conn, ident, self.clock.now(), **args)

    def ticket_status(self, conn: psycopg.Connection[Any], ident: int | None,
                      body: Any) -> tuple[int, Any]:
        args = parse(body, TICKET_STATUS_SPEC)
        assert ident is not None
        return 200, tickets.set_status(conn, ident, args.pop("status"), self.clock.now(),
                                       **args)

    def close_ticket(self, conn: psycopg.Connection[Any], ident: int | None,
                     body: Any) -> tuple[int, Any]:
        args = parse(body if body is not None else {}, ACTOR_SPEC)
        assert ident is not None
        return 200, tickets.close(conn, ident, self.clock.now(), **args)

    def reopen_ticket(self, conn: psycopg.Connection[Any], ident: int | None,
                      body: Any) -> tuple[int, Any]:
        args = parse(body if body is not None else {}, ACTOR_SPEC)
        assert ident is not None
        return 200, tickets.reopen(conn, ident, self.clock.now(), settings=self.settings,
                                   **args)

    def health(self, conn: psycopg.Connection[Any], _: int | None,
               body: Any) -> tuple[int, Any]:
        conn.execute("SELECT 1")
        return 200, {"status": "ok", "now": self.clock.now()}


ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/health"), {"GET": CrmApi.health}),
    (re.compile(r"/appeals"), {"POST": CrmApi.create_appeal}),
    (re.compile(r"/appeals/(?P<id>\d{1,18})"), {"GET": CrmApi.get_appeal}),
    (re.compile(r"/appeals/(?P<id>\d{1,18})/answers"), {"POST": CrmApi.answer}),
    (re.compile(r"/appeals/(?P<id>\d{1,18})/status"), {"POST": CrmApi.appeal_status}),
    (re.compile(r"/appeals/(?P<id>\d{1,18})/reopen"), {"POST": CrmApi.appeal_reopen}),
    (re.compile(r"/tickets"), {"POST": CrmApi.create_ticket}),
    (re.compile(r"/tickets/(?P<id>\d{1,18})"), {"GET": CrmApi.get_ticket}),
    (re.compile(r"/tickets/(?P<id>\d{1,18})/assign"), {"POST": CrmApi.assign}),
    (re.compile(r"/tickets/(?P<id>\d{1,18})/status"), {"POST": CrmApi.ticket_status}),
    (re.compile(r"/tickets/(?P<id>\d{1,18})/close"), {"POST": CrmApi.close_ticket}),
    (re.compile(r"/tickets/(?P<id>\d{1,18})/reopen"), {"POST": CrmApi.reopen_ticket}),
]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_json(body: Any) -> bytes:
    return json.dumps(body, default=_json_default, sort_keys=True).encode()


class _Handler(JsonHandler):
    api: CrmApi
    protocol_version = "HTTP/1.1"
    encode = staticmethod(to_json)

    def _dispatch(self, method: str) -> None:
        body: Any = None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(400, {"error": "bad Content-Length", "kind": "ValidationError"})
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error": f"body larger than {MAX_BODY} bytes",
                              "kind": "ValidationError"})
            return
        if length:
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                self._send(400, {"error": f"body is not valid JSON: {exc}",
                                  "kind": "ValidationError"})
                return
        elif method == "POST":
            body = {}
        try:
            status, reply = self.api.handle(method, self.path.split("?", 1)[0], body)
        except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not kill the server
            status, reply = 500, {"error": f"internal error: {type(exc).__name__}",
                                  "kind": "InternalError"}
        self._send(status, reply)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


def make_server(api: CrmApi, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``api`` (port 0: a free one; see ``server.server_address``)."""
    handler = type("CrmHandler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
