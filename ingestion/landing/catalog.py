"""The raw tables ClickHouse holds, and their creation and evolution from change events.

Both landing modes (the loader, and ClickHouse pulling through Kafka engine tables) keep one
:class:`Catalog`: it reads the tables that exist at start, creates a table the first time a
topic's row is seen (its key from the message key) and adds a column the first time a row
carries it (its type from the value, :meth:`RawTable.column_type_for`), together with the
table's history table and current-state view. A column whose first values are nulls shows no
type: it takes the source column's type (``column_types``, the source database's catalog,
:meth:`ingestion.source_catalog.SourceCatalogs.connect_type`); when the source cannot tell
(not reachable, the column gone) it is ``Nullable(String)``, marked untyped, until the first
value arrives and retypes it (all its rows are null, so nothing is converted). Without this,
the type would depend on which change came first — calls of an inbound queue (no campaign)
before any outbound one made ``campaign_id`` a string, and joins on it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ingestion.landing.tables import (
    DEAD_LETTERS_DDL,
    LANDING_METRICS_DDL,
    LANDING_METRICS_UPGRADE,
    UNTYPED_COMMENT,
    RawTable,
)

log = logging.getLogger(__name__)


#: (raw table name, column) → the source column's Kafka Connect type, or None if unknown
ColumnTypes = Callable[[str, str], "str | None"]


class Catalog:
    def __init__(self, client: Any, column_types: ColumnTypes | None = None) -> None:
        self.client = client
        self.column_types = column_types
        self.tables: dict[str, RawTable] = {}

    def _source_type(self, name: str, column: str, value: object) -> str | None:
        if value is not None or self.column_types is None:
            return None
        return self.column_types(name, column)

    def prepare(self) -> None:
        """The databases and the loader's own tables; the raw tables that exist, read back."""
        self.tables.clear()
        for database in ("raw", "history", "current"):
            self.client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.client.command(DEAD_LETTERS_DDL)
        self.client.command(LANDING_METRICS_DDL)
        self.client.command(LANDING_METRICS_UPGRADE)
        keys = {r[0]: r[1] for r in self.client.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = 'raw'").result_rows}
        # (views of raw live in the history and current databases, so raw holds tables only)
        for table, column, ch_type, comment in self.client.query(
                "SELECT table, name, type, comment FROM system.columns WHERE database = 'raw' "
                "ORDER BY table, position").result_rows:
            if table.startswith("_") or column.startswith("_"):
                continue
            if table not in self.tables:
                key = [k.strip().strip("`") for k in keys.get(table, "").split(",")
                       if k.strip() and not k.strip().startswith("_kafka")]
                self.tables[table] = RawTable(table, key)
            self.tables[table].columns[column] = ch_type
            if comment == UNTYPED_COMMENT:
                self.tables[table].untyped.add(column)

    def table_for(self, name: str, key: dict[str, object] | None,
                  row: dict[str, object]) -> RawTable:
        """The raw table of ``name``, created or given new columns so that ``row`` fits."""
        table = self.tables.get(name)
        if table is not None and row.keys() <= table.columns.keys() and not table.needs_type(row):
            return table  # the common case: no new column
        if table is None:
            table = RawTable(name, list(key) if key else [])
            for column, value in row.items():
                table.add_column(column, value, self._source_type(name, column, value))
            for statement in table.create_sql():
                self.client.command(statement)
            self.tables[name] = table
            log.info("created %s", table.qualified)
            return table
        for column, value in row.items():
            if column not in table.columns:
                for statement in table.add_column(column, value,
                                                  self._source_type(name, column, value)):
                    self.client.command(statement)
                log.info("%s: new column %s %s%s", table.qualified, column,
                         table.columns[column], " (untyped)" * (column in table.untyped))
        for column in table.needs_type(row):
            for statement in table.set_type(column, row[column]):
                self.client.command(statement)
            log.info("%s: column %s typed %s by its first value", table.qualified, column,
                     table.columns[column])
        return table
