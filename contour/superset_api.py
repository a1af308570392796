"""A small client of Superset's REST API (stdlib only: the core environment has no requests).

Login as in Superset 6: ``POST /api/v1/security/login`` gives a JWT access token; writes also
need the CSRF token of ``GET /api/v1/security/csrf_token/`` sent as ``X-CSRFToken`` together
with the session cookie set by that same call (see notes/superset_probe.md, section 6).
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from contour.errors import ContourError


class SupersetApiError(ContourError):
    """A Superset API call that failed; the message names the call and Superset's answer."""


class SupersetClient:
    def __init__(self, base_url: str, username: str, password: str,
                 timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self._token: str | None = None
        self._csrf: str | None = None

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        req.add_header("Referer", self.base_url + "/")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        if self._csrf and method != "GET":
            req.add_header("X-CSRFToken", self._csrf)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:
            raise SupersetApiError(
                f"Superset at {self.base_url} does not answer ({exc}); check `contour status` "
                "and `contour logs superset`") from None

    def _json(self, method: str, path: str, payload: Any = None,
              ok: tuple[int, ...] = (200, 201)) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self._request(method, path, body,
                                     {"Content-Type": "application/json"} if body else None)
        if status not in ok:
            raise SupersetApiError(f"{method} {path} answered {status}: {_short(data)}")
        return json.loads(data) if data else None

    # ------------------------------------------------------------------ session
    def login(self) -> SupersetClient:
        status, data = self._request(
            "POST", "/api/v1/security/login",
            json.dumps({"username": self.username, "password": self.password,
                        "provider": "db", "refresh": True}).encode(),
            {"Content-Type": "application/json"})
        if status == 401:
            raise SupersetApiError(
                f"Superset refused the login of {self.username!r} (401); the admin password "
                "is CONTOUR_ADMIN_PASSWORD or the one in the state folder's secrets.json")
        if status != 200:
            raise SupersetApiError(f"Superset login answered {status}: {_short(data)}")
        self._token = json.loads(data)["access_token"]
        self._csrf = self.get("/api/v1/security/csrf_token/")["result"]
        return self

    def get(self, path: str) -> Any:
        return self._json("GET", path)

    def post(self, path: str, payload: Any) -> Any:
        return self._json("POST", path, payload)

    def put(self, path: str, payload: Any) -> Any:
        return self._json("PUT", path, payload)

    # ------------------------------------------------------------------ assets
    def import_assets(self, bundle: bytes, passwords: dict[str, str]) -> None:
        """``POST /api/v1/assets/import/``: creates or overwrites every object in the bundle."""
        fields = {"passwords": json.dumps(passwords)}
        body, content_type = _multipart(fields, "bundle", "bundle.zip", bundle)
        status, data = self._request("POST", "/api/v1/assets/import/", body,
                                     {"Content-Type": content_type})
        if status != 200:
            raise SupersetApiError(f"importing the assets bundle failed ({status}): "
                                   f"{_short(data, 2000)}; Superset's log names the file and "
                                   "field (`contour logs superset`)")

    def export_assets(self) -> bytes:
        """``GET /api/v1/assets/export/``: a ZIP of every database, dataset, chart, dashboard."""
        status, data = self._request("GET", "/api/v1/assets/export/")
        if status != 200:
            raise SupersetApiError(f"exporting the assets failed ({status}): {_short(data)}")
        return data

    def find_all(self, resource: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every object of a resource (``chart``, ``dashboard``, ``dataset``, ``database``)."""
        rison = f"(columns:!({','.join(columns)}),page:0,page_size:1000)"
        return list(self.get(f"/api/v1/{resource}/?q={urllib.request.quote(rison)}")["result"])

    def chart_data(self, chart_id: int, force: bool = True) -> dict[str, Any]:
        """``GET /api/v1/chart/<id>/data/``: the chart's saved query context, run now (or,
        ``force=False``, what a dashboard shows: from Superset's cache while it holds it)."""
        return dict(self._json("GET", f"/api/v1/chart/{chart_id}/data/"
                                      f"?force={'true' if force else 'false'}"))


def _multipart(fields: dict[str, str], file_field: str, filename: str,
               content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode() + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: application/zip\r\n\r\n'.encode()
                 + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _short(data: bytes, limit: int = 500) -> str:
    text = data.decode(errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "…"
