"""``contour warehouse …``: the operations the Airflow DAGs run (see :mod:`contour.warehouse`)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from contour.config import Config
from contour.refresh import EXPORT_MODES
from contour.warehouse import alert, health, maintain, mark_freshness, reconcile, record_freshness
from ingestion.status import configure_logging


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    wh = sub.add_parser("warehouse", help="warehouse operations: health gate, freshness, "
                                          "alerts, reconciliation, maintenance",
                        description="What the Airflow DAGs run; each also works by hand.")
    actions = wh.add_subparsers(dest="warehouse_command", required=True, metavar="ACTION")

    check = actions.add_parser("check", help="is CDC streaming and is landing keeping up?",
                               description="Exit 1 with what is wrong if a source's "
                                           "replication slot has no relay or a partition has "
                                           "stalled with a backlog.")
    check.add_argument("--stall-seconds", type=float, default=120,
                       help="a backlog without progress for this long is a stall")
    check.set_defaults(func=cmd_check)

    fresh = actions.add_parser("freshness", help="record mart freshness for a realtime run",
                               description="`mark` (after export, before dbt) stores the newest "
                                           "source commit exported per source; `record` (after "
                                           "dbt) writes ops.freshness per mart.")
    fresh.add_argument("stage", choices=("mark", "record"))
    fresh.add_argument("--run-id", required=True, help="the DAG run id tying both stages")
    fresh.add_argument("--manifest", default=None,
                       help="dbt manifest.json for mart lineage (default: the state folder's)")
    fresh.set_defaults(func=cmd_freshness)

    ref = actions.add_parser(
        "refresh", help="one realtime cycle: export, mark, dbt run, record freshness",
        description="What contour_realtime runs: export ClickHouse increments to staging, "
                    "mark the newest source commit exported, one `dbt run` of the selection "
                    "(views only when the dbt project changed), record ops.freshness per mart. "
                    "Exit 1 if a step fails.")
    ref.add_argument("--run-id", default=None,
                     help="id tying the freshness rows to this cycle (default: manual-<time>)")
    ref.add_argument("--select", default="tag:realtime", help="dbt selection (default "
                                                               "tag:realtime)")
    ref.add_argument("--export", choices=EXPORT_MODES, default="auto",
                     help="auto (default): export unless the exporter service (`contour "
                          "export run`) passed within the last 15 s; always; never")
    ref.add_argument("--test-window", type=_interval, default=None, metavar="INTERVAL",
                     help="`dbt build` instead of `dbt run`: the models' data tests too, on "
                          "the rows exported within INTERVAL (e.g. '15 minutes')")
    ref.set_defaults(func=cmd_refresh)

    al = actions.add_parser("alert", help="record a failure (ops.alerts, log, "
                                          "CONTOUR_ALERT_COMMAND)")
    al.add_argument("error")
    for name in ("dag", "task", "run"):
        al.add_argument(f"--{name}", default="")
    al.add_argument("--try-number", type=int, default=0)
    al.set_defaults(func=cmd_alert)

    rec = actions.add_parser("reconcile", help="compare row counts: source, ClickHouse, staging",
                             description="Row counts per table, and rows and key sums per UTC "
                                         "day of the fact tables, in the source databases, "
                                         "ClickHouse and staging (stored in "
                                         "ops.reconciliation[_daily]). Exit 1 listing what "
                                         "still differs after the retries (changes in flight "
                                         "settle first).")
    rec.add_argument("--attempts", type=int, default=4)
    rec.add_argument("--pause", type=float, default=20.0, help="seconds between attempts")
    rec.add_argument("--table", action="append", default=None,
                     help="<source>__<table> to check (repeatable; default all)")
    rec.set_defaults(func=cmd_reconcile)

    mt = actions.add_parser("maintain", help="ClickHouse merges and history retention; "
                                             "VACUUM ANALYZE of staging and marts")
    mt.add_argument("--history-days", type=int, default=None,
                    help="override CONTOUR_HISTORY_RETENTION_DAYS")
    mt.add_argument("--airflow-days", type=int, default=None,
                    help="override CONTOUR_AIRFLOW_RETENTION_DAYS (0: keep Airflow's metadata)")
    mt.set_defaults(func=cmd_maintain)


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    checks = health(config, args.stall_seconds)
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<14} {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


def default_manifest(config: Config) -> str:
    return str(config.state_dir / "dbt" / "target" / "manifest.json")


def cmd_freshness(config: Config, args: argparse.Namespace) -> int:
    if args.stage == "mark":
        for source, ts in mark_freshness(config, args.run_id).items():
            print(f"{source}: newest source commit exported {ts}")
        return 0
    manifest = Path(args.manifest or default_manifest(config))
    for mart, age in record_freshness(config, args.run_id, manifest):
        print(f"{mart}: {age:.1f} s behind the sources")
    return 0


def _interval(text: str) -> str:
    """An interval for --test-window: a count and a unit, e.g. '15 minutes'."""
    if not re.fullmatch(r"\d+ ?(second|minute|hour|day)s?", text.strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an interval: give a count and a unit, e.g. '15 minutes'")
    return text.strip()


def cmd_refresh(config: Config, args: argparse.Namespace) -> int:
    from contour.cli import _progress
    from contour.refresh import refresh

    run_id = args.run_id or f"manual-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    refresh(config, run_id, args.select, export=args.export, test_window=args.test_window,
            progress=_progress)
    return 0


def cmd_alert(config: Config, args: argparse.Namespace) -> int:
    configure_logging()
    alert(config, args.error, dag_id=args.dag, task_id=args.task, run_id=args.run,
          try_number=args.try_number)
    return 0


def cmd_reconcile(config: Config, args: argparse.Namespace) -> int:
    counts, days = reconcile(config, args.attempts, args.pause,
                             set(args.table) if args.table else None)
    print(f"{'table':<40} {'source':>10} {'clickhouse':>10} {'staging':>10}")
    for c in counts:
        mark = "" if c.matches else "   <- differs"
        print(f"{c.source + '.' + c.table:<40} {c.source_rows!s:>10} {c.clickhouse_rows!s:>10} "
              f"{c.staging_rows!s:>10}{mark}")
    bad_days = [d for d in days if not d.matches]
    print(f"\nper UTC day (rows, sum of keys) of {len({(d.source, d.table) for d in days})} "
          f"fact tables: {len(days) - len(bad_days)} of {len(days)} table-days match")
    for d in bad_days:
        print(f"{d.source + '.' + d.table:<30} {d.day}  source {d.layers[0]}  clickhouse "
              f"{d.layers[1]}  staging {d.layers[2]}   <- differs")
    bad = [c for c in counts if not c.matches]
    if bad or bad_days:
        print(f"{len(bad)} table(s) and {len(bad_days)} table-day(s) differ after "
              f"{args.attempts} checks", file=sys.stderr)
        return 1
    return 0


def cmd_maintain(config: Config, args: argparse.Namespace) -> int:
    for line in maintain(config, args.history_days, args.airflow_days):
        print(line)
    return 0
