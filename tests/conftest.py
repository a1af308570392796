"""Shared fixtures.

Integration tests use the real embedded services, started once per test run by the real
``contour up`` command in a private state folder on free loopback ports, so that a running demo
on the default ports is never touched. The stack is stopped at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from contour.config import Config
from contour.stack import private_env

ROOT = Path(__file__).resolve().parent.parent


def stack_env(state_dir: Path) -> dict[str, str]:
    """An environment with a private state folder and free ports for every service."""
    # the DAGs would refresh the marts continuously (dbt, export) under every test: paused
    # here; a test that needs them unpauses them
    return private_env(state_dir) | {"CONTOUR_AIRFLOW_DAGS_PAUSED": "true"}


def run_contour(env: dict[str, str], *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``contour`` command line."""
    result = subprocess.run([sys.executable, "-m", "contour", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"contour {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@dataclass
class Stack:
    env: dict[str, str]
    config: Config

    def contour(self, *args: str, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run_contour(self.env, *args, check=check, timeout=timeout)

    def require(self, *services: str) -> Stack:
        """Make sure these services run (``contour up`` is a no-op for running ones)."""
        result = self.contour("up", *services, timeout=900)
        sys.stderr.write(result.stdout)
        return self


@contextmanager
def private_stack(*names: str) -> Iterator[Stack]:
    """A stack of its own (state folder, ports) for tests that restart or kill services, or
    need a pipeline no other test has touched; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="contour-test-"))
    env = stack_env(root / "state")
    stack = Stack(env, Config.from_env(env))
    try:
        yield stack.require(*names)
    finally:
        _stop_and_remove(env, root)


def _stop_and_remove(env: dict[str, str], root: Path) -> None:
    """``contour down``, then delete the state folder, unless CONTOUR_TEST_KEEP_STATE is set
    (the services' logs stay there to read after a failure)."""
    run_contour(env, "down", check=False, timeout=300)
    if os.environ.get("CONTOUR_TEST_KEEP_STATE"):
        sys.stderr.write(f"kept the test stack's state (logs in its logs folder): {root}\n")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def services() -> Iterator[Stack]:
    """One private stack for the whole run; tests start the services they need through it.

    Its state lives in its own temp folder, not pytest's tmp_path: a concurrent pytest run
    prunes old basetemp folders, which would delete a live cluster's files.
    """
    root = Path(tempfile.mkdtemp(prefix="contour-test-"))
    env = stack_env(root / "state")
    stack = Stack(env, Config.from_env(env))
    try:
        yield stack
    finally:
        _stop_and_remove(env, root)


@pytest.fixture(scope="session")
def stack(services: Stack) -> Stack:
    """Every embedded service up."""
    return services.require()


@pytest.fixture(scope="session")
def pg(services: Stack) -> Stack:
    """Only PostgreSQL up (fast); ``pg.config.pg_dsn(db)`` reaches it."""
    return services.require("postgres")


@pytest.fixture(scope="session")
def pg_kafka(services: Stack) -> Stack:
    """PostgreSQL and the Kafka broker up."""
    return services.require("postgres", "kafka")


def wait_for(check: Callable[[], bool], timeout: float = 60,
             explain: Callable[[], str] = lambda: "") -> None:
    """Poll ``check`` every 0.3 s until it holds; fail after ``timeout`` with ``explain()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"condition not met in {timeout:.0f}s {explain()}")
