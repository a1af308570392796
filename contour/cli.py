"""The ``contour`` command: run and inspect the embedded stack."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from contour.config import SERVICES, WORKLOAD, Config
from contour.errors import ContourError, ServiceError, unreachable_service
from contour.stack import Stack

_print_lock = threading.Lock()


def _progress(message: str) -> None:
    with _print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB" if value else "-"


# ---------------------------------------------------------------------- commands
def cmd_up(config: Config, args: argparse.Namespace) -> int:
    started = time.monotonic()
    Stack(config).up(args.services, _progress)
    _progress(f"stack up in {time.monotonic() - started:.1f}s")
    print_urls(config)
    return 0


def cmd_down(config: Config, args: argparse.Namespace) -> int:
    Stack(config).down(args.services, _progress)
    return 0


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    statuses = Stack(config).status()
    if args.json:
        print(json.dumps([{
            "service": s.name, "state": s.state, "healthy": s.healthy, "url": s.url,
            "managed": s.managed,
            "processes": [{"name": p.name, "pid": p.pid, "rss_bytes": p.rss,
                           "running": p.running, "crashed": p.crashed} for p in s.processes],
        } for s in statuses], indent=2))
    else:
        print(f"{'SERVICE':<11} {'STATE':<22} {'PID':<16} {'MEMORY':>9}  URL")
        for s in statuses:
            pids = ",".join(str(p.pid) for p in s.processes if p.pid) or "-"
            rss = sum(p.rss for p in s.processes)
            print(f"{s.name:<11} {s.state:<22} {pids:<16} {_mib(rss):>9}  {s.url}")
        print(f"\nstate folder: {config.state_dir}")
        if config.secrets_file.exists():
            print(f"admin login (Airflow, Superset): {config.admin_user} / "
                  f"{config.admin_password()}")
    bad = [s for s in statuses if not s.healthy and s.state != "idle"]
    return 1 if bad else 0


def cmd_logs(config: Config, args: argparse.Namespace) -> int:
    service = Stack(config).service_for_process(args.service)
    processes = (service.process_names() if args.service == service.name else [args.service])
    for name in processes:
        if len(processes) > 1:
            print(f"==> {service.log_path(name)} <==")
        print(service.log_tail(name, args.lines))
    if args.follow:
        _follow([service.log_path(n) for n in processes])
    return 0


def _follow(paths: list) -> None:  # type: ignore[type-arg]
    handles = []
    for path in paths:
        fh = open(path, errors="replace")  # noqa: SIM115 - closed on exit
        fh.seek(0, 2)
        handles.append(fh)
    try:
        while True:
            for fh in handles:
                line = fh.readline()
                while line:
                    sys.stdout.write(line)
                    line = fh.readline()
            sys.stdout.flush()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def cmd_demo(config: Config, args: argparse.Namespace) -> int:
    started = time.monotonic()
    stack = Stack(config)
    stack.up(None, _progress)
    _progress(f"stack up in {time.monotonic() - started:.1f}s")
    stack.up(list(WORKLOAD), _progress)
    _progress("workload: the dialer (first start seeds 200 operators, 3 campaigns, 1,000,000 "
              f"leads) and the CRM (40,000 appeals a simulated day) run at "
              f"{config.demo_speed:g}x speed (CONTOUR_DEMO_SPEED)")
    print_urls(config)
    if not args.detach:
        _supervise_until_interrupted(stack, args.interval)
    return 0


def cmd_supervise(config: Config, args: argparse.Namespace) -> int:
    _supervise_until_interrupted(Stack(config), args.interval)
    return 0


def _supervise_until_interrupted(stack: Stack, interval: float) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stack.supervise(interval, _progress, stop)
    _progress("stopped watching; the services keep running (`contour down` stops them)")


def cmd_reset(config: Config, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print("contour: error: reset deletes every service's data in "
                  f"{config.state_dir}; run `contour reset --yes` to confirm", file=sys.stderr)
            return 2
        answer = input(f"Stop all services and delete {config.state_dir} with all data? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    Stack(config).reset(_progress)
    return 0


def print_urls(config: Config) -> None:
    ch = config.clickhouse_endpoint
    pg = config.pg_endpoint
    print(f"""
  Superset (dashboards)     {config.superset_url}/
  Airflow (orchestration)   {config.airflow_url}/
  ClickHouse (HTTP)         {config.clickhouse_url}/   (host {ch.host}, port {ch.port})
  PostgreSQL                {pg.host}:{pg.port}  databases: dialer, crm, warehouse
  Kafka bootstrap           {config.kafka_bootstrap}

  login for Superset and Airflow: {config.admin_user} / {config.admin_password()}
  (also shown by `contour status`; stored in {config.secrets_file})
