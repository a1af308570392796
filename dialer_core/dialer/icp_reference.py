"""The reference ICP endpoint shipped with the dialer: a store's inbound line.

Couriers (caller number in the courier list) go straight to the courier desk; everyone else
hears a greeting and picks 1 (order status → ``orders`` queue) or 2 (returns → ``returns``);
anything else is asked again once, then handed to an operator. Stateless: every decision comes
from the request parameters, as a real endpoint behind a load balancer would be.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dialer_core.http_json import JsonHandler

COURIER_PREFIXES = ("+7900555",)
MENU = {"1": {"action": "route", "queue": "orders"},
        "2": {"action": "route", "queue": "returns"}}


def decide(numa: str, input_result: str) -> dict[str, Any]:
    if numa.startswith(COURIER_PREFIXES):
        return {"action": "route", "queue": "couriers"}
    if input_result == "":
        return {"action": "say", "text": "Welcome to the store."}
    if input_result == "ok":
        return {"action": "collect", "max_digits": 1,
                "prompt": "Press 1 for your order, 2 for a return."}
    return MENU.get(input_result, {"action": "route", "queue": "inbound"})


class _Handler(JsonHandler):
    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        missing = [k for k in ("cdr_id", "start_time", "numa", "numb") if not query.get(k)]
        if missing:
            self._send(400, {"error": f"missing parameters: {', '.join(missing)}"})
            return
        self._send(200, decide(query["numa"], query.get("input_result", "")))



def serve(host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the endpoint in a daemon thread; returns the server and its URL."""
    server = ThreadingHTTPServer((host, port), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="icp-reference").start()
    return server, f"http://{host}:{server.server_address[1]}/icp"
