"""Embedded Apache Airflow 3: api-server + scheduler + dag-processor, LocalExecutor.

Airflow lives in its own virtual environment (.venvs/airflow); its metadata is in the embedded
PostgreSQL database ``airflow``. The admin user of the SimpleAuthManager gets the generated
Contour admin password (never admin/admin).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contour.config import PROJECT_ROOT
from contour.errors import ServiceError
from contour.services.base import ProcessSpec, Progress, Service, http_get


class Airflow(Service):
    name = "airflow"

    @property
    def url(self) -> str:
        return self.config.airflow_url

    @property
    def home(self) -> Path:
        return self.config.data_dir("airflow")

    @property
    def program(self) -> Path:
        return self.config.venv_bin("airflow", "airflow")

    def check_installed(self) -> None:
        if not os.access(self.program, os.X_OK):
            raise ServiceError(
                f"airflow: {self.program} not found; run `python3 bootstrap.py setup` to "
                "create the Airflow environment"
            )

    def environment(self) -> dict[str, str]:
        """Airflow's configuration, entirely from the Contour configuration object."""
        c = self.config
        ep = c.airflow_endpoint
        return c.service_env(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=str(c.airflow_dags_paused),
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(c.airflow_parallelism),
            AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=str(c.airflow_parallelism),
            AIRFLOW__CORE__FERNET_KEY=c.secrets.get("airflow_fernet_key"),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{c.airflow_url}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{c.admin_user}:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.home / "passwords.json"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=c.airflow_database_url,
            AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE="3",
            AIRFLOW__API__HOST=ep.host,
            AIRFLOW__API__PORT=str(ep.port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__BASE_URL=c.airflow_url,
            AIRFLOW__API__SECRET_KEY=c.secrets.get("airflow_api_secret_key"),
            AIRFLOW__API_AUTH__JWT_SECRET=c.secrets.get("airflow_jwt_secret"),
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="30",
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
            AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
            SCARF_ANALYTICS="false",
            DO_NOT_TRACK="1",
            # the DAGs call Contour through the same configuration
            CONTOUR_STATE_DIR=str(c.state_dir),
            CONTOUR_VENVS_DIR=str(c.venvs_dir),
        )

    def processes(self) -> list[ProcessSpec]:
        env = self.environment()
        commands = {
            "api-server": ["api-server"],
            # no log server on 0.0.0.0:8793: the api-server reads task logs from disk
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
        }
        return [
            ProcessSpec(name=f"airflow-{part}", argv=[str(self.program), *args], env=env,
                        cwd=self.home)
            for part, args in commands.items()
        ]

    def healthy(self) -> bool:
        raw = http_get(self.config.airflow_url + "/api/v2/monitor/health")
        try:
            body = json.loads(raw) if raw is not None else {}
        except ValueError:
            return False
        parts = ("metadatabase", "scheduler", "dag_processor")
        return all((body.get(p) or {}).get("status") == "healthy" for p in parts)

    def prepare(self, progress: Progress) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({self.config.admin_user: self.config.admin_password()}, fh)
        stamp = self.home / ".migrated"
        if stamp.exists() and stamp.read_text() == self._version():
            return
        progress("airflow: migrating the metadata database (first start takes ~1 min)")
        result = subprocess.run([str(self.program), "db", "migrate"], env=self.environment(),
                                cwd=self.home, capture_output=True, text=True)
        with open(self.log_path("airflow-migrate"), "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise ServiceError(
                "airflow: `airflow db migrate` failed: "
                + (result.stderr or result.stdout).strip().splitlines()[-1]
                + f" (full output: {self.log_path('airflow-migrate')})"
            )
        stamp.write_text(self._version())

    def clean_metadata(self, days: int) -> str:
        """``airflow db clean``: delete metadata (DAG runs but each DAG's latest, task
        instances, the log table, XComs, …) older than ``days`` days, without archive tables.
        A continuous DAG adds ~1,400 runs a day; without this the database only grows. Run
        with the Contour configuration's database URL (inside a task, Airflow 3 hides its
        own: CONTOUR_AIRFLOW_DATABASE_URL tells it in a deployment of its own)."""
        program = str(self.program) if os.access(self.program, os.X_OK) else \
            shutil.which("airflow")
        if program is None:
            raise ServiceError(f"airflow: neither {self.program} nor `airflow` on PATH; run "
                               "this where Airflow is installed, or --airflow-days 0")
        before = datetime.now(UTC) - timedelta(days=days)
        result = subprocess.run(
            [program, "db", "clean", "--clean-before-timestamp", before.isoformat(),
             "--skip-archive", "--yes"],
            env=self.environment(), cwd=self.home, capture_output=True, text=True)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError("airflow: `airflow db clean` failed: "
                               + (output[-1] if output else f"exit {result.returncode}"))
        return (f"airflow metadata: deleted what was older than {days} days "
                f"(before {before:%Y-%m-%d %H:%M} UTC)")

    def _version(self) -> str:
        """Re-run migrations whenever the installed Airflow changes."""
        return (self.config.venv("airflow") / ".contour-lock").read_text().strip() \
            if (self.config.venv("airflow") / ".contour-lock").exists() else "unknown"
