"""``contour loader …``: land the CDC topics in ClickHouse."""

from __future__ import annotations

import argparse

from contour.config import LANDING_MODES, Config
from ingestion.status import run_in_foreground


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    loader = sub.add_parser("loader", help="land CDC topics in ClickHouse raw tables",
                            description="Kafka → ClickHouse raw.<source>__<table>, exactly once "
                                        "(offsets stored in the rows).")
    actions = loader.add_subparsers(dest="loader_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run", help="run the landing in the foreground until Ctrl-C",
        description="Land every CDC topic of CONTOUR_CDC_SOURCES in ClickHouse. Mode loader: "
                    "consume the topics and insert each batch as one block per table. Mode "
                    "engine: have ClickHouse consume them (Kafka engine tables and "
                    "materialized views) and keep its tables and views in step with the "
                    "events.")
    run.add_argument("--mode", choices=LANDING_MODES, default=None,
                     help="default: CONTOUR_LANDING_MODE (loader)")
    run.add_argument("--batch-size", type=int, default=20_000,
                     help="messages per batch (loader mode)")
    run.add_argument("--batch-seconds", type=float, default=0.5,
                     help="longest wait before a partial batch is written (loader mode)")
    run.set_defaults(func=cmd_run)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    if (args.mode or config.landing_mode) == "engine":
        from ingestion.landing.engine import EngineLanding

        return run_in_foreground([EngineLanding(config).run])
    from ingestion.landing.loader import Loader

    loader = Loader(config, batch_size=args.batch_size, batch_seconds=args.batch_seconds)
    return run_in_foreground([loader.run])
