"""Argument types shared by the commands (``type=`` of argparse)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def iso_moment(text: str) -> datetime:
    """An ISO 8601 date/time, UTC when it names no zone (``--start``, ``--since``, …)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date/time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
