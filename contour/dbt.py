"""Run dbt on the warehouse: ``contour dbt ARGS...``.

dbt lives in its own virtual environment (``.venvs/dbt``, made by ``bootstrap.py``) and is
called as a subprocess. Its ``profiles.yml`` is generated from :class:`~contour.config.Config`
into the state folder on every call; the password is not written to it but handed to dbt in
the ``CONTOUR_DBT_PASSWORD`` environment variable (``env_var()`` in the profile). Compiled
SQL, run results, docs and logs go under ``<state>/dbt/`` too, so the repository stays clean.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from contour.config import PROJECT_ROOT, Config
from contour.errors import ContourError

PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILE = "contour"
TARGET = "warehouse"
PASSWORD_VAR = "CONTOUR_DBT_PASSWORD"
DEFAULT_LANE = "realtime"
_LANE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
PROJECT_FILES = (".sql", ".yml", ".yaml", ".md", ".csv")


class DbtError(ContourError):
    """dbt is missing or could not be run."""


def state_dir(config: Config) -> Path:
    return config.state_dir / "dbt"


def profiles_yml(config: Config, threads: int = 2) -> str:
    """The profile of the warehouse database; the password comes from the environment."""
    parts = urlsplit(config.pg_dsn("warehouse"))
    database = parts.path.lstrip("/") or "warehouse"
    lines = [
        f"{PROFILE}:",
        f"  target: {TARGET}",
        "  outputs:",
        f"    {TARGET}:",
        "      type: postgres",
        f"      host: '{parts.hostname}'",
        f"      port: {parts.port or 5432}",
        f"      user: '{unquote(parts.username or 'contour')}'",
        f"      password: \"{{{{ env_var('{PASSWORD_VAR}', '') }}}}\"",
        f"      dbname: '{database}'",
        "      schema: marts",
        f"      threads: {threads}",
        "      connect_timeout: 10",
        "      application_name: contour-dbt",
    ]
    return "\n".join(lines) + "\n"


def project_fingerprint() -> str:
    """A digest of the dbt project's sources (models, macros, tests, dbt_project.yml)."""
    digest = hashlib.sha256()
    for path in sorted(PROJECT_DIR.rglob("*")):
        relative = path.relative_to(PROJECT_DIR)
        if (path.is_file() and path.suffix in PROJECT_FILES
                and not {"target", "logs", "dbt_packages"} & set(relative.parts)):
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def target_path(config: Config, lane: str = DEFAULT_LANE) -> Path:
    """Where a lane's dbt runs write manifest, run results and compiled SQL. Runs that may
    overlap (the continuous realtime cycle, the hourly and daily DAGs, a backfill) use
    lanes of their own, so they never overwrite each other's artifacts or partial parse."""
    return state_dir(config) / ("target" if lane == DEFAULT_LANE else f"target-{lane}")


