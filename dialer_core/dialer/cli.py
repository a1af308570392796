"""``contour dialer run|seed``: the dialer service and its demo load from the command line.

``register(subparsers)`` adds the commands to the ``contour`` parser; each command is
``func(config, args) -> exit code`` like the other ``contour`` commands.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from datetime import UTC, datetime

from contour.arguments import iso_moment
from contour.config import Config
from dialer_core.clock import newest_recorded, resumed_clock
from dialer_core.dialer.db import connect, migrate_dialer
from dialer_core.dialer.seed import demo_spec, seed
from dialer_core.dialer.service import ServiceOptions, run

TABLES = ("icp_steps", "hopper_ticks", "call_attempts", "callbacks", "leads", "buckets",
          "queue_members", "queues", "operator_status_log", "caller_id_routes",
          "scheduler_rules", "campaigns", "holidays", "calendars", "operators")


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    """An argparse type accepting only numbers > 0 (a zero speed or lead count is a typo)."""

    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operators", type=_positive(int), default=200,
                   help="operators in the demo load (default 200)")
    p.add_argument("--leads", type=_positive(int), default=1_000_000,
                   help="leads in the demo load (default 1,000,000)")
    p.add_argument("--campaigns", type=_positive(int), default=3,
                   help="campaigns in the demo load (default 3)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dialer = sub.add_parser("dialer", help="the outbound dialer service and its demo load",
                            description="Run the dialer (campaigns, batcher, strategies, "
                                        "callbacks, simulated telephony, inbound ICP) against "
                                        "the dialer database.")
    actions = dialer.add_subparsers(dest="dialer_command", required=True, metavar="ACTION")
    p = actions.add_parser("run", help="run the dialer in the foreground until Ctrl-C/SIGTERM",
                           description="Apply migrations, seed the demo load if the database "
                                       "has no campaign, then dial.")
    _load_options(p)
    p.add_argument("--speed", type=_positive(float), default=1.0,
                   help="simulated seconds per real second (default 1; 60 = a minute a second)")
    p.add_argument("--start", type=iso_moment, default=None,
                   help="simulated start time, ISO 8601 (default: now); a database holding "
                        "later events resumes from the newest (time never runs backwards)")
    p.add_argument("--api-port", type=int, default=None,
                   help="serve the operator workstation API on this loopback port (0: any)")
    p.add_argument("--inbound-per-minute", type=float, default=3.0,
                   help="average inbound ICP calls per simulated minute (default 3)")
    p.add_argument("--no-crm-link", dest="crm_link", action="store_false",
                   help="do not record handled calls as CRM appeals (database crm); by "
                        "default they are, and an unavailable CRM is logged, never fatal")
    p.set_defaults(func=cmd_run)
    p = actions.add_parser("seed", help="create the demo load (COPY)",
                           description="Create campaigns, rules, routes, operators, leads and "
                                       "callbacks. Refuses a database that already has "
                                       "campaigns unless --replace is given.")
    _load_options(p)
    p.add_argument("--replace", action="store_true",
                   help="delete every dialer row first")
    p.set_defaults(func=cmd_seed)


def _seed(config: Config, args: argparse.Namespace, replace: bool) -> int:
    dsn = config.pg_dsn("dialer")
    migrate_dialer(dsn, print)
    with connect(dsn) as conn:
        has = conn.execute("SELECT count(*) FROM campaigns").fetchone()
        if has and has[0] and not replace:
            print(f"dialer: the database already has {has[0]} campaigns; use --replace")
            return 1
        if replace:
            conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        spec = demo_spec(args.operators, args.campaigns, args.leads, args.seed)
        counts = seed(conn, spec, datetime.now(UTC).replace(microsecond=0), print)
    print("dialer: seeded " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


#: where the newest simulated time of a previous run is recorded (see resumed_clock)
RECORDED = ("operator_status_log.started_at", "operator_status_log.ended_at",
            "call_attempts.updated_at")


def cmd_seed(config: Config, args: argparse.Namespace) -> int:
    return _seed(config, args, args.replace)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    # a fresh database has no tables yet: migrate before asking whether it holds a load
    migrate_dialer(config.pg_dsn("dialer"))
    with connect(config.pg_dsn("dialer")) as conn:
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM campaigns)").fetchone()
    if empty and empty[0]:
        _seed(config, args, replace=False)
    newest = newest_recorded(config.pg_dsn("dialer"), RECORDED)
    clock = resumed_clock(args.speed, args.start, newest,
                          lambda m: print(f"dialer: {m}", flush=True))
    options = ServiceOptions(seed=args.seed, api_port=args.api_port,
                             inbound_per_minute=args.inbound_per_minute,
                             crm_link=args.crm_link)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(config, clock, stop, options,
                  on_start=lambda h: h.api_url and print(f"dialer: workstation API {h.api_url}"))

    asyncio.run(main())
    return 0
