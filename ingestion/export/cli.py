"""``contour export …``: ClickHouse raw tables → PostgreSQL ``warehouse.staging``."""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from contour.arguments import iso_moment
from contour.config import Config
from contour.errors import ConfigError
from ingestion.export import heartbeat_path
from ingestion.status import read_status, run_in_foreground

#: a status file older than this fails ``contour export status --check``
STALE_AFTER_S = 60.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = sub.add_parser(
        "export", help="export ClickHouse raw increments to PostgreSQL staging",
        description="Merge the rows the loader landed in ClickHouse raw.<source>__<table> "
                    "into PostgreSQL warehouse.staging.<source>__<table> (current state by "
                    "primary key, deletes flagged in _is_deleted), moving each table's "
                    "watermark in the same transaction.")
    actions = export.add_subparsers(dest="export_command", required=True, metavar="ACTION")

    def tuning(p: argparse.ArgumentParser) -> None:
        p.add_argument("--chunk-rows", type=int, default=100_000,
                       help="raw rows per PostgreSQL transaction (default 100000)")
        p.add_argument("--lookback", type=float, default=2.0, metavar="SECONDS",
                       help="also re-read rows ingested this long before the watermark "
                            "(default 2; harmless: merges are version-guarded)")

    once = actions.add_parser(
        "once", help="one pass over every table, then exit (what the realtime DAG runs)",
        description="Export what each table has past its watermark, then exit. Large "
                    "backfills print their progress (rows done, rows/s).")
    once.add_argument("--table", action="append", metavar="NAME",
                      help="only this raw table, e.g. dialer__call_attempts (repeatable)")
    once.add_argument("--source", action="append", metavar="NAME",
                      help="only the tables of this source, e.g. crm (repeatable); then "
                           "--table may name the source's table, e.g. appeals")
    once.add_argument("--since", type=iso_moment, metavar="TIMESTAMP",
                      help="re-export (backfill) the changes committed in the source from "
                           "this ISO time on, whatever the watermark; merges stay "
                           "version-guarded and the watermark is left alone")
    once.add_argument("--until", type=iso_moment, metavar="TIMESTAMP",
                      help="with --since: end of the period (exclusive)")
    tuning(once)
    once.set_defaults(func=cmd_once)

    run = actions.add_parser(
        "run", help="export continuously in the foreground until Ctrl-C/SIGTERM",
        description="Export every --interval seconds the tables whose raw data changed; "
                    "rewrite $CONTOUR_STATE_DIR/run/export.heartbeat after every pass "
                    "and chunk; after a failure reconnect and resume from the watermarks.")
    run.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                     help="pause between passes (default 2)")
    tuning(run)
    run.set_defaults(func=cmd_run)

    status = actions.add_parser(
        "status", help="each table's watermark, rows exported and rows waiting (JSON)",
        description="Print the exporter's heartbeat and, per table, its watermark, the rows "
                    "exported so far and the raw rows past the watermark (JSON).")
    status.add_argument("--check", action="store_true",
                        help=f"exit 1 unless `contour export run` reported within the last "
                             f"{STALE_AFTER_S:.0f} s (a container health check)")
    status.set_defaults(func=cmd_status)


def _exporter(config: Config, args: argparse.Namespace, **kwargs: Any):  # noqa: ANN202
    from ingestion.export.exporter import Exporter

    return Exporter(config, chunk_rows=args.chunk_rows, lookback_seconds=args.lookback,
                    **kwargs)


def cmd_once(config: Config, args: argparse.Namespace) -> int:
    from contour.cli import _progress
    from ingestion.export.exporter import Period, export_pass

    if args.until and not args.since:
        raise ConfigError("--until needs --since (a period to re-export)")
    export_pass(config, args.table, args.source, Period(args.since, args.until)
                if args.since else None, progress=_progress, chunk_rows=args.chunk_rows,
                lookback_seconds=args.lookback)
    return 0


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    exporter = _exporter(config, args)
    return run_in_foreground([lambda stop: exporter.run(stop, interval=args.interval)])


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    heartbeat = read_status(heartbeat_path(config))
    fresh = heartbeat is not None and time.time() - heartbeat["updated_at"] < STALE_AFTER_S
    if args.check:
        print(json.dumps({"heartbeat": heartbeat, "fresh": fresh}, indent=2))
        return 0 if fresh else 1
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    from ingestion.export.exporter import Exporter, to_millis
    from ingestion.export.staging import read_watermarks

    exporter = Exporter(config)
    try:
        watermarks = read_watermarks(exporter.conn)
        tables = {}
        for name in exporter.select():
            ingested_at, rows_total, updated_at = watermarks.get(name, (None, 0, None))
            where = "" if ingested_at is None else \
                "WHERE _ingested_at > fromUnixTimestamp64Milli({w:Int64})"
            waiting = exporter.client.query(
                f"SELECT count() FROM raw.`{name}` {where}",
                parameters={"w": to_millis(ingested_at) if ingested_at else 0}).result_rows[0][0]
            tables[name] = {
                "watermark": ingested_at.isoformat() if ingested_at else None,
                "rows_total": rows_total, "rows_waiting": waiting,
                "updated_at": updated_at.isoformat() if updated_at else None,
            }
    finally:
        exporter.close()
    print(json.dumps({"heartbeat": heartbeat, "fresh": fresh, "tables": tables}, indent=2))
    return 0
