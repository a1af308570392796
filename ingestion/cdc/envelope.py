"""Debezium PostgreSQL connector change events: key and value, as JSON bytes.

Key: the primary-key columns (``{"id": 1}``), or no key for a table without a primary key.
Value: ``{before, after, source, op, ts_ms, ts_us, ts_ns, transaction}``; a delete is followed
by a tombstone (same key, no value). With ``schemas_enable`` both are wrapped as Kafka Connect's
JsonConverter does: ``{"schema": {...}, "payload": {...}}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingestion.cdc.pgoutput import UNCHANGED_TOAST, Relation
from ingestion.cdc.typemap import (
    CONVERSION_ERRORS,
    UNAVAILABLE,
    CatalogLookup,
    FieldType,
    field_type,
    identity,
)

CONNECTOR_VERSION = "contour-0.1.0"
log = logging.getLogger(__name__)


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


@dataclass(frozen=True)
class SourcePosition:
    """Where an event comes from in the source's history."""

    lsn: int  # the change's LSN (snapshot rows: the slot's consistent point)
    commit_lsn: int  # LSN of the transaction's commit (snapshot: consistent point)
    last_commit_lsn: int  # previous transaction's commit LSN, Debezium's sequence[0]
    tx_id: int | None
    ts_us: int  # commit time, µs since epoch
    snapshot: str = "false"  # "true" | "first" | "last" | "false"


@dataclass
class TableShape:
    """A relation as the envelope needs it: topic, converters, key columns, schemas."""

    relation: Relation
    topic: str
    fields: list[FieldType]
    key_index: list[int]
    _schemas: dict[str, dict[str, object]] = field(default_factory=dict)
    _source: dict[str, object] | None = None  # source block of the transaction being sent
    _pairs: list[tuple[str, Any, object]] | None = None
    conversion_errors: int = 0

    @classmethod
    def build(cls, relation: Relation, topic_prefix: str,
              lookup: CatalogLookup | None = None) -> TableShape:
        fields = [field_type(c.type_oid, c.typmod, lookup) for c in relation.columns]
        names = [c.name for c in relation.columns]
        key_index = [names.index(k) for k in relation.key_columns if k in names]
        topic = f"{topic_prefix}.{relation.schema}.{relation.table}"
        return cls(relation, topic, fields, key_index)

    @property
    def has_key(self) -> bool:
        return bool(self.key_index)

    @property
    def _converters(self) -> list[tuple[str, Any, object]]:
        """(column, converter or None for text kept as is, value for a missing NOT NULL value
        or None), computed once per shape."""
        if self._pairs is None:
            self._pairs = [(c.name, None if f.convert is identity else f.convert,
                            f.fallback if c.not_null else None)
                           for c, f in zip(self.relation.columns, self.fields, strict=True)]
        return self._pairs

    def row(self, values: list[object]) -> dict[str, object]:
        out: dict[str, object] = {}
        for (name, convert, fallback), value in zip(self._converters, values, strict=True):
            if value is None:
                out[name] = fallback
            elif convert is None and value is not UNCHANGED_TOAST:
                out[name] = value
            elif value is UNCHANGED_TOAST:
                out[name] = UNAVAILABLE
            else:
                try:
                    out[name] = convert(value)
                except CONVERSION_ERRORS as exc:
                    # never stall the source on one odd value: publish it as PostgreSQL
                    # printed it (the loader dead-letters it if it does not fit) and count it
                    self.conversion_errors += 1
                    if self.conversion_errors <= 10:
                        log.warning("%s.%s: %s=%r published as text: %s", self.relation.schema,
                                    self.relation.table, name, value, exc)
                    out[name] = value
        return out

    def key(self, values: list[object], row: dict[str, object] | None = None
            ) -> dict[str, object] | None:
        """The key columns; taken from ``row`` when the caller already converted it."""
        if not self.key_index:
            return None
        columns = self.relation.columns
        if row is not None:
            return {columns[i].name: row[columns[i].name] for i in self.key_index}
        return {columns[i].name: (None if values[i] is None
                                  else self.fields[i].convert(values[i]))  # type: ignore[arg-type]
                for i in self.key_index}

    # -------------------------------------------------------------- Connect schemas
    def key_schema(self) -> dict[str, object]:
        if "key" not in self._schemas:
            columns = self.relation.columns
            self._schemas["key"] = {
                "type": "struct", "optional": False, "name": f"{self.topic}.Key",
                "fields": [self.fields[i].schema(columns[i].name, optional=False,
                                                 default=self.fields[i].default_value(
                                                     columns[i].default))
                           for i in self.key_index],
            }
        return self._schemas["key"]

    def value_schema(self) -> dict[str, object]:
        if "value" not in self._schemas:
            row = {
                "type": "struct", "optional": True, "name": f"{self.topic}.Value",
                "fields": [f.schema(c.name, optional=not c.not_null,
                                    default=f.default_value(c.default))
                           for c, f in zip(self.relation.columns, self.fields, strict=True)],
            }
            self._schemas["value"] = {
                "type": "struct", "optional": False, "name": f"{self.topic}.Envelope",
                "version": 2,
                "fields": [
                    {**row, "field": "before"},
                    {**row, "field": "after"},
                    {**_SOURCE_SCHEMA, "field": "source"},
                    {"type": "string", "optional": False, "field": "op"},
                    {"type": "int64", "optional": True, "field": "ts_ms"},
                    {"type": "int64", "optional": True, "field": "ts_us"},
                    {"type": "int64", "optional": True, "field": "ts_ns"},
                    {**_TRANSACTION_SCHEMA, "field": "transaction"},
                ],
            }
        return self._schemas["value"]


