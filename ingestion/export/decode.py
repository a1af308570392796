"""Debezium JSON values as landed in ClickHouse → values PostgreSQL's COPY reads back.

:mod:`ingestion.cdc.typemap` says how each PostgreSQL type is encoded in the change events
(``decimal.handling.mode=string``, adaptive time precision, numeric intervals, base64 bytes);
the loader then stores each JSON value in a column whose type it inferred from the values
(numbers as Int64/Float64, everything else as String, arrays as JSON text). A decoder undoes both
steps for one column: it takes the value clickhouse-connect returns and gives what
``psycopg``'s text COPY writes into a column of the source's type:

- Python objects where the encoding is not PostgreSQL text (days → ``date``, µs →
  ``datetime``/``time``/``timedelta``, base64 → ``bytes``, arrays → an array literal);
- the string itself where PostgreSQL parses the event's text exactly (numeric, json/jsonb,
  uuid, enums, ``2026-11-22T00:35:09.1234Z`` timestamps, ``infinity``).

Decoders accept the value in either landed form, e.g. a timestamp column first seen as null
lands as String and later holds ``"1763770509123456"``.

Known losses of the encoding itself (Debezium's, not the exporter's): an interval keeps only its
length (a month is 365.25/12 days), ``timetz`` keeps the UTC time without its offset, float
NaN/±Infinity are null in JSON. (Raw tables created before arrays landed as JSON text have
Array columns, where a NULL array was stored as an empty one; the decoder reads both forms.)
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import orjson

from ingestion.cdc.typemap import UNAVAILABLE, FieldType

Decoder = Callable[[object], object]

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1)
_DATE_INFINITY = {2147483647: "infinity", -2147483648: "-infinity"}
_TS_INFINITY = {9223372036854775807: "infinity", -9223372036854775808: "-infinity"}
_DAY_US = 86_400_000_000

__all__ = ["UNAVAILABLE", "Decoder", "decoder_for", "fallback_decoder", "identity"]


def identity(value: object) -> object:
    return value


def _int(value: object) -> int:
    return value if type(value) is int else int(value)  # type: ignore[arg-type]


@lru_cache(maxsize=65_536)  # dates repeat a lot
def _date(value: object) -> object:
    days = _int(value)
    return _DATE_INFINITY.get(days) or _EPOCH_DATE + timedelta(days=days)


def _micro_timestamp(value: object) -> object:
    micros = _int(value)
    return _TS_INFINITY.get(micros) or _EPOCH + timedelta(microseconds=micros)


def _milli_timestamp(value: object) -> object:
    millis = _int(value)
    return _TS_INFINITY.get(millis) or _EPOCH + timedelta(milliseconds=millis)


def _time_of(micros: int) -> object:
    if micros == _DAY_US:
        return "24:00:00"
    seconds, micro = divmod(micros, 1_000_000)
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro)


def _micro_time(value: object) -> object:
    return _time_of(_int(value))


def _milli_time(value: object) -> object:
    return _time_of(_int(value) * 1000)


def _micro_duration(value: object) -> object:
    return timedelta(microseconds=_int(value))


def _bytes(value: object) -> object:
    return base64.b64decode(value)  # type: ignore[arg-type]


#: semantic Connect type → decoder; absent names keep the value as it is
_BY_NAME: dict[str, Decoder] = {
    "io.debezium.time.Date": _date,
    "io.debezium.time.MicroTimestamp": _micro_timestamp,
    "io.debezium.time.Timestamp": _milli_timestamp,
    "io.debezium.time.MicroTime": _micro_time,
    "io.debezium.time.Time": _milli_time,
    "io.debezium.time.MicroDuration": _micro_duration,
}


def _scalar(field: FieldType) -> Decoder:
    if field.name in _BY_NAME:
        return _BY_NAME[field.name]
    if field.connect_type == "bytes":
        return _bytes
    return identity  # text, numeric, json, uuid, enum, zoned times, numbers, booleans


def pg_text(value: object) -> str:
    """One decoded value as PostgreSQL input text (for array elements)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.days} days {value.seconds}.{value.microseconds:06d} seconds"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _quote_element(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array(element: Decoder) -> Decoder:
    def decode(value: object) -> object:
        items = value if isinstance(value, list) else orjson.loads(value)  # type: ignore[arg-type]
        if element is identity and all(type(i) is int or i is None for i in items):
            return "{" + ",".join("NULL" if i is None else str(i) for i in items) + "}"
        return "{" + ",".join("NULL" if item is None else _quote_element(pg_text(element(item)))
                              for item in items) + "}"
    return decode


def decoder_for(field: FieldType) -> Decoder:
    """The decoder of a column whose events were encoded as ``field`` (see typemap)."""
    if field.connect_type == "array" and field.items is not None:
        return _array(_scalar(field.items))
    return _scalar(field)


def fallback_decoder(clickhouse_type: str) -> Decoder:
    """For a raw column the source catalog no longer knows: keep the landed value."""
    return _array(identity) if "Array(" in clickhouse_type else identity
