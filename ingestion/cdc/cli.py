"""``contour cdc …``: run the relays, show their position and lag."""

from __future__ import annotations

import argparse
import json

from contour.config import Config
from ingestion.cdc.durability import LandedPositions
from ingestion.cdc.relay import Relay
from ingestion.status import run_in_foreground


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cdc = sub.add_parser("cdc", help="change data capture: PostgreSQL sources → Kafka",
                         description="Debezium-compatible change data capture of the source "
                                     "databases into Kafka topics <source>.<schema>.<table>.")
    actions = cdc.add_subparsers(dest="cdc_command", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run relays in the foreground until Ctrl-C/SIGTERM",
                             description="Snapshot (first time) and stream every captured "
                                         "source into Kafka. One thread per source. A "
                                         "position is confirmed to PostgreSQL once it is "
                                         "landed in ClickHouse (CONTOUR_CDC_CONFIRM=landed, "
                                         "the default: the embedded broker keeps its log in "
                                         "memory) or once the broker acknowledged it "
                                         "(CONTOUR_CDC_CONFIRM=broker, for a Kafka with "
                                         "durable logs).")
    run.add_argument("--source", action="append", metavar="NAME",
                     help="only this source (repeatable; default: CONTOUR_CDC_SOURCES)")
    run.set_defaults(func=cmd_run)
    status = actions.add_parser("status", help="position, lag and rate of each relay",
                                description="Print each relay's metrics (JSON).")
    status.add_argument("--check", action="store_true",
                        help="exit 1 unless every relay reported within the last 15 s "
                             "(a container health check)")
    status.set_defaults(func=cmd_status)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    names = args.source or list(config.cdc_source_names)
    relays = []
    for name in names:
        source = config.cdc_source(name)
        landed = LandedPositions(config) if source.confirm == "landed" else None
        relays.append(Relay(source, config.kafka_bootstrap, landed=landed))
    return run_in_foreground([relay.run for relay in relays])


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from contour.services.pipeline import Cdc

    relays = Cdc(config)
    print(json.dumps({name: relays.metrics(name) for name in config.cdc_source_names},
                     indent=2))
    return 0 if not args.check or relays.healthy() else 1
