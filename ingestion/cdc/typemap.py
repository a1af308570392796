"""PostgreSQL text values → Debezium JSON values and Connect schemas.

Mirrors the Debezium PostgreSQL connector with these connector settings, which a drop-in
Debezium deployment must use too (``deploy/debezium.md`` lists them):
``decimal.handling.mode=string``, ``time.precision.mode=adaptive`` (default),
``interval.handling.mode=numeric`` (default), ``binary.handling.mode=bytes`` (default, base64 in
JSON), ``hstore``/``json`` as strings. ``decimal.handling.mode=precise`` (Debezium's default)
cannot be used with schemaless JSON: the scale would be lost.

The server sends text in the session's formats; the replication connection sets
``DateStyle=ISO``, ``TimeZone=UTC`` and ``IntervalStyle=iso_8601`` so that parsing is exact.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

UNAVAILABLE = "__debezium_unavailable_value"  # Debezium's unavailable.value.placeholder

Converter = Callable[[str], object]
#: what a converter raises for a value it cannot map (the value is then published as text)
CONVERSION_ERRORS = (ValueError, TypeError, OverflowError, IndexError)
_EPOCH_DATE = date(1970, 1, 1)


@dataclass(frozen=True)
class FieldType:
    """How one column is converted, and its Kafka Connect schema."""

    convert: Converter
    connect_type: str  # int16 int32 int64 float double boolean string bytes array
    name: str | None = None  # semantic type, e.g. io.debezium.time.MicroTimestamp
    items: FieldType | None = None  # element type of an array
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def fallback(self) -> object:
        """What Debezium puts in a required (NOT NULL) field the event has no value for (the
        non-key columns of a REPLICA IDENTITY DEFAULT delete)."""
        return {"int16": 0, "int32": 0, "int64": 0, "float": 0.0, "double": 0.0,
                "boolean": False, "array": []}.get(self.connect_type, "")

    def default_value(self, expression: str | None) -> object:
        """The Connect schema default of a column default, as Debezium derives it: a literal
        (``'abc'::text``, ``42``, ``true``) converted like a value; a function such as
        ``nextval(...)`` or ``now()`` becomes the type's fallback (0 for SERIAL); none → None."""
        if expression is None:
            return None
        text = expression.strip()
        literal = re.fullmatch(r"'((?:[^']|'')*)'(?:::[\w\s\".\[\]()]+)?", text)
        if literal:
            text = literal[1].replace("''", "'")
        elif re.fullmatch(r"-?\d+(\.\d+)?", text) or text in ("true", "false"):
            text = {"true": "t", "false": "f"}.get(text, text)
        else:
            return self.fallback
        try:
            return self.convert(text)
        except (ValueError, TypeError, OverflowError):
            return self.fallback

    def schema(self, field: str | None = None, optional: bool = True,
               default: object = None) -> dict[str, object]:
        schema: dict[str, object] = {"type": self.connect_type, "optional": optional}
        if default is not None:
            schema["default"] = default
        if self.name:
            schema["name"] = self.name
            schema["version"] = 1
        if self.parameters:
            schema["parameters"] = dict(self.parameters)
        if self.items is not None:
            schema["items"] = self.items.schema(optional=True)
        if field is not None:
            schema["field"] = field
        return schema


# ---------------------------------------------------------------------- scalar converters
def _bool(text: str) -> bool:
    return text == "t"


def _float(text: str) -> float:
    return float(text)  # accepts NaN, Infinity, -Infinity


def _date_days(text: str) -> int:
    if text == "infinity":
        return 2147483647
    if text == "-infinity":
        return -2147483648
    return (date.fromisoformat(text) - _EPOCH_DATE).days


def _parse_timestamp(text: str) -> datetime:
    # '2026-11-22 00:35:09.123456' (ISO DateStyle); fromisoformat accepts the space
    return datetime.fromisoformat(text)


def _micros_since_epoch(moment: datetime) -> int:
    delta = moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: Debezium's representation of PostgreSQL's ±infinity in timestamp columns (Long.MAX/MIN)
_INFINITY_MICROS = {"infinity": 9223372036854775807, "-infinity": -9223372036854775808}


def _micro_timestamp(text: str) -> int:
    if text in _INFINITY_MICROS:
        return _INFINITY_MICROS[text]
    return _micros_since_epoch(_parse_timestamp(text))


