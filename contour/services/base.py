"""What every embedded service has in common: processes, pid files, logs, health, start, stop."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from contour.config import Config
from contour.errors import ServiceError
from contour.procs import PidFile, port_open, port_owner, session_rss, spawn, stop_session

Progress = Callable[[str], None]


def http_get(url: str, timeout: float = 3.0) -> bytes | None:
    """Body of a successful GET, or None if the endpoint does not answer 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read() if resp.status == 200 else None
    except OSError:
        return None


@dataclass(frozen=True)
class ProcessSpec:
    """One OS process of a service (Airflow has three, the others one)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    signal_leader_only: bool = False


@dataclass
class ProcessStatus:
    name: str
    pid: int | None
    rss: int
    running: bool
    crashed: bool  # a pid file exists but its process is gone


@dataclass
class ServiceStatus:
    name: str
    url: str
    managed: bool
    healthy: bool
    processes: list[ProcessStatus] = field(default_factory=list)

    workload: bool = False  # started by `contour demo` only: stopped is normal ("idle")

    @property
    def state(self) -> str:
        if self.workload and not any(p.running or p.crashed for p in self.processes):
            return "idle"
        if not self.managed:
            return "external, healthy" if self.healthy else "external, unreachable"
        if any(p.crashed for p in self.processes):
            return "crashed"
        if not any(p.running for p in self.processes):
            return "stopped"
        if not all(p.running for p in self.processes):
            return "degraded"
        return "healthy" if self.healthy else "unhealthy"


class Service:
    """Base class; subclasses define ``name``, :meth:`processes` and :meth:`healthy`."""

    name: str = ""
    #: seconds between health probes while starting
    poll_interval = 0.25

    def __init__(self, config: Config) -> None:
        self.config = config

    # -------------------------------------------------------------- to override
    def processes(self) -> list[ProcessSpec]:
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def check_installed(self) -> None:
        """Raise ServiceError naming what is missing and how to install it."""

    def prepare(self, progress: Progress) -> None:
        """Idempotent one-time work before the processes start (initdb, migrations)."""

    def after_start(self, progress: Progress) -> None:
        """Idempotent work once healthy (databases, users)."""

    # -------------------------------------------------------------- common behaviour
    @property
    def managed(self) -> bool:
        return self.config.is_managed(self.name)

    @property
    def port(self) -> int:
        return self.config.endpoint(self.name).port

    def pidfile(self, process: str) -> PidFile:
        return PidFile(self.config.run_dir / f"{process}.pid")

    def log_path(self, process: str) -> Path:
        return self.config.logs_dir / f"{process}.log"

    def process_names(self) -> list[str]:
        return [spec.name for spec in self.processes()]

    def status(self) -> ServiceStatus:
        procs: list[ProcessStatus] = []
        if self.managed:
            for name in self.process_names():
                pidfile = self.pidfile(name)
                record = pidfile.read()
                live = record.process() if record else None
                procs.append(ProcessStatus(
                    name=name,
                    pid=live.pid if live else None,
                    rss=session_rss(record) if (record and live) else 0,
                    running=live is not None,
                    crashed=record is not None and live is None,
                ))
        try:
            # a dead process makes a managed service unhealthy even while its endpoint still
            # answers (Airflow reports a killed dag-processor healthy for 30 s)
            healthy = all(p.running for p in procs) and self.healthy()
        except Exception:  # noqa: BLE001 - a health probe never raises to the caller
            healthy = False
        from contour.config import WORKLOAD

        return ServiceStatus(self.name, self.url, self.managed, healthy, procs,
                             workload=self.name in WORKLOAD)

    def running_processes(self) -> list[str]:
        return [n for n in self.process_names() if self.pidfile(n).live() is not None]

    def start(self, progress: Progress) -> str:
        """Bring the service up; a no-op when it is already healthy. Returns what was done."""
        if not self.managed:
            if self.healthy():
                return "external, healthy"
            raise ServiceError(
                f"{self.name}: external service at {self.url} does not answer; start it, or "
                f"add {self.name} to CONTOUR_MANAGED_SERVICES to run it embedded"
            )
        specs = self.processes()
        running = set(self.running_processes())
        if len(running) == len(specs) and self.healthy():
            self.after_start(progress)  # idempotent: repairs what a crash mid-start left out
            return "already running"
        crashed = [s.name for s in specs if s.name not in running and self.pidfile(s.name).read()]
        if crashed:
            progress(f"{self.name}: {', '.join(crashed)} not running (crashed or killed); "
                     "restarting")
            for name in crashed:  # orphans of a killed leader would hold ports and files
                record = self.pidfile(name).read()
                if record is not None:
                    stop_session(record, timeout=10)
        self.check_installed()
        if not running:
            self._check_port_free()
        started = time.monotonic()
        self.prepare(progress)
        for spec in specs:
            if spec.name in running:
                continue
            pid = spawn(spec.argv, log_path=self.log_path(spec.name), env=spec.env, cwd=spec.cwd,
                        user=spec.user)
            try:
                self.pidfile(spec.name).write(pid)
            except psutil.NoSuchProcess:
                raise ServiceError(
                    f"{self.name}: {spec.name} exited as soon as it started; its log "
                    f"{self.log_path(spec.name)} says why") from None
        self._wait_healthy()
        self.after_start(progress)
        return f"started in {time.monotonic() - started:.1f}s"

    def _check_port_free(self) -> None:
        ep = self.config.endpoint(self.name)
        if port_open(ep.host, ep.port):
            raise ServiceError(
                f"{self.name}: port {ep.port} on {ep.host} is already in use by "
                f"{port_owner(ep.port)}; stop that process or point "
                f"{self.port_variable} at a free port"
            )

    @property
    def port_variable(self) -> str:
        return {
            "postgres": "CONTOUR_PG_DSN",
            "kafka": "CONTOUR_KAFKA_BOOTSTRAP",
            "clickhouse": "CONTOUR_CLICKHOUSE_URL",
            "airflow": "CONTOUR_AIRFLOW_URL",
            "superset": "CONTOUR_SUPERSET_URL",
        }[self.name]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while True:
            dead = [n for n in self.process_names() if self.pidfile(n).live() is None]
            if dead:
                raise ServiceError(
                    f"{self.name}: process {dead[0]} exited during start-up; last log lines:\n"
                    + self.log_tail(dead[0], 15)
                    + f"\n(full log: {self.log_path(dead[0])})"
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name}: not healthy after {self.config.start_timeout:.0f}s; see "
                    f"`contour logs {self.name}` (raise CONTOUR_START_TIMEOUT on a slow machine)"
                )
            time.sleep(self.poll_interval)

    def stop(self, progress: Progress, timeout: float = 30.0) -> str:
        if not self.managed:
            return "external, left alone"
        stopped = []
        # stop in reverse start order: dependants first
        for spec in reversed(self.processes()):
            pidfile = self.pidfile(spec.name)
            record = pidfile.read()
            if record is None:
                continue
            if record.process() is not None or record.session_members():
                killed = stop_session(record, first_signal=spec.stop_signal, timeout=timeout,
                                      leader_only_first=spec.signal_leader_only)
                stopped.append(spec.name + (" (killed)" if killed else ""))
            pidfile.remove()
        return ("stopped " + ", ".join(stopped)) if stopped else "not running"

    def log_tail(self, process: str, lines: int) -> str:
        try:
            with open(self.log_path(process), "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])
