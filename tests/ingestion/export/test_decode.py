"""The decoders undo the CDC encoding (ingestion/cdc/typemap.py) and the loader's landing.

Unit tests (no service): a value goes PostgreSQL text → Debezium JSON value → ClickHouse column
(as the loader infers it, and as String when the column was first seen null) → decoder, and
comes out as the value PostgreSQL reads back.

The round trip on PostgreSQL (``pg`` fixture, PostgreSQL only) checks every type the typemap
emits end to end: PostgreSQL prints a literal the way the relay reads it, the typemap encodes
it, the decoded value is COPYed into a column of the same type, and PostgreSQL prints the same
text again.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingestion.cdc.relay import Catalog
from ingestion.cdc.replication import SESSION_OPTIONS
from ingestion.cdc.typemap import FieldType, field_type
from ingestion.export.decode import decoder_for, fallback_decoder, pg_text
from ingestion.landing.tables import RawTable, coerce


def landed(value: object, first_seen_null: bool = False) -> object:
    """What clickhouse-connect returns for a Debezium value the loader stored."""
    if value is None:
        return None
    ch_type = "Nullable(String)" if first_seen_null else \
        RawTable("t", []).column_type_for("c", value)
    return coerce(value, ch_type)


def roundtrip(field: FieldType, text: str, first_seen_null: bool = False) -> object:
    return decoder_for(field)(landed(field.convert(text), first_seen_null))


@pytest.mark.parametrize(("oid", "typmod", "text", "expected"), [
    (16, -1, "t", True),
    (21, -1, "-7", -7),
    (23, -1, "42", 42),
    (20, -1, "9007199254740993", 9007199254740993),
    (701, -1, "1.5", 1.5),
    (1700, -1, "12.50", "12.50"),
    (25, -1, "héllo", "héllo"),
    (2950, -1, "797cc686-1e7c-4654-8433-4ccbc27bb7b0", "797cc686-1e7c-4654-8433-4ccbc27bb7b0"),
    (3802, -1, '{"a": 1}', '{"a": 1}'),
    (1082, -1, "2024-01-02", date(2024, 1, 2)),
    (1082, -1, "1969-12-31", date(1969, 12, 31)),
    (1082, -1, "infinity", "infinity"),
    (1082, -1, "-infinity", "-infinity"),
    (1083, -1, "10:15:30.5", time(10, 15, 30, 500_000)),
    (1083, -1, "24:00:00", "24:00:00"),
    (1083, 3, "10:15:30.125", time(10, 15, 30, 125_000)),
    (1114, -1, "2024-01-02 03:04:05.123456", datetime(2024, 1, 2, 3, 4, 5, 123_456)),
    (1114, -1, "1900-01-01 00:00:00", datetime(1900, 1, 1)),
    (1114, 3, "2024-01-02 03:04:05.123", datetime(2024, 1, 2, 3, 4, 5, 123_000)),
    (1114, -1, "infinity", "infinity"),
    (1114, -1, "-infinity", "-infinity"),
    (1184, -1, "2024-01-02 03:04:05.1234+00", "2024-01-02T03:04:05.1234Z"),
    (1184, -1, "-infinity", "-infinity"),
    (1266, -1, "10:15:30+00", "10:15:30Z"),
    (1186, -1, "P1DT2H", timedelta(days=1, hours=2)),
    (1186, -1, "PT-15M", timedelta(minutes=-15)),
    (17, -1, "\\x00ff", b"\x00\xff"),
    (1007, -1, "{1,NULL,3}", "{1,NULL,3}"),
    (1009, -1, '{"a b","c,d",NULL,"e\\"f"}', '{"a b","c,d",NULL,"e\\"f"}'),
    (1182, -1, "{2026-01-01,infinity}", '{"2026-01-01","infinity"}'),
    (1000, -1, "{t,f}", ('{"true","false"}', '{"t","f"}')),  # JSON text, or parsed back
    (1001, -1, '{"\\\\x00ff"}', '{"\\\\x00ff"}'),
    (1187, -1, "{PT15M}", '{"0 days 900.000000 seconds"}'),
])
@pytest.mark.parametrize("first_seen_null", [False, True])
def test_decoders_undo_the_encoding(oid: int, typmod: int, text: str, expected: object,
                                    first_seen_null: bool) -> None:
    field = field_type(oid, typmod)
    value = roundtrip(field, text, first_seen_null)
    if first_seen_null and isinstance(expected, bool):
        expected = "true" if expected else "false"  # PostgreSQL reads the JSON text
    elif first_seen_null and isinstance(expected, (int, float)):
        expected = str(expected)
    assert value in expected if isinstance(expected, tuple) else value == expected


def test_fallback_and_meta_decoders() -> None:
    assert fallback_decoder("Nullable(String)")("x") == "x"
    assert fallback_decoder("Array(Nullable(Int64))")([1, None]) == "{1,NULL}"
    assert pg_text(timedelta(seconds=-1)) == "-1 days 86399.000000 seconds"
    assert pg_text(b"\x01") == "\\x01"
    assert pg_text(False) == "f"


# ---------------------------------------------------------------------- on PostgreSQL
#: every type the typemap emits (``_BUILTIN``, both timestamp/time precisions, the built-in
#: arrays, an enum and a domain) with values at the edges
TYPES: dict[str, list[str]] = {
    "boolean": ["t", "f"],
    "bytea": ["\\x00ff10", "\\x"],
    '"char"': ["a"],
    "name": ["abc"],
    "text": ['héllo "q" \\ back', "", "__debezium_unavailable"],
    "character(3)": ["ab"],
    "character varying(10)": ["abc"],
    "bigint": ["-9223372036854775808", "9223372036854775807"],
    "smallint": ["-32768"],
    "integer": ["2147483647"],
    "oid": ["4294967295"],
    "real": ["1.5", "-0.25"],
    "double precision": ["1e300", "2.25", "-0"],
    "numeric": ["12345678.1234", "NaN", "1e-20"],
    "numeric(5,4)": ["0.0300"],
    "json": ['{"a": [1, 2],   "b": "x"}'],
    "jsonb": ['{"b": {"c": null}}', "[]"],
    "uuid": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    "date": ["2026-11-22", "1900-01-01", "infinity", "-infinity"],
    "time": ["23:59:59.999999", "24:00:00", "00:00"],
    "time(3)": ["12:00:00.123"],
    "time with time zone": ["10:15:30.25+00"],
    "timestamp": ["2026-11-22 10:00:00.654321", "1900-01-01 00:00", "infinity", "-infinity"],
    "timestamp(3)": ["2026-11-22 10:00:00.123", "1969-12-31 23:59:59.999"],
    "timestamptz": ["2026-11-22 10:00:00.5+03", "-infinity", "1969-12-31 23:59:59.999999+00"],
    "interval": ["1 day 02:03:04.5", "-15 minutes", "0"],
    "inet": ["10.0.0.1/8", "::1"],
    "cidr": ["10.0.0.0/8"],
    "macaddr": ["08:00:2b:01:02:03"],
    "money": ["12.34", "-1"],
    "boolean[]": ["{t,NULL,f}"],
    "bytea[]": ['{"\\\\x00ff",NULL}'],
    "smallint[]": ["{6,7}", "{}"],
    "integer[]": ["{1,NULL,3}"],
    "bigint[]": ["{-9223372036854775808}"],
    "text[]": ['{"a b","c,d",NULL,"e\\"f","NULL"}'],
    "character varying[]": ["{x,y}"],
    "character(2)[]": ["{a,bb}"],
    "real[]": ["{1.5}"],
    "double precision[]": ["{2.25,-1e300}"],
    "numeric[]": ["{1.10,NaN}"],
    "date[]": ["{2026-01-01,infinity,NULL}"],
    "timestamp[]": ['{"2026-01-01 10:00:00.5",-infinity}'],
    "timestamptz[]": ['{"2026-01-01 00:00:00+00","2026-06-01 12:00:00.25+05"}'],
    "uuid[]": ["{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"],
    "jsonb[]": ['{"{\\"a\\": 1}"}'],
    "json[]": ['{"[1, 2]"}'],
    "time[]": ["{10:00:00.5,24:00:00}"],
    "interval[]": ['{"00:15:00","-1 day"}'],
    "export_mood": ["happy"],
    "export_positive": ["42"],
}


@pytest.mark.integration
def test_every_type_round_trips_through_postgresql(pg: Any) -> None:  # noqa: ANN401
    with psycopg.connect(pg.config.pg_dsn("postgres"), autocommit=True,
                         options=SESSION_OPTIONS) as conn:
        conn.execute("DROP TYPE IF EXISTS export_mood; DROP DOMAIN IF EXISTS export_positive")
        conn.execute("CREATE TYPE export_mood AS ENUM ('sad', 'happy')")
        conn.execute("CREATE DOMAIN export_positive AS integer CHECK (VALUE > 0)")
        try:
            failures = [failure for pg_type, literals in TYPES.items()
                        if (failure := _round_trip(conn, pg_type, literals))]
        finally:
            conn.execute("DROP TYPE export_mood CASCADE; DROP DOMAIN export_positive CASCADE")
    assert not failures, "\n".join(failures)


def _round_trip(conn: psycopg.Connection[Any], pg_type: str, literals: list[str]) -> str | None:
    kind = sql.SQL(pg_type)
    conn.execute("DROP TABLE IF EXISTS pg_temp.probe")
    conn.execute(sql.SQL("CREATE TEMP TABLE probe (n int, v {})").format(kind))
    oid, typmod = conn.execute(
        "SELECT atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = "
        "'pg_temp.probe'::regclass AND attname = 'v'").fetchone()
    field = field_type(oid, typmod, Catalog(conn).type_info)
    # the text the relay reads (its session settings), then what the exporter writes back
    texts = [_output_text(conn, sql.SQL("SELECT {}::{}").format(sql.Literal(literal), kind))
             for literal in literals]
    same = "v = %s::{}" if pg_type.startswith("interval") else "v::text = %s::{}::text"
    for first_seen_null in (False, True):
        conn.execute("TRUNCATE pg_temp.probe")
        with conn.cursor().copy("COPY pg_temp.probe (n, v) FROM STDIN") as copy:
            for n, text in enumerate(texts):
                copy.write_row((n, roundtrip(field, text, first_seen_null)))
        for n, literal in enumerate(literals):
            ok = conn.execute(sql.SQL(f"SELECT {same} FROM pg_temp.probe WHERE n = %s").format(
                kind), (literal, n)).fetchone()[0]
            if not ok:
                got = conn.execute("SELECT v::text FROM pg_temp.probe WHERE n = %s",
                                   (n,)).fetchone()[0]
                return f"{pg_type} {literal!r} (first seen null: {first_seen_null}): {got!r}"
    return None


def _output_text(conn: psycopg.Connection[Any], query: sql.Composable) -> str:
    """A value as the type's output function prints it (what pgoutput sends), not ``::text``
    (which prints a boolean as ``true``)."""
    result = conn.pgconn.exec_(query.as_bytes(conn))
    return result.get_value(0, 0).decode()
