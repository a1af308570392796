"""Versioned SQL migrations, applied by the service on start.

Each schema (the dialer's, the CRM's) keeps its migrations as ``NNNN_description.sql`` files in a
folder. :func:`migrate` applies the ones not yet recorded in ``public.schema_migrations``, each in
its own transaction, in version order, under an advisory lock so that two starting processes do
not race. A file that was changed after being applied is reported, never silently re-run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_ID = 7_311_002  # advisory lock key shared by every Contour migration run


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match[1]), path.stem, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migrations share a version number")
    return migrations


def migrate(dsn: str, folder: Path, component: str,
            log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply pending migrations of ``component`` from ``folder``; returns the names applied."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                " component text NOT NULL, version int NOT NULL, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (component, version))")
            done = {row[0]: row[1] for row in conn.execute(
                "SELECT version, checksum FROM public.schema_migrations WHERE component = %s",
                (component,))}
            for migration in load(folder):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{component} migration {migration.name} changed after it was "
                            "applied; add a new migration instead of editing an applied one")
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO public.schema_migrations (component, version, name, "
                        "checksum) VALUES (%s, %s, %s, %s)",
                        (component, migration.version, migration.name, migration.checksum))
                applied_now.append(migration.name)
                log(f"{component}: applied migration {migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now