def _milli_timestamp(text: str) -> int:
    if text in _INFINITY_MICROS:
        return _INFINITY_MICROS[text]
    return _micro_timestamp(text) // 1000


def _zoned_timestamp(text: str) -> str:
    """'2026-11-22 00:35:09.1234+00' → '2026-11-22T00:35:09.1234Z' (Debezium ZonedTimestamp)."""
    if text in ("infinity", "-infinity"):
        return text  # Debezium passes ±infinity through as text for ZonedTimestamp
    if text.endswith("+00") and len(text) >= 22 and text[10] == " ":
        # fast path: the replication session runs in UTC
        body = text[:-3]
        if "." in body:
            body = body.rstrip("0").rstrip(".")
        return body[:10] + "T" + body[11:] + "Z"
    if text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    moment = datetime.fromisoformat(text).astimezone(UTC)
    out = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        out += f".{moment.microsecond:06d}".rstrip("0")
    return out + "Z"


def _micro_time(text: str) -> int:
    if text == "24:00:00":
        return 86_400_000_000
    parsed = time.fromisoformat(text)
    return ((parsed.hour * 60 + parsed.minute) * 60 + parsed.second) * 1_000_000 \
        + parsed.microsecond


def _milli_time(text: str) -> int:
    return _micro_time(text) // 1000


def _zoned_time(text: str) -> str:
    if text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    parsed = time.fromisoformat(text)
    offset = parsed.utcoffset()
    seconds = ((parsed.hour * 60 + parsed.minute) * 60 + parsed.second) \
        - int(offset.total_seconds() if offset else 0)
    seconds %= 86_400
    out = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if parsed.microsecond:
        out += f".{parsed.microsecond:06d}".rstrip("0")
    return out + "Z"


_ISO_INTERVAL = re.compile(
    r"^P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$")
_DAYS_PER_MONTH_AVG = 365.25 / 12.0


def _micro_duration(text: str) -> int:
    """ISO-8601 interval to µs as Debezium computes it (a month is 365.25/12 days)."""
    match = _ISO_INTERVAL.match(text)
    if not match:
        raise ValueError(f"cannot parse interval {text!r}")
    g = {k: v for k, v in match.groupdict().items() if v is not None}
    days = int(g.get("y", 0)) * 12 * _DAYS_PER_MONTH_AVG \
        + int(g.get("mo", 0)) * _DAYS_PER_MONTH_AVG + int(g.get("d", 0))
    seconds = days * 86_400 + int(g.get("h", 0)) * 3600 + int(g.get("mi", 0)) * 60 \
        + float(g.get("s", 0))
    return round(seconds * 1_000_000)


def _bytea(text: str) -> str:
    if not text.startswith("\\x"):
        raise ValueError("bytea must be in hex output format (bytea_output=hex)")
    return base64.b64encode(bytes.fromhex(text[2:])).decode()


def identity(text: str) -> str:
    """Text types: the value as PostgreSQL printed it."""
    return text


_identity = identity


