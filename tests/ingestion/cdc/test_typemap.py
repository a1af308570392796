"""Debezium's representation of each PostgreSQL type (text in, JSON value out)."""

from __future__ import annotations

import pytest

from ingestion.cdc.typemap import CatalogType, field_type, parse_array


@pytest.mark.parametrize(("oid", "typmod", "text", "expected", "semantic"), [
    (16, -1, "t", True, None),
    (21, -1, "-7", -7, None),
    (23, -1, "42", 42, None),
    (20, -1, "9007199254740993", 9007199254740993, None),
    (701, -1, "1.5", 1.5, None),
    (1700, -1, "12.50", "12.50", None),
    (25, -1, "héllo", "héllo", None),
    (2950, -1, "797cc686-1e7c-4654-8433-4ccbc27bb7b0", "797cc686-1e7c-4654-8433-4ccbc27bb7b0",
     "io.debezium.data.Uuid"),
    (3802, -1, '{"a": 1}', '{"a": 1}', "io.debezium.data.Json"),
    (1082, -1, "2024-01-02", 19724, "io.debezium.time.Date"),
    (1082, -1, "1969-12-31", -1, "io.debezium.time.Date"),
    (1083, -1, "10:15:30.5", 36_930_500_000, "io.debezium.time.MicroTime"),
    (1114, -1, "2024-01-02 03:04:05.123456", 1_704_164_645_123_456,
     "io.debezium.time.MicroTimestamp"),
    (1114, 3, "2024-01-02 03:04:05.123", 1_704_164_645_123, "io.debezium.time.Timestamp"),
    (1184, -1, "2024-01-02 03:04:05.1234+00", "2024-01-02T03:04:05.1234Z",
     "io.debezium.time.ZonedTimestamp"),
    (1184, -1, "2024-01-02 03:04:05+00", "2024-01-02T03:04:05Z",
     "io.debezium.time.ZonedTimestamp"),
    (1266, -1, "10:15:30+02", "08:15:30Z", "io.debezium.time.ZonedTime"),
    (1186, -1, "P1DT2H", 93_600_000_000, "io.debezium.time.MicroDuration"),
    (1186, -1, "P1M", 2_629_800_000_000, "io.debezium.time.MicroDuration"),
    (17, -1, "\\x00ff", "AP8=", None),
    (1114, -1, "-infinity", -9223372036854775808, "io.debezium.time.MicroTimestamp"),
    (1114, -1, "infinity", 9223372036854775807, "io.debezium.time.MicroTimestamp"),
    (1184, -1, "-infinity", "-infinity", "io.debezium.time.ZonedTimestamp"),
    (1082, -1, "infinity", 2147483647, "io.debezium.time.Date"),
])
def test_scalar_types(oid: int, typmod: int, text: str, expected: object,
                      semantic: str | None) -> None:
    ftype = field_type(oid, typmod)
    assert ftype.convert(text) == expected
    assert ftype.name == semantic


def test_arrays() -> None:
    assert parse_array('{a,"b c",NULL,"q\\"x"}') == ["a", "b c", None, 'q"x']
    assert parse_array("{}") == []
    ints = field_type(1007, -1)
    assert ints.convert("{1,2,NULL}") == [1, 2, None]
    assert ints.schema("tags")["items"] == {"type": "int32", "optional": True}


@pytest.mark.parametrize("text", ['{"a', '{"a\\', '{"'])
def test_a_cut_array_literal_is_a_value_error(text: str) -> None:
    """ValueError is what the row conversion catches (the value goes out as text); an
    IndexError would have stopped the relay."""
    with pytest.raises(ValueError, match="malformed array literal"):
        parse_array(text + "}")


def test_enum_and_domain_through_the_catalog() -> None:
    catalog = {
        90001: CatalogType(90001, "call_outcome", "e", 0, 0, False, ("answered", "busy")),
        90002: CatalogType(90002, "_call_outcome", "b", 90001, 0, True),
        90003: CatalogType(90003, "phone", "d", 0, 25, False),
    }
    enum = field_type(90001, -1, catalog.__getitem__)
    assert enum.convert("busy") == "busy"
    assert enum.schema("o")["parameters"] == {"allowed": "answered,busy"}
    assert field_type(90002, -1, catalog.__getitem__).convert("{busy,answered}") == \
        ["busy", "answered"]
    assert field_type(90003, -1, catalog.__getitem__).connect_type == "string"


def test_a_value_that_cannot_be_mapped_goes_out_as_text() -> None:
    from ingestion.cdc.envelope import TableShape
    from ingestion.cdc.pgoutput import Column, Relation

    relation = Relation(1, "public", "t", "d", [Column("id", 23, -1, True),
                                                Column("at", 1082, -1, False)], ["id"])
    shape = TableShape.build(relation, "src")
    assert shape.row(["1", "not-a-date"]) == {"id": 1, "at": "not-a-date"}
    assert shape.conversion_errors == 1


@pytest.mark.parametrize(("oid", "expression", "expected"), [
    (23, "nextval('customers_id_seq'::regclass)", 0),
    (25, "'new'::text", "new"),
    (25, "'it''s'::character varying", "it's"),
    (23, "42", 42),
    (16, "true", True),
    (1184, "now()", ""),
    (1082, "'2024-01-02'::date", 19724),
    (25, None, None),
])
def test_column_defaults_in_the_connect_schema(oid: int, expression: str | None,
                                               expected: object) -> None:
    assert field_type(oid, -1).default_value(expression) == expected
