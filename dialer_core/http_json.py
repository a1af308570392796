"""The JSON-over-HTTP base shared by the service's small APIs (workstation, ICP reference, CRM).

Standard library only (``http.server``): these APIs serve a handful of operators or a test, not
the internet; they run on loopback by default.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and keeps request logs out of the service's output."""

    #: how bodies become bytes; an API with dates or decimals sets its own
    encode: Callable[[Any], bytes] = staticmethod(lambda body: json.dumps(body).encode())

    def _send(self, status: int, body: Any) -> None:
        data = self.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # request logs would drown the workload's output
