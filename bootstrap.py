#!/usr/bin/env python3
"""Set up Contour's environments from the lock files, then run the demo or the tests.

    python3 bootstrap.py demo      # install (first time), start the stack and the workload
    python3 bootstrap.py test      # install (first time), run the whole test suite
    python3 bootstrap.py setup     # only install
    python3 bootstrap.py demo -- ARGS / test -- PYTEST-ARGS

Needs only Python >= 3.11 and the PyPI registry. Each tool gets its own virtual environment
under .venvs/ (CONTOUR_VENVS_DIR), because their dependencies conflict:

    core      contour, dialer_core, ingestion, chdb, embedded PostgreSQL and Kafka, pytest
    airflow   Apache Airflow 3 and its providers
    dbt       dbt-core 1.11 + dbt-postgres (dbt-core 1.12 cannot be installed offline)
    superset  Apache Superset 6

Then the CDC relay's optional native row codec is compiled when a C compiler is present
(without one the relay runs its pure-Python fast path; see ingestion/cdc/rowcodec.py).

Every environment is installed exactly from requirements/<name>.lock with uv (itself pinned) and
re-installed only when its lock file changes, so running this again is cheap and idempotent.
Standard library only: this file runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
UV_VERSION = "0.13.8"
ENVIRONMENTS = ("core", "airflow", "dbt", "superset")


def log(message: str) -> None:
    print(f"[bootstrap {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fail(message: str) -> None:
    print(f"bootstrap: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def venvs_dir() -> Path:
    raw = os.environ.get("CONTOUR_VENVS_DIR", "").strip()
    return Path(raw).absolute() if raw else ROOT / ".venvs"


def run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        fail(f"{what} failed (exit {result.returncode}):\n{tail}\n"
             "Check that the PyPI registry is reachable (pip config / PIP_INDEX_URL), then run "
             "this command again; it resumes where it stopped.")


def ensure_uv() -> Path:
    """uv (pinned) in a small environment of its own, made with the standard venv module."""
    tools = venvs_dir() / "uv"
    uv = tools / "bin" / "uv"
    if uv.exists():
        return uv
    log(f"installing uv {UV_VERSION} into {tools}")
    run([sys.executable, "-m", "venv", "--clear", str(tools)], "creating a virtual environment "
        "(on Debian: apt-get install python3-venv)")
    run([str(tools / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", f"uv=={UV_VERSION}"], "installing uv")
    return uv


def lock_digest(name: str) -> str:
    lock = ROOT / "requirements" / f"{name}.lock"
    digest = hashlib.sha256(lock.read_bytes())
    if name == "core":
        digest.update((ROOT / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_env(name: str, uv: Path) -> None:
    target = venvs_dir() / name
    stamp = target / ".contour-lock"
    digest = lock_digest(name)
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    started = time.monotonic()
    log(f"installing environment '{name}' from requirements/{name}.lock (first run takes a "
        "few minutes)")
    env = dict(os.environ, VIRTUAL_ENV=str(target), UV_PYTHON_DOWNLOADS="never",
               UV_LINK_MODE="copy")
    if not (target / "bin" / "python").exists():
        run([str(uv), "venv", "-q", "--python", sys.executable, str(target)],
            f"creating environment {name}", env)
    # --compile-bytecode: imports are 2-3x faster when PYTHONDONTWRITEBYTECODE is set
    run([str(uv), "pip", "sync", "-q", "--compile-bytecode", "--python",
         str(target / "bin" / "python"), str(ROOT / "requirements" / f"{name}.lock")],
        f"installing environment {name}", env)
    if name == "core":
        run([str(uv), "pip", "install", "-q", "--no-deps", "--python",
             str(target / "bin" / "python"), "-e", str(ROOT)], "installing contour", env)
    stamp.write_text(digest + "\n")
    log(f"environment '{name}' ready in {time.monotonic() - started:.0f}s")


def setup() -> Path:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3
        fail(f"Python >= 3.11 is needed, this is {sys.version.split()[0]}")
    try:
        venvs_dir().mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {venvs_dir()} ({exc.strerror}); set CONTOUR_VENVS_DIR to a "
             "writable folder")
    uv = ensure_uv()
    for name in ENVIRONMENTS:
        ensure_env(name, uv)
    core = venvs_dir() / "core"
    build_row_codec(core)
    return core


def build_row_codec(core: Path) -> None:
    """The CDC relay's optional native row codec (ingestion/cdc/rowcodec.c): built when a C
    compiler and the Python headers exist, else the relay runs its pure-Python fast path."""
    result = subprocess.run([str(core / "bin" / "python"), "-m", "ingestion.cdc.rowcodec",
                             "--quiet"], cwd=ROOT, capture_output=True, text=True)
    message = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        message = f"building the native row codec failed (exit {result.returncode}): " \
                  f"{message}; the CDC relay uses its pure-Python fast path"
    if message:
        log(message)


def ensure_browser() -> None:
    """Chromium + chromedriver for the Superset browser test (Debian packages, as root).

    Skipped when both are installed; otherwise a clear message and the test skips itself."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        log("chromium/chromedriver missing and cannot be installed here (needs apt-get as "
            "root): the Superset browser test will be skipped; install them with "
            "`apt-get install -y chromium chromium-driver`")
        return
    log("installing chromium and chromium-driver for the Superset browser test (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        run(["apt-get", "update"], "apt-get update", env)
        run(cmd, "installing chromium and chromium-driver", env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if action not in ("setup", "demo", "test"):
        fail(f"unknown action {action!r}; use setup, demo or test (see --help)")
    core = setup()
    if action == "setup":
        log("all environments ready")
        return 0
    if action == "demo":
        program = [str(core / "bin" / "contour"), "demo", *rest]
    else:
        ensure_browser()
        program = [str(core / "bin" / "python"), "-m", "pytest", *rest]
    os.chdir(ROOT)
    log("running: " + " ".join(program))
    os.execv(program[0], program)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
