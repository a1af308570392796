"""ClickHouse raw tables: names, column types inferred from the change events, DDL.

For every captured table ``<name>`` = ``<source>__<table>`` (``<source>__<schema>__<table>``
outside ``public``):

- ``raw.<name>``: the typed row columns plus the change metadata, ReplacingMergeTree(_version,
  _is_deleted): per key the newest version wins (``FINAL``), a delete over what it deletes. Rows
  of one key live in one partition (a hash of the key), so replacing works across merges.
- ``history.<name>``: every version of every row (a materialized view copies each block landed
  in ``raw``), ordered by key and version — merges of ``raw`` never lose history here.
- ``current.<name>``: a view of the current state — the newest version per key, deletes removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

META_COLUMNS = {
    "_op": "LowCardinality(String)",
    "_is_deleted": "UInt8",
    "_version": "UInt64",
    "_source_ts": "DateTime64(6, 'UTC')",
    "_tx_id": "Nullable(Int64)",
    "_lsn": "UInt64",
    "_kafka_partition": "UInt32",
    "_kafka_offset": "UInt64",
    "_ingested_at": "DateTime64(3, 'UTC')",
}
#: columns of the loader's own tables, in insert order (the loader inserts with these types,
#: so clickhouse-connect does not DESCRIBE the table before every block)
DEAD_LETTER_COLUMNS = {
    "topic": "String", "partition": "UInt32", "offset": "UInt64", "key": "Nullable(String)",
    "value": "Nullable(String)", "error": "String", "at": "DateTime64(3, 'UTC')",
}
LANDING_METRICS_COLUMNS = {
    "at": "DateTime64(3, 'UTC')", "topic": "String", "partition": "UInt32",
    "landed_offset": "Int64", "high_watermark": "Int64", "lag": "Int64",
    "last_source_lsn": "UInt64", "rows_per_s": "Float64",
    # the newest landed row's offset and source LSN: with them the CDC relay checks that the
    # row's position belongs to the broker's current log before trusting ``landed_offset``
    "probe_offset": "Int64", "probe_lsn": "UInt64",
}


def _columns_sql(columns: dict[str, str]) -> str:
    return ", ".join(f"{name} {type_}" for name, type_ in columns.items())


DEAD_LETTERS_DDL = f"""
CREATE TABLE IF NOT EXISTS raw._dead_letters ({_columns_sql(DEAD_LETTER_COLUMNS)})
ENGINE = ReplacingMergeTree ORDER BY (topic, partition, offset)
"""
LANDING_METRICS_DDL = f"""
CREATE TABLE IF NOT EXISTS raw._landing_metrics ({_columns_sql(LANDING_METRICS_COLUMNS)})
ENGINE = MergeTree ORDER BY (topic, partition, at) TTL toDateTime(at) + INTERVAL 7 DAY
"""
#: columns added since the first release (a warehouse created before gets them on start)
LANDING_METRICS_UPGRADE = """
ALTER TABLE raw._landing_metrics ADD COLUMN IF NOT EXISTS probe_offset Int64 DEFAULT -1,
    ADD COLUMN IF NOT EXISTS probe_lsn UInt64
