"""``python -m dialer_core.dialer run|seed …``: the dialer commands before (and besides) their
wiring into ``contour``; same parser, same configuration object."""

from __future__ import annotations

import argparse
import sys

from contour.config import Config
from dialer_core.dialer.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dialer_core.dialer")
    register(parser.add_subparsers(required=True, metavar="COMMAND"))
    args = parser.parse_args(["dialer", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(Config.from_env(), args))


if __name__ == "__main__":
    sys.exit(main())
