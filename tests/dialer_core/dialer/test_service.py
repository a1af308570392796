"""The asyncio service and the command line, against a real dialer database."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

import psycopg

from contour.config import Config
from dialer_core.clock import ManualClock
from dialer_core.dialer import cli
from dialer_core.dialer.seed import demo_spec, seed
from dialer_core.dialer.service import ServiceOptions, run

from .conftest import T0

START = T0.replace(hour=9)  # 12:00 Moscow: inside the window for most zones


def config_for(pg, dsn: str) -> Config:  # type: ignore[no-untyped-def]
    return Config.from_env({**pg.env, "CONTOUR_PG_DIALER_DSN": dsn})


def test_service_runs_simulated_minutes_and_writes_rows(pg, dialer_dsn: str,  # type: ignore[no-untyped-def]
                                                        db: psycopg.Connection):
    seed(db, demo_spec(operators=20, campaigns=3, leads=3000), START)
    clock = ManualClock(START)
    stop = asyncio.Event()

    async def main() -> None:
        async def stopper() -> None:
            while clock.now() < START + timedelta(minutes=10):
                await asyncio.sleep(0)
            stop.set()

        task = asyncio.create_task(stopper())
        await run(config_for(pg, dialer_dsn), clock, stop,
                  ServiceOptions(seed=3, inbound_per_minute=2.0), log=lambda _: None)
        await task

    asyncio.run(main())
    counts = dict(db.execute("SELECT direction, count(*) FROM call_attempts GROUP BY 1"))
    assert counts["outbound"] > 50 and counts["inbound"] > 5
    # the start tick and one per minute boundary crossed (09:01 … 09:09)
    assert db.execute("SELECT count(DISTINCT tick_at) FROM hopper_ticks").fetchone() == (10,)
    # every inbound call went through ICP (the reference endpoint) and its route; those routed
    # to a queue were connected to operators (or are still in progress at the stop)
    assert db.execute(
        "SELECT count(*) FROM call_attempts a WHERE direction = 'inbound' AND NOT EXISTS"
        " (SELECT 1 FROM icp_steps s WHERE s.attempt_id = a.attempt_id)").fetchone() == (0,)
    connected = db.execute("SELECT count(*) FROM call_attempts WHERE direction = 'inbound'"
                           " AND operator_id IS NOT NULL AND connected_at >= queued_at"
                           ).fetchone()
    assert connected is not None and connected[0] > 0
    assert db.execute("SELECT count(*) FROM icp_steps WHERE fallback").fetchone() == (0,)
    # the status log tiles each operator's time: no two open intervals
    assert db.execute("SELECT max(n) FROM (SELECT count(*) n FROM operator_status_log"
                      " WHERE ended_at IS NULL GROUP BY operator_id) x").fetchone() == (1,)


def test_cli_seed_refuses_a_seeded_database(pg, dialer_dsn: str,  # type: ignore[no-untyped-def]
                                            db: psycopg.Connection, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    config = config_for(pg, dialer_dsn)
    args = parser.parse_args(["dialer", "seed", "--leads", "5000", "--operators", "12"])
    assert args.func(config, args) == 0
    assert db.execute("SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM operators),"
                      " (SELECT count(*) FROM campaigns)").fetchone() == (5000, 12, 3)
    assert args.func(config, args) == 1
    assert "use --replace" in capsys.readouterr().out
    args = parser.parse_args(["dialer", "seed", "--leads", "100", "--operators", "2",
                              "--campaigns", "1", "--replace"])
    assert args.func(config, args) == 0
    assert db.execute("SELECT (SELECT count(*) FROM leads), (SELECT count(*) FROM operators)"
                      ).fetchone() == (100, 2)


def test_cli_rejects_bad_numbers(capsys):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    for bad in (["dialer", "run", "--speed", "0"], ["dialer", "seed", "--leads", "-1"]):
        try:
            parser.parse_args(bad)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(bad)
    assert "must be > 0" in capsys.readouterr().err


def test_run_command_dials_at_speed_and_stops_on_sigterm(pg, dialer_dsn: str,  # type: ignore[no-untyped-def]
                                                         db: psycopg.Connection):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    # the CRM link is on by default in `dialer run`; its database does not exist here: the
    # dialer says so once and dials on (test_crm_link.py covers a real CRM)
    env = {**pg.env, "CONTOUR_PG_DIALER_DSN": dialer_dsn,
           "CONTOUR_PG_CRM_DSN": pg.config.pg_dsn("no_such_crm_db")}
    seeded = subprocess.run([sys.executable, "-m", "dialer_core.dialer", "seed", "--leads",
                             "20000", "--operators", "20"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    proc = subprocess.Popen([sys.executable, "-m", "dialer_core.dialer", "run", "--speed", "60",
                             "--api-port", "0"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "dialer: workstation API http://127.0.0.1:" in out and "dialer: stopped" in out
    assert out.count("dialer: CRM link off (OperationalError") == 1, out
    # ~6 real seconds at speed 60 = several simulated minutes of batcher ticks
    ticks = db.execute("SELECT count(DISTINCT tick_at) FROM hopper_ticks").fetchone()
    assert ticks is not None and ticks[0] >= 3
