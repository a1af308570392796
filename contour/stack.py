"""The embedded stack: every service in dependency order, brought up, checked and stopped."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contour.config import SERVICES, WORKLOAD, Config
from contour.errors import ConfigError, ServiceError
from contour.services.airflow import Airflow
from contour.services.base import Progress, Service, ServiceStatus
from contour.services.clickhouse import ClickHouse
from contour.services.kafka import Kafka
from contour.services.pipeline import Cdc, Crm, DbtWorker, Dialer, Exporter, Loader
from contour.services.postgres import Postgres
from contour.services.superset import Superset

_CLASSES: dict[str, type[Service]] = {
    "postgres": Postgres,
    "kafka": Kafka,
    "clickhouse": ClickHouse,
    "airflow": Airflow,
    "superset": Superset,
    "cdc": Cdc,
    "loader": Loader,
    "export": Exporter,
    "dbt": DbtWorker,
    "dialer": Dialer,
    "crm": Crm,
}
#: what each service needs running before it starts
_NEEDS = {
    "airflow": {"postgres"},
    "superset": {"postgres"},
    "cdc": {"postgres", "kafka"},
    "loader": {"kafka", "clickhouse"},
    "export": {"postgres", "clickhouse"},
    "dbt": {"postgres"},
    "dialer": {"postgres"},
    "crm": {"postgres"},
}


def free_port() -> int:
    """A port nothing listens on, from the kernel (bind to 0). Not a random pick from a
    fixed range: with ~150 ports taken per test run, random picks reuse a port of a stack torn
    down minutes earlier, where a process still retrying it would talk to the new stack."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_env(state_dir: Path) -> dict[str, str]:
    """The caller's environment without its CONTOUR_* settings, with a state folder and free
    ports of its own: a stack beside any other (tests, ``contour chaos``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTOUR_")}
    env.update(
        CONTOUR_STATE_DIR=str(state_dir),
        CONTOUR_PG_DSN=f"postgresql://contour@127.0.0.1:{free_port()}/postgres",
        CONTOUR_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        CONTOUR_CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}",
        CONTOUR_AIRFLOW_URL=f"http://127.0.0.1:{free_port()}",
        CONTOUR_SUPERSET_URL=f"http://127.0.0.1:{free_port()}",
    )
    return env


class Stack:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.services = {name: _CLASSES[name](config) for name in SERVICES}

    def select(self, names: list[str] | None, workload: bool = False) -> list[Service]:
        """The named services; without names every service (the workload only if asked)."""
        if not names:
            return [s for n, s in self.services.items() if workload or n not in WORKLOAD]
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise ConfigError(
                f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}"
            )
        return [self.services[n] for n in SERVICES if n in names]

    def service_for_process(self, process: str) -> Service:
        for service in self.services.values():
            if process == service.name or process in service.process_names():
                return service
        choices = [p for s in self.services.values() for p in s.process_names()]
        raise ConfigError(f"unknown service {process!r}; choose from {', '.join(choices)}")

    # ------------------------------------------------------------------ state folder
    def check_state_dir(self) -> None:
        state = self.config.state_dir
        try:
            for folder in (state, self.config.logs_dir, self.config.run_dir):
                folder.mkdir(parents=True, exist_ok=True)
            probe = state / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"state folder {state} is not writable ({exc.strerror}); set CONTOUR_STATE_DIR "
                "to a writable folder"
            ) from exc

    # ------------------------------------------------------------------ operations
    def up(self, names: list[str] | None, progress: Progress) -> dict[str, str]:
        """Start what is not running; repair what crashed; no-op for what is healthy."""
        self.check_state_dir()
        selected = {s.name for s in self.select(names)}
        # Everything the selection depends on comes first.
        while True:
            needed = set().union(*(_NEEDS.get(n, set()) for n in selected)) - selected
            if not needed:
                break
            selected |= needed
        results: dict[str, str] = {}
        remaining = [n for n in SERVICES if n in selected]
        while remaining:
            # a wave: every service whose needs are met starts now, side by side
            wave = [n for n in remaining if not _NEEDS.get(n, set()) & set(remaining)]
            remaining = [n for n in remaining if n not in wave]
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                futures = {n: pool.submit(self._start_one, self.services[n], progress)
                           for n in wave}
                errors = []
                for name, future in futures.items():
                    try:
                        results[name] = future.result()
                    except ServiceError as exc:
                        errors.append(exc)
            if errors:
                raise errors[0]
        return results

    @staticmethod
    def _start_one(service: Service, progress: Progress) -> str:
        outcome = service.start(progress)
        progress(f"{service.name}: {outcome}")
        return outcome

    def down(self, names: list[str] | None, progress: Progress) -> dict[str, str]:
        results = {}
        for service in reversed(self.select(names, workload=True)):
            results[service.name] = service.stop(progress)
            progress(f"{service.name}: {results[service.name]}")
        return results

    def status(self) -> list[ServiceStatus]:
        services = list(self.services.values())
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            return list(pool.map(lambda s: s.status(), services))

    def reset(self, progress: Progress) -> None:
        self.down(None, progress)
        state = self.config.state_dir
        if state.exists():
            _check_is_state_dir(state)
            shutil.rmtree(state)
            progress(f"deleted {state}")

    def supervise(self, interval: float, progress: Progress,
                  stop: threading.Event | None = None) -> None:
        """Watch the managed services and restart any whose process died, until ``stop``."""
        stop = stop or threading.Event()
        progress(f"supervising {', '.join(self.config.managed_services) or 'nothing'} "
                 f"every {interval:g}s (Ctrl-C stops watching; services keep running)")
        while not stop.wait(interval):
            for service in self.select(list(self.config.managed_services)):
                record_states = service.status().processes
                if any(p.crashed for p in record_states):
                    try:
                        progress(f"{service.name}: {service.start(progress)}")
                    except Exception as exc:  # noqa: BLE001 - keep watching the others;
                        # retry next round (a process that died at once, a port still held)
                        progress(f"{service.name}: restart failed: {exc}")

    def wait_healthy(self, timeout: float) -> list[ServiceStatus]:
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status()
            if all(s.healthy for s in statuses) or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)


def _check_is_state_dir(state: Path) -> None:
    """Refuse to delete a folder that does not look like a Contour state folder."""
    markers = {"secrets.json", "logs", "run", "postgres", "clickhouse"}
    present = {p.name for p in state.iterdir()} if state.is_dir() else set()
    if present and not present & markers:
        raise ConfigError(
            f"{state} does not look like a Contour state folder (no logs/, run/, secrets.json); "
            "not deleting it: check CONTOUR_STATE_DIR"
        )
    if state == Path(os.path.expanduser("~")) or state == Path("/"):
        raise ConfigError(f"refusing to delete {state}: check CONTOUR_STATE_DIR")
