"""``contour crm run``: argument validation and a short real run against the crm database."""

from __future__ import annotations

import argparse

import psycopg
import pytest

from dialer_core.crm import cli
from tests.conftest import Stack


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="contour")
    cli.register(root.add_subparsers(dest="command", required=True))
    return root


def test_defaults() -> None:
    args = parser().parse_args(["crm", "run"])
    assert (args.speed, args.seed, args.appeals_per_day, args.listen, args.hours, args.start) \
        == (60.0, 1, 40_000, ("127.0.0.1", 0), None, None)
    assert args.func is cli.cmd_run


@pytest.mark.parametrize("argv", [
    ["crm", "run", "--speed", "0"], ["crm", "run", "--speed", "fast"],
    ["crm", "run", "--listen", "nowhere"], ["crm", "run", "--start", "yesterday"],
    ["crm"],
])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.integration
def test_short_run_writes_appeals_to_the_crm_database(pg: Stack) -> None:
    args = parser().parse_args(["crm", "run", "--speed", "7200", "--hours", "1", "--seed", "5",
                                "--appeals-per-day", "4000", "--start", "2026-11-23T06:00"])
    assert args.func(pg.config, args) == 0
    with psycopg.connect(pg.config.pg_dsn("crm")) as conn:
        (appeals,) = conn.execute("SELECT count(*) FROM appeals").fetchone()  # type: ignore[misc]
        (stores,) = conn.execute("SELECT count(*) FROM stores").fetchone()  # type: ignore[misc]
    assert appeals > 50 and stores == 16_000
