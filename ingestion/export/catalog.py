"""What the exporter knows of a table: its raw columns in ClickHouse, its source columns' types
and primary key in the source database, and so its staging columns and their decoders.

A raw table ``raw.<name>`` comes from the source table whose topic
``<source>.<schema>.<table>`` the loader names ``<name>`` (:func:`ingestion.landing.tables.
table_name`). Staging columns are the raw table's row columns, typed as in the source catalog
(``format_type``); a user-defined type that does not exist in the warehouse becomes its domain's
base type or ``text``. A raw column the source no longer has keeps a type derived from
ClickHouse's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from contour.config import Config
from contour.errors import ConfigError
from ingestion.cdc.relay import Catalog
from ingestion.cdc.typemap import field_type
from ingestion.export.decode import Decoder, decoder_for, fallback_decoder
from ingestion.landing.loader import META_NAMES
from ingestion.landing.tables import table_name

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
#: ClickHouse type of a raw column → PostgreSQL type, for columns the source does not know
_FROM_CLICKHOUSE = {"Int64": "bigint", "Float64": "double precision", "Bool": "boolean",
                    "String": "text", "Array(Nullable(Int64))": "bigint[]",
                    "Array(Nullable(String))": "text[]"}


@dataclass(frozen=True)
class StagingColumn:
    name: str
    pg_type: str  # as format_type prints it, e.g. "timestamp with time zone", "numeric(5,4)"
    decode: Decoder
    #: a String column in ClickHouse can hold Debezium's unchanged-TOAST placeholder
    toastable: bool


@dataclass
class TableSpec:
    """One raw table and its staging table."""

    name: str  # raw.<name> and staging.<name>
    source: str
    key: list[str]
    columns: list[StagingColumn] = field(default_factory=list)
    #: deletes carry the whole row (REPLICA IDENTITY FULL), else only the key
    full_identity: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _base(clickhouse_type: str) -> str:
    return clickhouse_type.removeprefix("Nullable(").removesuffix(")") \
        if clickhouse_type.startswith("Nullable(") else clickhouse_type


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

    def __init__(self, config: Config) -> None:
        self.config = config
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

    def spec(self, raw_name: str, raw_columns: dict[str, str]) -> TableSpec:
        """The staging shape of ``raw.<raw_name>`` with these row columns (name → CH type)."""
        source = self.source_of(raw_name)
        if source is None:
            raise ConfigError(f"raw.{raw_name} belongs to none of the sources "
                              f"{', '.join(self.config.cdc_source_names)}")
        table = self.table(source, raw_name)
        if table is not None and not raw_columns.keys() <= table.columns.keys():
            table = self.table(source, raw_name, refresh=True)  # a column added since
        if table is None or not table.key:
            raise ConfigError(f"raw.{raw_name}: no table with a primary key in source "
                              f"{source!r}; it cannot be merged by key")
        catalog = self._catalogs[source]
        # source order first, then raw columns the source dropped
        names = [c for c in table.columns if c in raw_columns]
        names += [c for c in raw_columns if c not in table.columns]
        columns = []
        for name in names:
            toastable = _base(raw_columns[name]) == "String"
            if name in table.columns:
                oid, typmod, pg_type = table.columns[name]
                decode = decoder_for(field_type(oid, typmod, catalog.type_info))
            else:
                pg_type = _FROM_CLICKHOUSE.get(_base(raw_columns[name]), "text")
                decode = fallback_decoder(raw_columns[name])
            columns.append(StagingColumn(name, pg_type, decode, toastable))
        missing = [k for k in table.key if k not in raw_columns]
        if missing:
            raise ConfigError(f"raw.{raw_name} lacks key columns {missing}")
        return TableSpec(raw_name, source, list(table.key), columns, table.full_identity)


def raw_tables(client: Any, only: str | None = None) -> dict[str, dict[str, str]]:
    """Every raw table (but ``_`` internals), or ``only`` that one, → its row columns (name →
    ClickHouse type)."""
    tables: dict[str, dict[str, str]] = {}
    for table, column, ch_type in client.query(
            "SELECT table, name, type FROM system.columns WHERE database = 'raw' "
            "AND table NOT LIKE '\\_%' AND ({only:String} = '' OR table = {only:String}) "
            "ORDER BY table, position", parameters={"only": only or ""}).result_rows:
        columns = tables.setdefault(table, {})
        if column not in META_NAMES:
            columns[column] = ch_type
    return tables
