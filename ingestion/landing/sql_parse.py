"""The loader's parse of a Debezium message, as ClickHouse SQL.

In the Kafka-engine landing mode (:mod:`ingestion.landing.engine`) ClickHouse parses the
messages itself, in materialized views over Kafka engine tables. The SQL here does what
:meth:`ingestion.landing.loader.Loader.add` does in Python, for a :class:`RawTable` as the
loader defines it, so both modes land the same rows:

- the envelope: plain or Kafka Connect's ``{"schema", "payload"}`` form; ``op`` one of
  c/u/d/r/t, a ``source`` object, the row (``before`` of a delete, else ``after``) an object
  and ``source.lsn`` an integer, a message key that is JSON when present — otherwise the
  message is a dead letter with the loader's reason;
- truncates and tombstones carry no row (an empty message is a tombstone here: a Kafka engine
  table does not tell a null value from an empty one);
- each column converted as :func:`ingestion.landing.tables.coercer` converts it, and a value
  that does not fit its column makes the message a dead letter;
- the change metadata: ``_version`` and ``_lsn`` from ``source.lsn``, ``_source_ts`` from
  ``source.ts_us`` (or ``ts_ms``), ``_tx_id``, the Kafka partition and offset.

Every builder reads from a relation with the Kafka engine's columns: ``_topic``,
``_partition``, ``_offset``, ``_key`` (``''`` when none) and ``value`` (the message).
"""

from __future__ import annotations

from ingestion.landing.tables import DEAD_LETTER_COLUMNS, META_COLUMNS, RawTable, quote

#: a tombstone or an empty message
ROW_BEARING = "value != ''"
OPS = "('c', 'u', 'd', 'r', 't')"


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def envelope(relation: str, where: str = "1") -> str:
    """The relation's messages with the envelope's parts: ``p`` (the payload), ``op``, ``row``
    (its before/after object), ``src`` (the source block) and ``problem`` — why the message
    is not a Debezium change ('' when it is one)."""
    return f"""
SELECT _topic, _partition, _offset, _key, value,
    if(JSONHas(value, 'schema') AND JSONHas(value, 'payload'),
       JSONExtractRaw(value, 'payload'), value) AS p,
    JSONExtractString(p, 'op') AS op,
    JSONExtractRaw(p, if(op = 'd', 'before', 'after')) AS row,
    JSONExtractRaw(p, 'source') AS src,
    multiIf(
        NOT isValidJSON(value), 'not JSON',
        JSONType(value) != 'Object', 'not a Debezium envelope: not a JSON object',
        JSONType(p) != 'Object', 'not a Debezium envelope: payload is not an object',
        op NOT IN {OPS} OR JSONType(p, 'source') != 'Object',
            'not a Debezium envelope: no op/source',
        op != 't' AND (JSONType(p, if(op = 'd', 'before', 'after')) != 'Object'
                       OR JSONType(src, 'lsn') NOT IN ('Int64', 'UInt64')),
            concat('not a Debezium envelope: op ''', op, ''' without a row or source.lsn'),
        _key != '' AND NOT isValidJSON(_key), 'key is not JSON',
        '') AS problem
FROM {relation} WHERE {ROW_BEARING} AND ({where})"""


def _fits(column: str, ch_type: str) -> str:
    """Whether the row's value of ``column`` converts to ``ch_type`` as the loader's does."""
    kind = f"JSONType(row, {literal(column)})"
    nullable = ch_type.startswith("Nullable(")
    base = ch_type[len("Nullable("):-1] if nullable else ch_type
    accepted = {"Int64": ["'Int64'", "'UInt64'"], "Float64": ["'Double'", "'Int64'", "'UInt64'"],
                "Bool": ["'Bool'"], "String": None}.get(base, [])
    if base.startswith("Array("):
        return f"{kind} IN ('Array', 'Null')"
    if accepted is None:  # a string column takes every JSON value, a null only if nullable
        return "1" if nullable else f"{kind} != 'Null'"
    if not accepted:
        return "0"  # a column type the loader does not convert to
    names = accepted + (["'Null'"] if nullable else [])
    return f"{kind} IN ({', '.join(names)})"


def _value(column: str, ch_type: str) -> str:
    name = literal(column)
    base = ch_type.removeprefix("Nullable(").removesuffix(")") if ch_type.startswith(
        "Nullable(") else ch_type
    if base == "String":  # JSON strings as text, other values as their JSON text
        kind = f"JSONType(row, {name})"
        text = f"if({kind} = 'String', JSONExtractString(row, {name}), JSONExtractRaw(row, {name}))"
        return f"CAST(if({kind} = 'Null', NULL, {text}) AS {ch_type})" if ch_type != base \
            else text
    return f"JSONExtract(row, {name}, {literal(ch_type)})"


