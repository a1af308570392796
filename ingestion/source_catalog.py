"""The source databases' catalogs as the warehouse side reads them: which tables a source
captures, their primary keys, columns and types.

The exporter types staging columns from them (:mod:`ingestion.export.catalog`); the loader
types a raw column whose first values are nulls from them (its value shows no type).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from contour.config import Config
from ingestion.cdc.relay import Catalog
from ingestion.cdc.typemap import field_type
from ingestion.landing.tables import table_name

log = logging.getLogger(__name__)

_SOURCE_COLUMNS = """
SELECT a.attname, a.atttypid, a.atttypmod,
       CASE WHEN tn.nspname = 'pg_catalog' THEN format_type(a.atttypid, a.atttypmod)
            WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            WHEN t.typcategory = 'A' THEN 'text[]'
            ELSE 'text' END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""
_SOURCE_TABLES = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
"""


@dataclass
class SourceTable:
    oid: int
    schema: str
    table: str
    key: list[str]
    #: column → (type oid, typmod, staging type)
    columns: dict[str, tuple[int, int, str]]
    #: REPLICA IDENTITY FULL: a delete event carries the whole row, not only the key
    full_identity: bool = False


class SourceCatalogs:
    """The source databases' catalogs, read on demand and cached until a column is missing."""

    #: seconds before a source whose catalog could not be read is asked again
    RETRY_S = 30.0

    def __init__(self, config: Config) -> None:
        self.config = config
        self._down_until: dict[str, float] = {}
        self._conns: dict[str, psycopg.Connection[Any]] = {}
        self._catalogs: dict[str, Catalog] = {}
        self._tables: dict[str, SourceTable] = {}

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._catalogs.clear()

    def _catalog(self, source: str) -> Catalog:
        conn = self._conns.get(source)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.config.cdc_source(source).dsn, autocommit=True,
                                   connect_timeout=10)
            self._conns[source] = conn
            self._catalogs[source] = Catalog(conn)
        return self._catalogs[source]

    def source_of(self, raw_name: str) -> str | None:
        """The captured source a raw table belongs to (its name's prefix)."""
        sources = sorted(self.config.cdc_source_names, key=len, reverse=True)
        return next((s for s in sources if raw_name.startswith(f"{s}__")), None)

    def table(self, source: str, raw_name: str, refresh: bool = False) -> SourceTable | None:
        if refresh or raw_name not in self._tables:
            catalog = self._catalog(source)
            found = {table_name(f"{source}.{schema}.{table}"): (oid, schema, table)
                     for oid, schema, table in catalog.conn.execute(_SOURCE_TABLES)}
            if raw_name not in found:
                return None
            oid, schema, table = found[raw_name]
            columns = {r[0]: (r[1], r[2], r[3])
                       for r in catalog.conn.execute(_SOURCE_COLUMNS, (oid,))}
            identity = catalog.conn.execute("SELECT relreplident FROM pg_class WHERE oid = %s",
                                            (oid,)).fetchone()
            self._tables[raw_name] = SourceTable(oid, schema, table, catalog.primary_key(oid),
                                                 columns, identity is not None
                                                 and identity[0] == "f")
        return self._tables[raw_name]

    def captured(self, source: str) -> list[str]:
        """Raw names of the source's captured tables (whether or not anything landed yet)."""
        catalog, captures = self._catalog(source), self.config.cdc_source(source).captures
        return [table_name(f"{source}.{schema}.{table}")
                for _, schema, table in catalog.conn.execute(_SOURCE_TABLES)
                if captures(schema, table)]

    def connect_type(self, raw_name: str, column: str) -> str | None:
        """The Kafka Connect type (``int64``, ``double``, ``string`` …) of ``column`` of the
        source table of ``raw.<raw_name>``, as the CDC relay publishes it; None when the
        source, the table or the column is unknown or the source is not reachable (retried
        after :attr:`RETRY_S`)."""
        source = self.source_of(raw_name)
        if source is None or time.monotonic() < self._down_until.get(source, 0.0):
            return None
        try:
            table = self.table(source, raw_name)
            if table is not None and column not in table.columns:
                table = self.table(source, raw_name, refresh=True)
            if table is None or column not in table.columns:
                return None
            oid, typmod, _ = table.columns[column]
            return field_type(oid, typmod, self._catalogs[source].type_info).connect_type
        except (psycopg.Error, OSError) as exc:
            self._down_until[source] = time.monotonic() + self.RETRY_S
            self._conns.pop(source, None)
            log.warning("source %r: catalog not readable (%s); columns of nulls stay untyped "
                        "until a value types them", source, str(exc).strip().splitlines()[0])
            return None
