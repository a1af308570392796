"""Connecting to the dialer database and bringing its schema up to date."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from dialer_core.migrations import migrate

COMPONENT = "dialer"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate_dialer(dsn: str, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply the dialer's pending migrations (the service calls this on every start)."""
    return migrate(dsn, MIGRATIONS, COMPONENT, log)


def connect(dsn: str) -> psycopg.Connection:
    """Autocommit connection: every service write is its own short transaction or an explicit
    ``with conn.transaction()`` block, so nothing is half-written and no lock is held idle."""
    return psycopg.connect(dsn, autocommit=True)
