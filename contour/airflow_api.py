"""A small client of Airflow 3's REST API (``/api/v2``), for tests, benchmarks and the CLI.

Logs in as the Contour admin (``POST /auth/token``) and keeps the JWT.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from contour.config import Config
from contour.errors import ServiceError


class AirflowApi:
    def __init__(self, config: Config, timeout: float = 30) -> None:
        self.base = config.airflow_url
        self.timeout = timeout
        self._credentials = {"username": config.admin_user, "password": config.admin_password()}
        self._token: str | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(
            self.base + path, method=method, headers=headers,
            data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise ServiceError(f"airflow: {method} {path} → HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ServiceError(f"airflow: {self.base} is not reachable ({exc}); check "
                               "`contour status`") from None
        return json.loads(raw) if raw else None

    def token(self) -> str:
        if self._token is None:
            self._token = self._call("POST", "/auth/token", self._credentials,
                                     auth=False)["access_token"]
        return self._token  # type: ignore[return-value]

    def runs(self, dag_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first."""
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit={limit}"
                                 "&order_by=-run_after")["dag_runs"][::-1]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                                 "/taskInstances")["task_instances"]

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: str | None = None
                ) -> dict[str, Any]:
        return self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                          {"conf": conf, "logical_date": logical_date})

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})
