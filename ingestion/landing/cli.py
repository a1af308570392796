"""``contour loader …``: land the CDC topics in ClickHouse."""

from __future__ import annotations

import argparse

from contour.config import Config
from ingestion.landing.loader import Loader
from ingestion.status import run_in_foreground


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    loader = sub.add_parser("loader", help="land CDC topics in ClickHouse raw tables",
                            description="Kafka → ClickHouse raw.<source>__<table>, exactly once "
                                        "(offsets stored in the rows).")
    actions = loader.add_subparsers(dest="loader_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run the loader in the foreground until Ctrl-C",
                             description="Consume every CDC topic of CONTOUR_CDC_SOURCES and "
                                         "insert each batch as one block per table.")
    run.add_argument("--batch-size", type=int, default=20_000, help="messages per batch")
    run.add_argument("--batch-seconds", type=float, default=0.5,
                     help="longest wait before a partial batch is written")
    run.set_defaults(func=cmd_run)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    loader = Loader(config, batch_size=args.batch_size, batch_seconds=args.batch_seconds)
    return run_in_foreground([loader.run])
