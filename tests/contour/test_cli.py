"""The contour command line: help everywhere, and one clear line for every kind of bad input.

These run the real command in a subprocess; they need no running service.
"""

from __future__ import annotations

import socket
from pathlib import Path

from contour.cli import build_parser
from contour.config import SERVICES, WORKLOAD
from tests.conftest import run_contour, stack_env

COMMANDS = ["up", "down", "status", "logs", "demo", "supervise", "reset"]


def test_help_for_the_command_and_every_subcommand(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    top = run_contour(env, "--help")
    for command in COMMANDS:
        assert command in top.stdout
        sub = run_contour(env, command, "--help")
        assert sub.stdout.startswith(f"usage: contour {command}")
    assert set(COMMANDS) <= set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001


def _one_line_error(result, needle: str) -> None:  # noqa: ANN001
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("contour: error: ")
    assert needle in lines[0], lines[0]


def test_wrong_env_value(tmp_path: Path) -> None:
    env = stack_env(tmp_path) | {"CONTOUR_KAFKA_BOOTSTRAP": "nonsense"}
    result = run_contour(env, "status", check=False)
    _one_line_error(result, "CONTOUR_KAFKA_BOOTSTRAP='nonsense'")
    assert result.returncode == 2


def test_occupied_port(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = stack_env(tmp_path) | {"CONTOUR_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
        result = run_contour(env, "up", "kafka", check=False)
    _one_line_error(result, f"port {port} on 127.0.0.1 is already in use")
    assert "CONTOUR_KAFKA_BOOTSTRAP" in result.stderr


def test_missing_binary(tmp_path: Path) -> None:
    env = stack_env(tmp_path) | {"CONTOUR_PG_BIN": str(tmp_path / "no-such-bin")}
    result = run_contour(env, "up", "postgres", check=False)
    _one_line_error(result, "server binary")
    assert "CONTOUR_PG_BIN" in result.stderr


def test_unwritable_state_folder(tmp_path: Path) -> None:
    # A path below a regular file can be created by nobody, root included.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = stack_env(blocker / "state")
    result = run_contour(env, "up", "kafka", check=False)
    _one_line_error(result, "is not writable")
    assert "CONTOUR_STATE_DIR" in result.stderr


def test_reset_refuses_without_confirmation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "secrets.json").write_text("{}")
    result = run_contour(stack_env(state), "reset", check=False)
    assert result.returncode == 2 and "--yes" in result.stderr
    assert state.exists()
    run_contour(stack_env(state), "reset", "--yes")
    assert not state.exists()


def test_status_of_a_stopped_stack_exits_non_zero(tmp_path: Path) -> None:
    result = run_contour(stack_env(tmp_path), "status", check=False)
    assert result.returncode == 1
    rows = result.stdout.splitlines()[1:1 + len(SERVICES)]
    states = {line.split()[0]: line.split()[1] for line in rows}
    assert states == {s: "idle" if s in WORKLOAD else "stopped" for s in SERVICES}


def test_an_unreachable_service_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Nothing listens on the configured ports: commands that need ClickHouse or PostgreSQL
    say which one is unreachable and how to start it (exit 3)."""
    env = stack_env(tmp_path)
    clickhouse = run_contour(env, "export", "once", check=False)
    _one_line_error(clickhouse, "ClickHouse is not reachable")
    assert "contour up clickhouse" in clickhouse.stderr and clickhouse.returncode == 3
    postgres = run_contour(env, "warehouse", "freshness", "mark", "--run-id", "r", check=False)
    _one_line_error(postgres, "not reachable")
    assert "PostgreSQL" in postgres.stderr and "Connection refused" in postgres.stderr


def test_a_database_that_goes_away_mid_command_is_one_line_too() -> None:
    """A server killed under a running command raises a subclass of OperationalError
    (``AdminShutdown``: "terminating connection due to unexpected postmaster exit")."""
    import psycopg

    from contour.errors import unreachable_service

    message = unreachable_service(psycopg.errors.AdminShutdown(
        "terminating connection due to unexpected postmaster exit"))
    assert message is not None and message.startswith("PostgreSQL is not reachable")
    assert "unexpected postmaster exit" in message
    assert unreachable_service(psycopg.errors.UniqueViolation("duplicate key")) is None
