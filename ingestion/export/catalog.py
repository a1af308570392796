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

from contour.errors import ConfigError
from ingestion.cdc.typemap import field_type
from ingestion.export.decode import Decoder, decoder_for, fallback_decoder
from ingestion.landing.loader import META_NAMES
from ingestion.source_catalog import SourceCatalogs

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


class StagingCatalogs(SourceCatalogs):
    """The source catalogs, and from them the staging shape of each raw table."""

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
