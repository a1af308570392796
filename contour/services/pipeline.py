"""Contour's own pipeline processes as supervised services, healthy while they report.

Each process rewrites a status file at least every second while it works (every 10k rows while
a CDC snapshot runs); a file older than ``STALE_AFTER_S`` means stuck or reconnecting.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from contour import dbt, dbt_worker
from contour.config import PROJECT_ROOT
from contour.services.base import ProcessSpec, Progress, Service
from ingestion.export import heartbeat_path
from ingestion.status import read_status

STALE_AFTER_S = 15.0


class PipelineService(Service):
    """A pipeline service: processes of ``contour <command>``, health from status files."""

    def status_files(self) -> list[Path]:
        raise NotImplementedError

    def healthy(self) -> bool:
        now = time.time()
        for path in self.status_files():
            status = read_status(path)
            if status is None or now - status["updated_at"] > STALE_AFTER_S:
                return False
        return True

    def command(self, name: str, *args: str) -> ProcessSpec:
        return ProcessSpec(name=name, argv=[sys.executable, "-m", "contour", *args],
                           env=self.config.service_env(PYTHONUNBUFFERED="1"))

    def _check_port_free(self) -> None:
        """Pipeline processes listen on no port."""

    def prepare(self, progress: Progress) -> None:
        """Before (re)starting processes: a status file left by a killed process would look
        fresh for up to STALE_AFTER_S, so health would pass before the new one reports.
        Remove them; processes still running rewrite theirs within a second."""
        for path in self.status_files():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)


class Cdc(PipelineService):
    """One CDC relay process per source (``contour cdc run --source S``)."""

    name = "cdc"

    @property
    def url(self) -> str:
        return f"sources {', '.join(self.config.cdc_source_names)} → {self.config.kafka_bootstrap}"

    def status_files(self) -> list[Path]:
        return [self.config.cdc_source(s).state_dir / f"{s}.metrics.json"
                for s in self.config.cdc_source_names]

    def metrics(self, source: str) -> dict | None:  # type: ignore[type-arg]
        return read_status(self.config.cdc_source(source).state_dir / f"{source}.metrics.json")

    def processes(self) -> list[ProcessSpec]:
        return [self.command(f"cdc-{s}", "cdc", "run", "--source", s)
                for s in self.config.cdc_source_names]


class Loader(PipelineService):
    """The Kafka → ClickHouse loader (``contour loader run``)."""

    name = "loader"

    @property
    def url(self) -> str:
        return f"{self.config.kafka_bootstrap} → {self.config.clickhouse_url} raw.*"

    def status_files(self) -> list[Path]:
        return [self.config.state_dir / "landing" / "loader.status.json"]

    def processes(self) -> list[ProcessSpec]:
        return [self.command("loader", "loader", "run")]


class Exporter(PipelineService):
    """The ClickHouse → PostgreSQL staging exporter (``contour export run``)."""

    name = "export"

    @property
    def url(self) -> str:
        return f"{self.config.clickhouse_url} raw.* → warehouse.staging.*"

    def status_files(self) -> list[Path]:
        return [heartbeat_path(self.config)]

    def processes(self) -> list[ProcessSpec]:
        return [self.command("export", "export", "run")]


class DbtWorker(PipelineService):
    """dbt loaded once for the realtime cycle's runs (``python -m contour.dbt_worker`` in
    dbt's environment; :mod:`contour.dbt_worker`)."""

    name = "dbt"

    @property
    def url(self) -> str:
        return f"{dbt_worker.socket_path(self.config)} (dbt runs of the realtime cycle)"

    def status_files(self) -> list[Path]:
        return [dbt_worker.status_path(self.config)]

    def processes(self) -> list[ProcessSpec]:
        env = self.config.service_env(PYTHONPATH=str(PROJECT_ROOT), PYTHONUNBUFFERED="1")
        return [ProcessSpec(name="dbt-worker", env=env, cwd=dbt.PROJECT_DIR,
                            argv=[str(self.config.venv_bin("dbt", "python")), "-m",
                                  "contour.dbt_worker"])]


class Dialer(PipelineService):
    """The dialer service at demo speed (``contour dialer run --speed CONTOUR_DEMO_SPEED``)."""

    name = "dialer"

    @property
    def speed(self) -> str:
        return f"{self.config.demo_speed:g}"

    @property
    def url(self) -> str:
        return f"{self.config.pg_endpoint.host}:{self.config.pg_endpoint.port}/dialer " \
               f"(simulated, {self.speed}x)"

    def status_files(self) -> list[Path]:
        return []  # healthy while its process runs (status() checks the process)

    def processes(self) -> list[ProcessSpec]:
        return [self.command("dialer", "dialer", "run", "--speed", self.speed)]


class Crm(Dialer):
    """The CRM workload and API at demo speed (``contour crm run --speed CONTOUR_DEMO_SPEED``)."""

    name = "crm"

    @property
    def url(self) -> str:
        return f"{self.config.pg_endpoint.host}:{self.config.pg_endpoint.port}/crm " \
               f"(simulated, {self.speed}x)"

    def processes(self) -> list[ProcessSpec]:
        return [self.command("crm", "crm", "run", "--speed", self.speed)]