def _f(field_name: str, kind: str, optional: bool = False, **extra: object) -> dict[str, object]:
    return {"type": kind, "optional": optional, "field": field_name, **extra}


_SOURCE_SCHEMA: dict[str, object] = {
    "type": "struct", "optional": False, "name": "io.debezium.connector.postgresql.Source",
    "fields": [
        _f("version", "string"), _f("connector", "string"), _f("name", "string"),
        _f("ts_ms", "int64"),
        _f("snapshot", "string", True, name="io.debezium.data.Enum", version=1,
           parameters={"allowed": "true,first,first_in_data_collection,"
                                  "last_in_data_collection,last,false,incremental"},
           default="false"),
        _f("db", "string"), _f("sequence", "string", True), _f("ts_us", "int64", True),
        _f("ts_ns", "int64", True), _f("schema", "string"), _f("table", "string"),
        _f("txId", "int64", True), _f("lsn", "int64", True), _f("xmin", "int64", True),
    ],
}
_TRANSACTION_SCHEMA: dict[str, object] = {
    "type": "struct", "optional": True, "name": "event.block", "version": 1,
    "fields": [_f("id", "string"), _f("total_order", "int64"),
               _f("data_collection_order", "int64")],
}


class EnvelopeBuilder:
    """Turns decoded changes into (topic, key bytes, value bytes) like Debezium."""

    def __init__(self, source_name: str, database: str, schemas_enable: bool = False) -> None:
        self.source_name = source_name
        self.database = database
        self.schemas_enable = schemas_enable

    def _source(self, shape: TableShape, pos: SourcePosition) -> dict[str, object]:
        # every event of a transaction shares all but lsn/sequence: build that part once
        cached = shape._source
        if cached is None or cached["txId"] != pos.tx_id or cached["ts_us"] != pos.ts_us \
                or cached["snapshot"] != pos.snapshot:
            cached = self.source_block(shape, pos)
            shape._source = cached
        source = dict(cached)
        source["lsn"] = pos.lsn
        source["sequence"] = f'["{pos.last_commit_lsn}","{pos.lsn}"]'
        return source

    def source_block(self, shape: TableShape, pos: SourcePosition) -> dict[str, object]:
        """The ``source`` block of an event at ``pos``."""
        return {
            "version": CONNECTOR_VERSION, "connector": "postgresql", "name": self.source_name,
            "ts_ms": pos.ts_us // 1000, "snapshot": pos.snapshot, "db": self.database,
            "sequence": f'["{pos.last_commit_lsn}","{pos.lsn}"]',
            "ts_us": pos.ts_us, "ts_ns": pos.ts_us * 1000,
            "schema": shape.relation.schema, "table": shape.relation.table,
            "txId": pos.tx_id, "lsn": pos.lsn, "xmin": None,
        }

    def encode_key(self, shape: TableShape, key: dict[str, object] | None) -> bytes | None:
        if key is None:
            return None
        if self.schemas_enable:
            return _dumps({"schema": shape.key_schema(), "payload": key})
        return _dumps(key)

    def change(self, shape: TableShape, op: str, before: dict[str, object] | None,
               after: dict[str, object] | None, key: dict[str, object] | None,
               pos: SourcePosition) -> tuple[bytes | None, bytes]:
        now_us = time.time_ns() // 1000
        value = self.value(shape, op, before, after, self._source(shape, pos),
                           now_us // 1000, now_us, now_us * 1000)
        return self.encode_key(shape, key), _dumps(value)

    def value(self, shape: TableShape, op: str, before: object, after: object,
              source: dict[str, object], ts_ms: object, ts_us: object,
              ts_ns: object) -> dict[str, object]:
        """The value of an event (wrapped with its schema when ``schemas_enable``); the
        fast path serializes it with markers as its template (:mod:`.fast_encoder`)."""
        value: dict[str, object] = {
            "before": before, "after": after, "source": source, "op": op,
            "ts_ms": ts_ms, "ts_us": ts_us, "ts_ns": ts_ns, "transaction": None,
        }
        if self.schemas_enable:
            return {"schema": shape.value_schema(), "payload": value}
        return value

    def truncate(self, shape: TableShape, pos: SourcePosition) -> bytes:
        """A truncate event (op "t"): no key, no before/after."""
        _, value = self.change(shape, "t", None, None, None, pos)
        return value