"""


def insert_landing_metrics(client: Any, rows: list[list[object]]) -> None:
    """Insert ``raw._landing_metrics`` rows (values in LANDING_METRICS_COLUMNS' order)."""
    client.insert("raw._landing_metrics", rows, column_names=list(LANDING_METRICS_COLUMNS),
                  column_type_names=list(LANDING_METRICS_COLUMNS.values()))
#: the comment of a column that held only nulls so far (typed by its first value)
UNTYPED_COMMENT = "contour: only nulls so far, typed by the first value"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DoesNotFit(ValueError):
    """A value that the table's column type cannot hold."""


def connect_payload(value: object) -> object:
    """A message key or value without Kafka Connect's ``{"schema", "payload"}`` wrapping
    (``schemas.enable``), as it is when unwrapped."""
    if isinstance(value, dict) and "schema" in value and "payload" in value:
        return value["payload"]
    return value


def table_name(topic: str) -> str:
    source, schema, table = topic.split(".", 2)
    name = f"{source}__{table}" if schema == "public" else f"{source}__{schema}__{table}"
    return name.replace(".", "_")


def quote(identifier: str) -> str:
    return identifier if _IDENT.match(identifier) else "`" + identifier.replace("`", "``") + "`"


def infer_type(value: object) -> str:
    """ClickHouse type for a JSON value of a Debezium event (schemaless JSON)."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    # Strings, JSON objects and arrays (as JSON text), and nulls until a value shows the type.
    # Arrays are not Array(...): ClickHouse has no Nullable(Array), so a NULL array would land
    # as [] and come back different from the source; as Nullable(String) the column's type
    # does not depend on whether a null or an array came first. (Tables created by earlier
    # versions keep their Array columns, where a NULL still lands as [].)
    return "String"


#: Kafka Connect type (as the CDC relay or Debezium publishes a column) → the ClickHouse type
#: :func:`infer_type` gives its values; anything else (string, bytes, array, struct) → String
CONNECT_TYPES = {"int8": "Int64", "int16": "Int64", "int32": "Int64", "int64": "Int64",
                 "float": "Float64", "float32": "Float64", "double": "Float64",
                 "float64": "Float64", "boolean": "Bool"}


def connect_to_clickhouse(connect_type: str) -> str:
    return CONNECT_TYPES.get(connect_type, "String")


def coerce(value: object, ch_type: str) -> object:
    """A JSON value in the form clickhouse-connect inserts into ``ch_type``."""
    base = ch_type.removeprefix("Nullable(").removesuffix(")") if ch_type.startswith(
        "Nullable(") else ch_type
    if value is None:
        if ch_type.startswith("Nullable(") or base.startswith("Array("):
            return None if not base.startswith("Array(") else []
        raise DoesNotFit(f"null in non-nullable {ch_type}")
    if base == "String":
        if isinstance(value, str):
            return value
        import orjson

        return orjson.dumps(value).decode()
    if base == "Int64":
        if isinstance(value, bool) or not isinstance(value, int):
            raise DoesNotFit(f"{value!r} is not an integer")
        return value
    if base == "Float64":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DoesNotFit(f"{value!r} is not a number")
        return float(value)
    if base == "Bool":
        if not isinstance(value, bool):
            raise DoesNotFit(f"{value!r} is not a boolean")
        return value
    if base.startswith("Array("):
        if not isinstance(value, list):
            raise DoesNotFit(f"{value!r} is not an array")
        inner = base[len("Array("):-1]
        return [coerce(v, inner) for v in value]
    raise DoesNotFit(f"no conversion to {ch_type}")


def coercer(ch_type: str):  # noqa: ANN201 - returns a converter function
    """A fast converter for one column type (what :func:`coerce` does, decided once)."""
    nullable = ch_type.startswith("Nullable(")
    base = ch_type[len("Nullable("):-1] if nullable else ch_type
    if base == "String":
        def to_string(value: object) -> object:
            if value is None or type(value) is str:
                if value is None and not nullable:
                    raise DoesNotFit(f"null in non-nullable {ch_type}")
                return value
            return coerce(value, ch_type)
        return to_string
    if base == "Int64":
        def to_int(value: object) -> object:
            if type(value) is int or (value is None and nullable):
                return value
            return coerce(value, ch_type)  # raises DoesNotFit with the reason
        return to_int
    if base == "Float64":
        def to_float(value: object) -> object:
            kind = type(value)
            if kind is float or (value is None and nullable):
                return value
            if kind is int:
                return float(value)  # type: ignore[arg-type]
            return coerce(value, ch_type)
        return to_float
    if base == "Bool":
        def to_bool(value: object) -> object:
            if type(value) is bool or (value is None and nullable):
                return value
            return coerce(value, ch_type)
        return to_bool
    return lambda value: coerce(value, ch_type)


@dataclass
class RawTable:
    name: str
    key: list[str]
    columns: dict[str, str] = field(default_factory=dict)  # row columns → ClickHouse type
    #: columns that held only nulls so far: Nullable(String) until a value shows the type
    #: (kept across restarts as the column's comment, :data:`UNTYPED_COMMENT`)
    untyped: set[str] = field(default_factory=set)
    _coercers: list[tuple[str, object]] | None = None

    def coercers(self) -> list[tuple[str, object]]:
        """(column, converter) in column order; rebuilt after the columns change."""
        if self._coercers is None or len(self._coercers) != len(self.columns):
            self._coercers = [(c, coercer(t)) for c, t in self.columns.items()]
        return self._coercers

    @property
    def qualified(self) -> str:
        return f"raw.{quote(self.name)}"

    def create_sql(self) -> list[str]:
        """The raw table, its history table and copying view, and the current-state view."""
        cols = [self._column_sql(c) for c in self.columns]
        cols += [f"{c} {t}" for c, t in META_COLUMNS.items()]
        name = quote(self.name)
        if self.key:
            order = ", ".join(quote(k) for k in self.key)
            partition = f"cityHash64({order}) % 4"
            engine = "ReplacingMergeTree(_version, _is_deleted)"
            history_order = f"{order}, _version, _kafka_partition, _kafka_offset"
        else:  # no primary key: every message is its own row
            order, partition, engine = "_kafka_partition, _kafka_offset", "tuple()", \
                "ReplacingMergeTree"
            history_order = order  # (repeating the offset columns is a ClickHouse error)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.qualified} ({', '.join(cols)}) "
            f"ENGINE = {engine} PARTITION BY {partition} ORDER BY ({order})",
            # replayed blocks repeat (key, _version, offset): ReplacingMergeTree folds them
            f"CREATE TABLE IF NOT EXISTS history.{name} ({', '.join(cols)}) "
            f"ENGINE = ReplacingMergeTree PARTITION BY {partition} "
            f"ORDER BY ({history_order})",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS history.{quote(self.name + '__copy')} "
            f"TO history.{name} AS SELECT * FROM {self.qualified}",
            self.current_view_sql(),
        ]

    def current_view_sql(self) -> str:
        """Recreated after a new column: a view's ``*`` is expanded when it is created."""
        return (f"CREATE OR REPLACE VIEW current.{quote(self.name)} AS SELECT * FROM "
                f"{self.qualified} FINAL WHERE _is_deleted = 0")

    def _column_sql(self, column: str) -> str:
        comment = f" COMMENT '{UNTYPED_COMMENT}'" if column in self.untyped else ""
        return f"{quote(column)} {self.columns[column]}{comment}"

    def add_column(self, column: str, value: object,
                   connect_type: str | None = None) -> list[str]:
        """Take a new column whose first value is ``value``; the statements that add it. A
        null shows no type: the source's type (``connect_type``) gives it, or the column is
        untyped until a value comes."""
        self.columns[column] = self.column_type_for(column, value)
        if value is None and column not in self.key:
            if connect_type is None:
                self.untyped.add(column)
            else:
                self.columns[column] = f"Nullable({connect_to_clickhouse(connect_type)})"
        return [
            f"ALTER TABLE history.{quote(self.name)} ADD COLUMN IF NOT EXISTS "
            f"{self._column_sql(column)}",
            f"ALTER TABLE {self.qualified} ADD COLUMN IF NOT EXISTS {self._column_sql(column)}",
            self.current_view_sql(),
        ]

    def needs_type(self, row: dict[str, object]) -> list[str]:
        """The untyped columns to which ``row`` gives a value."""
        return [c for c in self.untyped if row.get(c) is not None] if self.untyped else []

    def set_type(self, column: str, value: object) -> list[str]:
        """Type an untyped column by its first value; the statements that retype it (its
        rows so far are all null, so the conversion cannot fail)."""
        self.untyped.discard(column)
        self.columns[column] = self.column_type_for(column, value)
        self._coercers = None
        return [f"ALTER TABLE {table} MODIFY COLUMN {quote(column)} {self.columns[column]} "
                "COMMENT ''" for table in (f"history.{quote(self.name)}", self.qualified)
                ] + [self.current_view_sql()]

    def column_type_for(self, column: str, value: object) -> str:
        """Type of a new column: key columns are not nullable (they are the sort key)."""
        inferred = infer_type(value)
        if column in self.key or inferred.startswith("Array("):
            return inferred
        return f"Nullable({inferred})"
