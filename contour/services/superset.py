"""Embedded Apache Superset 6: gunicorn, metadata in the embedded PostgreSQL ``superset`` db."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from contour.config import PROJECT_ROOT
from contour.errors import ServiceError
from contour.services.base import ProcessSpec, Progress, Service, http_get


class Superset(Service):
    name = "superset"

    @property
    def url(self) -> str:
        return self.config.superset_url

    @property
    def home(self) -> Path:
        return self.config.data_dir("superset")

    def program(self, name: str) -> Path:
        return self.config.venv_bin("superset", name)

    def check_installed(self) -> None:
        for name in ("superset", "gunicorn"):
            if not os.access(self.program(name), os.X_OK):
                raise ServiceError(
                    f"superset: {self.program(name)} not found; run `python3 bootstrap.py "
                    "setup` to create the Superset environment"
                )

    def environment(self) -> dict[str, str]:
        c = self.config
        return c.service_env(
            SUPERSET_CONFIG_PATH=str(PROJECT_ROOT / "superset" / "superset_config.py"),
            SUPERSET_HOME=str(self.home),
            FLASK_APP="superset",
            CONTOUR_SUPERSET_DB_URI=c.sqlalchemy_url("superset", "psycopg2"),
            CONTOUR_SUPERSET_SECRET_KEY=c.secrets.get("superset_secret_key"),
            CONTOUR_SUPERSET_CACHE_DIR=str(self.home / "cache"),
            CONTOUR_SUPERSET_BASE_URL=c.superset_url + "/",
            SCARF_ANALYTICS="false",
            DO_NOT_TRACK="1",
        )

    def processes(self) -> list[ProcessSpec]:
        ep = self.config.superset_endpoint
        return [ProcessSpec(
            name="superset",
            argv=[str(self.program("gunicorn")), "--workers", "1", "--worker-class", "gthread",
                  "--threads", "4", "--timeout", "120", "--bind", f"{ep.host}:{ep.port}",
                  "--access-logfile", "-",
                  "--no-control-socket", "superset.app:create_app()"],
            env=self.environment(),
            cwd=self.home,
        )]

    def healthy(self) -> bool:
        body = http_get(self.config.superset_url + "/health")
        return body is not None and body.strip() == b"OK"

    def _superset(self, *args: str, what: str) -> None:
        result = subprocess.run([str(self.program("superset")), *args], env=self.environment(),
                                cwd=self.home, capture_output=True, text=True)
        with open(self.log_path("superset-setup"), "a") as log:
            log.write(f"$ superset {args[0]}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
            raise ServiceError(f"superset: {what} failed: {lines[-1]} (full output: "
                               f"{self.log_path('superset-setup')})")

    def prepare(self, progress: Progress) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        stamp = self.home / ".initialised"
        version = self._version()
        if stamp.exists() and stamp.read_text() == version:
            return
        progress("superset: initialising the metadata database (first start takes ~1-2 min)")
        self._superset("db", "upgrade", what="`superset db upgrade`")
        c = self.config
        self._superset("fab", "create-admin", "--username", c.admin_user, "--firstname",
                       "Contour", "--lastname", "Admin", "--email", "admin@contour.local",
                       "--password", c.admin_password(), what="creating the admin user")
        self._superset("init", what="`superset init`")
        stamp.write_text(version)

    def after_start(self, progress: Progress) -> None:
        """Provision the dashboards (superset/assets) once Superset answers; idempotent and
        a no-op when the same assets were already imported."""
        from contour.errors import ContourError
        from contour.superset_assets import provision

        try:
            provision(self.config, self.home / ".assets-digest", progress)
        except ContourError as exc:
            raise ServiceError(
                f"superset: provisioning the dashboards failed: {exc}. Superset itself is up; "
                "fix the cause, then run `contour superset sync` (or `contour up superset`)"
            ) from None

    def _version(self) -> str:
        lock = self.config.venv("superset") / ".contour-lock"
        return lock.read_text().strip() if lock.exists() else "unknown"