def known(table: RawTable | None) -> str:
    """The row has no column the table lacks (so the table is ready for it)."""
    if table is None:
        return "0"
    names = ", ".join(literal(c) for c in table.columns)
    return f"hasAll([{names}]::Array(String), JSONExtractKeys(row))"


def _column_fits(table: RawTable, column: str) -> str:
    """An untyped column (only nulls so far) takes only a null: a value is held, so that the
    controller types the column by it first (:meth:`RawTable.set_type`)."""
    if column in table.untyped:
        return f"JSONType(row, {literal(column)}) = 'Null'"
    return _fits(column, table.columns[column])


def fits(table: RawTable) -> str:
    return " AND ".join(_column_fits(table, c) for c in table.columns) or "1"


def misfit(table: RawTable) -> str:
    """The loader's reason for the first column whose value does not fit."""
    cases = ", ".join(f"NOT ({_column_fits(table, c)}), "
                      f"{literal(f'column {c}: does not fit {t}')}"
                      for c, t in table.columns.items())
    return f"multiIf({cases}, '')" if cases else "''"


def rows_select(table: RawTable, relation: str, where: str = "1") -> str:
    """The table's rows (its columns, then the metadata) from the relation's messages that
    are changes of known columns which fit."""
    columns = [f"{_value(c, t)} AS {quote(c)}" for c, t in table.columns.items()]
    meta = {
        "_op": "op",
        "_is_deleted": "toUInt8(op = 'd')",
        "_version": "JSONExtractUInt(src, 'lsn')",
        "_source_ts": "fromUnixTimestamp64Micro(if(JSONExtractInt(src, 'ts_us') != 0, "
                      "JSONExtractInt(src, 'ts_us'), JSONExtractInt(src, 'ts_ms') * 1000), 'UTC')",
        "_tx_id": "JSONExtract(src, 'txId', 'Nullable(Int64)')",
        "_lsn": "JSONExtractUInt(src, 'lsn')",
        "_kafka_partition": "toUInt32(_partition)",
        "_kafka_offset": "_offset",
        "_ingested_at": "now64(3, 'UTC')",
    }
    assert list(meta) == list(META_COLUMNS)
    columns += [f"{expr} AS {name}" for name, expr in meta.items()]
    return (f"SELECT {', '.join(columns)} FROM ({envelope(relation, where)}) "
            f"WHERE problem = '' AND op != 't' AND {known(table)} AND {fits(table)}")


def rows_insert(table: RawTable, relation: str, where: str = "1") -> str:
    """``INSERT`` of :func:`rows_select` (by column name: a column added later comes after the
    metadata columns in the table)."""
    names = [*table.columns, *META_COLUMNS]
    return (f"INSERT INTO {table.qualified} ({', '.join(quote(n) for n in names)}) "
            f"{rows_select(table, relation, where)}")


def dead_letters_insert(relation: str, table: RawTable | None, where: str = "1") -> str:
    return (f"INSERT INTO raw._dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) "
            f"{dead_letters_select(relation, table, where)}")


def dead_letters_select(relation: str, table: RawTable | None, where: str = "1") -> str:
    """Dead letters (``raw._dead_letters``' columns) of the relation's messages: those that
    are no Debezium change, and (given the table) changes whose values do not fit it."""
    error = "problem" if table is None else f"if(problem != '', problem, {misfit(table)})"
    condition = "problem != ''" if table is None else \
        f"problem != '' OR (op != 't' AND {known(table)} AND NOT ({fits(table)}))"
    columns = {"topic": "_topic", "partition": "toUInt32(_partition)", "offset": "_offset",
               "key": "nullIf(_key, '')", "value": "value", "error": error,
               "at": "now64(3, 'UTC')"}
    assert list(columns) == list(DEAD_LETTER_COLUMNS)
    return (f"SELECT {', '.join(f'{e} AS {n}' for n, e in columns.items())} "
            f"FROM ({envelope(relation, where)}) WHERE {condition}")


def pending_select(relation: str, table: RawTable | None, where: str = "1") -> str:
    """Changes the table is not ready for (no table yet, or a column it lacks), or whose
    values do not fit it: held for the controller, which evolves the table, then parses them
    (or makes them dead letters)."""
    ready = "0" if table is None else f"{known(table)} AND {fits(table)}"
    return (f"SELECT _topic, _partition, _offset, _key, value FROM ({envelope(relation, where)}) "
            f"WHERE problem = '' AND op != 't' AND NOT ({ready})")
