"""Run dbt on the warehouse: ``contour dbt ARGS...``.

dbt lives in its own virtual environment (``.venvs/dbt``, made by ``bootstrap.py``) and is
called as a subprocess. Its ``profiles.yml`` is generated from :class:`~contour.config.Config`
into the state folder on every call; the password is not written to it but handed to dbt in
the ``CONTOUR_DBT_PASSWORD`` environment variable (``env_var()`` in the profile). Compiled
SQL, run results, docs and logs go under ``<state>/dbt/`` too, so the repository stays clean.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from contour.config import PROJECT_ROOT, Config
from contour.errors import ContourError

PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILE = "contour"
TARGET = "warehouse"
PASSWORD_VAR = "CONTOUR_DBT_PASSWORD"


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


def dbt_env(config: Config) -> dict[str, str]:
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
        DBT_TARGET_PATH=str(folder / "target"),
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


def command(config: Config, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of ``dbt ARGS`` (run it with cwd=PROJECT_DIR)."""
    return [str(dbt_executable(config)), *args], dbt_env(config)


def run(config: Config, args: Sequence[str], capture: bool = False,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``dbt ARGS`` against the warehouse; ``capture`` keeps stdout/stderr."""
    argv, env = command(config, args)
    return subprocess.run(argv, cwd=PROJECT_DIR, env=env, capture_output=capture, text=True,
                          timeout=timeout, check=False)


def cmd_dbt(config: Config, args: argparse.Namespace) -> int:
    if args.dbt_args in (["-h"], ["--help"]):
        args.dbt_parser.print_help()
        return 0
    if not args.dbt_args:
        raise DbtError("no dbt command given; e.g. `contour dbt build --select tag:realtime`")
    return run(config, args.dbt_args).returncode


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
    p.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="dbt command and its options")
    p.set_defaults(func=cmd_dbt, dbt_parser=p)

