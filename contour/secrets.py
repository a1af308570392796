"""Secrets generated once per state folder and kept in a 0600 JSON file.

Nothing here is ever a fixed default such as admin/admin: each value is drawn with
:mod:`secrets` the first time it is asked for and then read back on every later run.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from contour.errors import ConfigError

_GENERATORS = {
    "admin_password": lambda: secrets.token_urlsafe(12),
    "pg_password": lambda: secrets.token_urlsafe(18),
    "superset_secret_key": lambda: secrets.token_urlsafe(42),
    "airflow_jwt_secret": lambda: secrets.token_urlsafe(32),
    "airflow_api_secret_key": lambda: secrets.token_urlsafe(32),
    "airflow_fernet_key": lambda: _fernet_key(),
    "clickhouse_reader_password": lambda: secrets.token_urlsafe(12),
    "superset_marts_password": lambda: secrets.token_urlsafe(18),
}


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Secrets:
    """Lazily generated, persisted secrets (``secrets.json``, mode 0600)."""

    def __init__(self, path: Path, given: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.given = dict(given or {})  # set by the environment: never generated nor stored
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read secrets file {self.path}: {exc}; fix its permissions or remove it "
                "with `contour reset`"
            ) from exc

    def get(self, name: str) -> str:
        if name in self.given:
            return self.given[name]
        with self._lock:
            values = self._load()
            if name in values:
                return values[name]
            if name not in _GENERATORS:
                raise KeyError(name)
            values[name] = _GENERATORS[name]()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump(values, fh, indent=2, sort_keys=True)
                os.replace(tmp, self.path)
            except OSError as exc:
                raise ConfigError(
                    f"state folder {self.path.parent} is not writable ({exc.strerror}); "
                    "set CONTOUR_STATE_DIR to a writable folder"
                ) from exc
            return values[name]