""", flush=True)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contour",
        description="Contour: real-time reporting warehouse for contact centres. Runs the "
                    "embedded stack (PostgreSQL, Kafka, ClickHouse, Airflow, Superset) on "
                    "loopback; configuration comes from CONTOUR_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def services_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("services", nargs="*", metavar="SERVICE",
                       help=f"services to act on (default: all of {', '.join(SERVICES)})")

    p = sub.add_parser("up", help="start the services (idempotent; repairs crashed ones)",
                       description="Start every service that is not running and wait until all "
                                   "are healthy. Running services are left alone; a crashed one "
                                   "is restarted.")
    services_arg(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop the services", description="Stop services and every "
                       "process they started. Data stays in the state folder.")
    services_arg(p)
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="show each service with state, pid, memory and URL",
                       description="Show each service's state, pids, resident memory and URL, "
                                   "and the admin login. Exit code 1 if any is unhealthy.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("logs", help="print a service's log",
                       description="Print the end of a service's log (a service name, or one "
                                   "process such as airflow-scheduler).")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("-n", "--lines", type=int, default=50, help="lines to show (default 50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("demo", help="start everything with the demo workload and print the URLs",
                       description="Bring the stack up, start the dialer and CRM workload, and "
                                   "print what to open; then watch the services and restart "
                                   "any that crashes until Ctrl-C (services keep running).")
    p.add_argument("--detach", action="store_true",
                   help="return once everything is up instead of watching the services")
    p.add_argument("--interval", type=float, default=5.0,
                   help="seconds between checks while watching (default 5)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("supervise", help="watch the services and restart any that crashes",
                       description="Stay in the foreground and restart any managed service "
                                   "whose process died. Ctrl-C or SIGTERM stops watching; the "
                                   "services keep running.")
    p.add_argument("--interval", type=float, default=5.0,
                   help="seconds between checks (default 5)")
    p.set_defaults(func=cmd_supervise)

    p = sub.add_parser("reset", help="stop everything and delete the state folder",
                       description="Stop every service and delete the state folder with all "
                                   "data. Asks first unless --yes is given.")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_reset)

    from contour import bench, chaos, parity, warehouse_cli
    from contour import dbt as dbt_cli
    from contour import superset_cli as superset_assets_cli
    from dialer_core.crm import cli as crm_cli
    from dialer_core.dialer import cli as dialer_cli
    from ingestion.cdc import cli as cdc_cli
    from ingestion.export import cli as export_cli
    from ingestion.landing import cli as landing_cli

    dialer_cli.register(sub)
    crm_cli.register(sub)
    cdc_cli.register(sub)
    landing_cli.register(sub)
    export_cli.register(sub)
    warehouse_cli.register(sub)
    dbt_cli.register(sub)
    superset_assets_cli.register(sub)
    chaos.register(sub)
    parity.register(sub)
    bench.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # a client's own log line ("Unexpected Http Driver Exception") would precede the one-line
    # error when no logging is set up; services that set it up still get it
    logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())
    try:
        config = Config.from_env()
        return int(args.func(config, args))
    except ContourError as exc:
        print(f"contour: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        unreachable = unreachable_service(exc)
        if unreachable is None:
            raise
        print(f"contour: error: {unreachable}", file=sys.stderr)
        return ServiceError.exit_code
    except KeyboardInterrupt:
        print("contour: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `contour status | head`: the reader left, nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
