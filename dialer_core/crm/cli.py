"""``contour crm run``: the CRM's API and workload on the shared simulated clock.

:func:`register` adds the ``crm`` command to the ``contour`` parser; handlers follow the
``func(config, args) -> exit code`` convention of :mod:`contour.cli`. :func:`start` is the same
thing for a process that already owns a clock (the dialer service embedding the CRM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import psycopg

from contour.arguments import iso_moment
from contour.config import Config
from contour.errors import ContourError, ServiceError
from dialer_core import crm
from dialer_core.clock import Clock, newest_recorded, resumed_clock
from dialer_core.crm import reference
from dialer_core.crm.api import CrmApi, make_server
from dialer_core.crm.simulation import Simulation
from dialer_core.crm.workload import WorkloadConfig


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:0)")
    return host, int(port)


def register(subparsers: Any) -> None:
    """Add ``crm run`` to the ``contour`` command's subparsers."""
    crm_parser = subparsers.add_parser(
        "crm", help="the omnichannel CRM source (API + workload)",
        description="The CRM source system: appeals, tickets with SLA, answers.")
    sub = crm_parser.add_subparsers(dest="crm_command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "run", help="serve the CRM API and generate the appeal workload",
        description="Apply the CRM migrations, load the reference data (regions, stores, "
                    "staff, topics), serve the HTTP JSON API and write a realistic appeal "
                    "workload on a simulated clock until Ctrl-C. Deterministic for a seed.")
    p.add_argument("--speed", type=_positive, default=60.0,
                   help="simulated seconds per real second (default 60: a day in 24 min)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--appeals-per-day", type=int, default=WorkloadConfig.appeals_per_day,
                   help="mean appeals per simulated day (default %(default)s)")
    p.add_argument("--start", type=iso_moment, default=None,
                   help="simulated start time, ISO 8601 (default: now)")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 0),
                   help="API address HOST:PORT (default 127.0.0.1:0, a free port)")
    p.add_argument("--hours", type=_positive, default=None,
                   help="stop after this many simulated hours (default: run until Ctrl-C)")
    p.set_defaults(func=cmd_run)


@dataclass
class Running:
    server: ThreadingHTTPServer
    simulation: Simulation
    url: str

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.simulation.conn.close()


def start(dsn: str, clock: Clock, workload: WorkloadConfig,
          listen: tuple[str, int] = ("127.0.0.1", 0)) -> Running:
    """Migrate, load reference data, start the API thread; returns the simulation to run."""
    try:
        crm.migrate(dsn)
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise ServiceError(f"cannot reach the crm database ({exc}); run `contour up postgres`"
                           ) from exc
    ref = reference.build(workload.scale)
    reference.load(conn, ref)
    try:
        server = make_server(CrmApi(dsn, clock), *listen)
    except OSError as exc:
        conn.close()
        raise ContourError(f"cannot listen on {listen[0]}:{listen[1]}: {exc}") from exc
    threading.Thread(target=server.serve_forever, name="crm-api", daemon=True).start()
    host, port = server.server_address[:2]
    return Running(server, Simulation(conn, ref, workload), f"http://{host}:{port}")


#: where the newest simulated time of a previous run is recorded (see resumed_clock)
RECORDED = ("appeals.updated_at", "tickets.updated_at")


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    newest = None if args.start else newest_recorded(config.pg_dsn(crm.DATABASE), RECORDED)
    clock = resumed_clock(args.speed, args.start, newest,
                          lambda m: print(f"crm: {m}", flush=True))
    workload = WorkloadConfig(appeals_per_day=args.appeals_per_day, seed=args.seed)
    running = start(config.pg_dsn(crm.DATABASE), clock, workload, args.listen)
    print(f"crm: API on {running.url}/ ; simulated time {clock.now():%Y-%m-%d %H:%M} UTC "
          f"at x{args.speed:g}; Ctrl-C stops", flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if args.hours is not None:
            loop.call_later(args.hours * 3600 / args.speed, stop.set)
        await running.simulation.run(clock, stop)

    try:
        asyncio.run(main())
    finally:
        running.close()
    stats = running.simulation.stats
    print(f"crm: stopped at {clock.now():%Y-%m-%d %H:%M} UTC: {stats}", file=sys.stderr)
    return 0