def dbt_env(config: Config, lane: str = DEFAULT_LANE) -> dict[str, str]:
    """Environment of a dbt run: profile, target/log paths under the state folder, no
    telemetry or version check (the network is closed)."""
    folder = state_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    profiles = folder / "profiles.yml"
    text = profiles_yml(config)
    if not profiles.exists() or profiles.read_text() != text:
        profiles.write_text(text)
    password = urlsplit(config.pg_dsn("warehouse")).password
    return config.service_env(
        DBT_PROFILES_DIR=str(folder),
        DBT_PROJECT_DIR=str(PROJECT_DIR),
        DBT_TARGET_PATH=str(target_path(config, lane)),
        DBT_LOG_PATH=str(folder / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_VERSION_CHECK="false",
        **{PASSWORD_VAR: unquote(password or "")},
    )


def dbt_executable(config: Config) -> Path:
    exe = config.venv_bin("dbt", "dbt")
    if not exe.exists():
        raise DbtError(f"dbt is not installed ({exe} not found); run python3 bootstrap.py setup")
    return exe


def command(config: Config, args: Sequence[str], lane: str = DEFAULT_LANE
            ) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of ``dbt ARGS`` (run it with cwd=PROJECT_DIR)."""
    return [str(dbt_executable(config)), *args], dbt_env(config, lane)


def run(config: Config, args: Sequence[str], capture: bool = False,
        timeout: float | None = None, lane: str = DEFAULT_LANE
        ) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` against the warehouse; ``capture`` keeps stdout/stderr."""
    argv, env = command(config, args, lane)
    return subprocess.run(argv, cwd=PROJECT_DIR, env=env, capture_output=capture, text=True,
                          timeout=timeout, check=False)


#: dbt commands that write relations: one at a time per warehouse, whatever the lane
WRITING_COMMANDS = {"build", "run", "seed", "snapshot"}
LOCK_KEY = 0x636F6E746F7572  # "contour"


@contextlib.contextmanager
def marts_lock(config: Config, dbt_args: Sequence[str]) -> Iterator[None]:
    """Serialise dbt runs that write (e.g. a backfill and the realtime cycle building the same
    incremental models) with a PostgreSQL advisory lock on the warehouse, held for the run;
    it is released when this process ends, even by kill -9."""
    if not WRITING_COMMANDS & set(dbt_args[:1]):
        yield
        return
    try:  # psycopg in Contour's environment, psycopg2 in dbt's (the dbt worker)
        import psycopg as driver
    except ImportError:
        import psycopg2 as driver  # type: ignore[no-redef]

    try:
        conn = driver.connect(config.pg_dsn("warehouse"), connect_timeout=10)
    except driver.OperationalError as exc:
        raise DbtError(f"the warehouse database is not reachable ({exc}); check "
                       "`contour status`") from None
    try:
        conn.autocommit = True
        cursor = conn.cursor()
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        if not cursor.fetchone()[0]:
            print("contour dbt: another dbt run is writing the marts; waiting for it",
                  file=sys.stderr, flush=True)
            cursor.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        yield
    finally:
        conn.close()


def run_cycle(config: Config, args: list[str], progress: Callable[[str], None] = print) -> int:
    """``dbt ARGS`` of the realtime cycle, under the marts lock: on the dbt worker when it
    runs (``contour up dbt``: dbt already loaded, 10–12 s less per cycle under load), else as
    a dbt process. Returns dbt's exit status."""
    from contour.dbt_worker import WorkerError, run_on_worker

    try:
        returncode = run_on_worker(config, args, progress)
    except WorkerError as exc:
        progress(f"contour dbt: {exc}")
        return 2
    if returncode is not None:
        return returncode
    progress("(no dbt worker answers on its socket — `contour up dbt` starts it; running "
             "dbt as a process)")
    with marts_lock(config, args):
        return run(config, args).returncode


def cmd_dbt(config: Config, args: argparse.Namespace) -> int:
    if args.dbt_args in (["-h"], ["--help"]):
        args.dbt_parser.print_help()
        return 0
    if not args.dbt_args:
        raise DbtError("no dbt command given; e.g. `contour dbt build --select tag:realtime`")
    if not _LANE.match(args.lane):
        raise DbtError(f"++lane {args.lane!r}: use lower-case letters, digits and _")
    with marts_lock(config, args.dbt_args):
        return run(config, args.dbt_args, lane=args.lane).returncode


def register(subparsers: Any) -> None:
    """Add ``dbt ARGS...`` to the ``contour`` command's subparsers."""
    # prefix_chars '+': every option (--select, --version, ...) belongs to dbt, not to us;
    # a lone -h/--help shows this help (`contour dbt build --help` shows dbt's)
    p = subparsers.add_parser(
        "dbt", prefix_chars="+", add_help=False,
        help="run dbt on the warehouse marts (arguments passed to dbt)",
        description="Run dbt (from .venvs/dbt) on the dbt_project/ marts with a profile made "
                    "from the configuration; every argument after `dbt` goes to dbt. Compiled "
                    "SQL, docs and logs are written under <state folder>/dbt/. Examples: "
                    "`contour dbt build --select tag:realtime`, `contour dbt docs generate`, "
                    "`contour dbt source freshness`, `contour dbt build --help` (dbt's help).",
    )
    p.add_argument("++lane", default=DEFAULT_LANE,
                   help="runs that may overlap use lanes of their own: separate target "
                        f"folders under <state>/dbt/ (default {DEFAULT_LANE!r}: target/)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="dbt command and its options")
    p.set_defaults(func=cmd_dbt, dbt_parser=p)