# ---------------------------------------------------------------------- catalog of types
STRING = FieldType(_identity, "string")
_BUILTIN: dict[int, FieldType] = {
    16: FieldType(_bool, "boolean"),
    17: FieldType(_bytea, "bytes"),
    18: STRING, 19: STRING, 25: STRING, 1042: STRING, 1043: STRING,
    20: FieldType(int, "int64"),
    21: FieldType(int, "int16"),
    23: FieldType(int, "int32"),
    26: FieldType(int, "int64"),
    700: FieldType(_float, "float"),
    701: FieldType(_float, "double"),
    1700: FieldType(_identity, "string"),  # decimal.handling.mode=string
    114: FieldType(_identity, "string", "io.debezium.data.Json"),
    3802: FieldType(_identity, "string", "io.debezium.data.Json"),
    2950: FieldType(_identity, "string", "io.debezium.data.Uuid"),
    1082: FieldType(_date_days, "int32", "io.debezium.time.Date"),
    1083: FieldType(_micro_time, "int64", "io.debezium.time.MicroTime"),  # see field_type
    1266: FieldType(_zoned_time, "string", "io.debezium.time.ZonedTime"),
    1184: FieldType(_zoned_timestamp, "string", "io.debezium.time.ZonedTimestamp"),
    1186: FieldType(_micro_duration, "int64", "io.debezium.time.MicroDuration"),
    869: STRING, 650: STRING, 829: STRING, 790: FieldType(_identity, "string"),
}
#: converters the native row codec (rowcodec.c) implements itself, by its letter for them
NATIVE_KINDS: dict[Converter, str] = {int: "i", _bool: "b", _zoned_timestamp: "z"}
_MICRO_TIMESTAMP = FieldType(_micro_timestamp, "int64", "io.debezium.time.MicroTimestamp")
_MILLI_TIMESTAMP = FieldType(_milli_timestamp, "int64", "io.debezium.time.Timestamp")
_MICRO_TIME = _BUILTIN[1083]
_MILLI_TIME = FieldType(_milli_time, "int32", "io.debezium.time.Time")
#: array type oid → element type oid, for the built-in array types
BUILTIN_ARRAYS = {
    1000: 16, 1001: 17, 1005: 21, 1007: 23, 1016: 20, 1009: 25, 1015: 1043, 1014: 1042,
    1021: 700, 1022: 701, 1231: 1700, 1182: 1082, 1115: 1114, 1185: 1184, 2951: 2950,
    3807: 3802, 199: 114, 1183: 1083, 1187: 1186,
}


@dataclass(frozen=True)
class CatalogType:
    """What the catalog says of a type the built-in table does not know."""

    oid: int
    name: str
    kind: str  # pg_type.typtype: b base, e enum, d domain, c composite, r range
    element: int  # typelem for arrays, else 0
    base: int  # typbasetype for domains, else 0
    is_array: bool
    enum_values: tuple[str, ...] = ()


CatalogLookup = Callable[[int], CatalogType]


def field_type(type_oid: int, typmod: int, lookup: CatalogLookup | None = None) -> FieldType:
    """The converter and schema of a column of type ``type_oid`` (``typmod`` as in pg)."""
    if type_oid == 1114:  # timestamp without time zone: adaptive precision
        precision = typmod if typmod >= 0 else 6
        return _MILLI_TIMESTAMP if precision <= 3 else _MICRO_TIMESTAMP
    if type_oid == 1083:  # time without time zone: adaptive precision too
        precision = typmod if typmod >= 0 else 6
        return _MILLI_TIME if precision <= 3 else _MICRO_TIME
    if type_oid in _BUILTIN:
        return _BUILTIN[type_oid]
    if type_oid in BUILTIN_ARRAYS:
        return _array_of(field_type(BUILTIN_ARRAYS[type_oid], -1, lookup))
    if lookup is None:
        return STRING
    info = lookup(type_oid)
    if info.is_array and info.element:
        return _array_of(field_type(info.element, -1, lookup))
    if info.kind == "e":
        return FieldType(_identity, "string", "io.debezium.data.Enum",
                         parameters=(("allowed", ",".join(info.enum_values)),))
    if info.kind == "d" and info.base:
        return field_type(info.base, typmod, lookup)
    return STRING


def _array_of(element: FieldType) -> FieldType:
    def convert(text: str) -> object:
        return [None if item is None else element.convert(item)
                for item in parse_array(text)]

    return FieldType(convert, "array", items=element)


def parse_array(text: str) -> list[str | None]:
    """Parse a one-dimensional PostgreSQL array literal: ``{1,2,"a b",NULL}``; ValueError
    for one that is cut or malformed (the value is then published as text)."""
    try:
        return _parse_array(text)
    except IndexError:
        raise ValueError(f"malformed array literal {text[:80]!r}") from None


def _parse_array(text: str) -> list[str | None]:
    if not text.startswith("{") or not text.endswith("}"):
        # e.g. '[0:1]={1,2}' (explicit bounds): drop the bounds
        text = text[text.index("=") + 1:] if "=" in text else text
    body = text[1:-1]
    items: list[str | None] = []
    if not body:
        return items
    i, n = 0, len(body)
    while i < n:
        if body[i] == '"':
            i += 1
            chars = []
            while body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1  # closing quote
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            raw = body[i:end]
            items.append(None if raw == "NULL" else raw)
            i = end
        if i < n and body[i] == ",":
            i += 1
    return items
