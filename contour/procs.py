"""Process supervision primitives: detached start, pid files, liveness, stop, memory.

Every embedded service runs as a real OS process in its own session (``setsid``), so that
stopping a service stops everything it forked (gunicorn workers, Airflow task runners) and
``contour down`` leaves no process behind. A pid file records the pid *and* the process start
time, so a recycled pid is never mistaken for our service.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from contour.errors import ServiceError


@dataclass(frozen=True)
class PidRecord:
    pid: int
    started: float  # psutil create_time of the process

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None if it has gone (or the pid was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 0.05:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def session_members(self) -> list[psutil.Process]:
        """Every live process of the session this service leads (itself included)."""
        members = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == self.pid and proc.status() != psutil.STATUS_ZOMBIE:
                    members.append(proc)
            except (OSError, psutil.Error):
                continue
        return members


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> PidRecord | None:
        try:
            data = json.loads(self.path.read_text())
            return PidRecord(int(data["pid"]), float(data["started"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write(self, pid: int) -> PidRecord:
        record = PidRecord(pid, psutil.Process(pid).create_time())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": record.pid, "started": record.started}))
        os.replace(tmp, self.path)
        return record

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def live(self) -> psutil.Process | None:
        record = self.read()
        return record.process() if record else None


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` detached in a new session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(map(str, argv))}\n"
                  .encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
                **as_user(user),
            )
        except FileNotFoundError as exc:
            raise ServiceError(
                f"program not found: {argv[0]}; run `python3 bootstrap.py` to install it"
            ) from exc
        except PermissionError as exc:
            raise ServiceError(f"cannot execute {argv[0]}: {exc.strerror}") from exc
    return proc.pid


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as ``user`` with that user's groups only.

    Setting only the user would keep root's group, and a folder with mode ``rwx-----x`` owned
    by group root would then deny the child even the passage that ``o+x`` grants.
    """
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def stop_session(
    record: PidRecord, *, first_signal: int = signal.SIGTERM, timeout: float = 30.0,
    leader_only_first: bool = False,
) -> bool:
    """Stop a service's whole session: ``first_signal``, wait, then SIGKILL what is left.

    With ``leader_only_first`` the first signal goes to the leader alone (PostgreSQL's
    postmaster wants SIGINT itself; its backends must not get it). Returns True if the
    session had to be killed.
    """
    leader = record.process()
    targets = [leader] if (leader_only_first and leader) else record.session_members()
    for proc in targets:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(first_signal)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not record.session_members():
            return False
        time.sleep(0.1)
    for proc in record.session_members():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(record.session_members(), timeout=5)
    return True


def session_rss(record: PidRecord) -> int:
    """Resident memory of every process in the service's session, bytes."""
    total = 0
    for proc in record.session_members():
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """A short description of the process listening on a local port, if it can be seen."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            listening = conn.status == psutil.CONN_LISTEN
            if conn.laddr and conn.laddr.port == port and listening and conn.pid:
                try:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except (psutil.Error, OSError):
        pass
    return "another process"
