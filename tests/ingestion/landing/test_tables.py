"""The fast per-column converters agree with the reference conversion, errors included."""

from __future__ import annotations

import pytest

from ingestion.landing.tables import UNTYPED_COMMENT, DoesNotFit, RawTable, coerce, coercer

TYPES = ["String", "Nullable(String)", "Int64", "Nullable(Int64)", "Float64",
         "Nullable(Float64)", "Bool", "Nullable(Bool)", "Array(Nullable(Int64))"]
VALUES = [None, "x", "", 0, 7, -3, 1.5, 0.0, True, False, [1, None], {"a": 1}, 2**62]


@pytest.mark.parametrize("ch_type", TYPES)
def test_fast_converter_equals_reference(ch_type: str) -> None:
    fast = coercer(ch_type)
    for value in VALUES:
        try:
            expected: object = coerce(value, ch_type)
        except DoesNotFit:
            with pytest.raises(DoesNotFit):
                fast(value)
            continue
        got = fast(value)
        assert got == expected and type(got) is type(expected), (ch_type, value)


@pytest.mark.parametrize("first", [None, [1, 2], [], ["a", None]])
def test_an_array_column_keeps_nulls_whatever_value_came_first(first: object) -> None:
    """ClickHouse has no Nullable(Array): array columns land as JSON text, so a NULL array
    stays NULL and an empty one stays [] regardless of which arrived first."""
    ch_type = RawTable("t", ["id"]).column_type_for("tags", first)
    assert ch_type == "Nullable(String)"
    convert = coercer(ch_type)
    assert convert(None) is None
    assert convert([]) == "[]"
    assert convert([1, None]) == "[1,null]"


@pytest.mark.parametrize("key", [["id"], []])
def test_no_sorting_key_repeats_an_expression(key: list[str]) -> None:
    """ClickHouse rejects a sorting key that names a column twice ("Primary key … contains a
    duplicate expression"): a table without a primary key once got no history table, and the
    loader then retried a schema change on it forever."""
    import re

    table = RawTable("dialer__t", key)
    table.columns["id"] = "Nullable(Int64)"
    for statement in table.create_sql():
        for order in re.findall(r"ORDER BY \(([^)]*)\)", statement):
            names = [n.strip() for n in order.split(",")]
            assert len(names) == len(set(names)), statement


def test_a_column_of_nulls_stays_untyped_until_a_value_types_it() -> None:
    table = RawTable("dialer__calls", ["id"])
    for column, value in {"id": 1, "campaign_id": None, "note": None}.items():
        table.add_column(column, value)
    assert table.untyped == {"campaign_id", "note"}
    assert table.columns["campaign_id"] == "Nullable(String)"
    create = table.create_sql()[0]
    assert f"campaign_id Nullable(String) COMMENT '{UNTYPED_COMMENT}'" in create
    assert "id Int64," in create  # (a key column is typed by its first value, never untyped)
    assert table.needs_type({"id": 2, "campaign_id": None}) == []
    assert table.needs_type({"id": 2, "campaign_id": 7}) == ["campaign_id"]
    convert_before = table.coercers()
    statements = table.set_type("campaign_id", 7)
    assert table.untyped == {"note"}
    assert table.columns["campaign_id"] == "Nullable(Int64)"
    assert [s.split(" MODIFY COLUMN ")[1] for s in statements[:2]] == [
        "campaign_id Nullable(Int64) COMMENT ''"] * 2
    assert table.coercers() is not convert_before
    assert dict(table.coercers())["campaign_id"](7) == 7
    # a column added later with a null is untyped too
    assert "COMMENT" in table.add_column("region", None)[1]
    assert "COMMENT" not in table.add_column("agent", 4)[1]


def test_the_sql_parse_holds_a_value_of_an_untyped_column() -> None:
    """The Kafka-engine mode's views: an untyped column takes nulls only, so a value is held
    for the controller, which types the column first (as the loader does before converting)."""
    from ingestion.landing import sql_parse

    table = RawTable("dialer__calls", ["id"])
    table.add_column("id", 1)
    table.add_column("campaign_id", None)
    assert "JSONType(row, 'campaign_id') = 'Null'" in sql_parse.fits(table)
    table.set_type("campaign_id", 7)
    assert "JSONType(row, 'campaign_id') IN ('Int64', 'UInt64', 'Null')" in sql_parse.fits(table)


def test_a_column_of_nulls_takes_the_source_type_when_known() -> None:
    table = RawTable("dialer__calls", ["id"])
    table.add_column("id", 1)
    for column, connect_type in {"campaign_id": "int64", "hold": "int32", "score": "double",
                                 "vip": "boolean", "at": "string", "tags": "array"}.items():
        table.add_column(column, None, connect_type)
    assert table.untyped == set()
    assert table.columns == {"id": "Int64", "campaign_id": "Nullable(Int64)",
                             "hold": "Nullable(Int64)", "score": "Nullable(Float64)",
                             "vip": "Nullable(Bool)", "at": "Nullable(String)",
                             "tags": "Nullable(String)"}
    # a value's own type wins over the source's (a null alone shows none)
    table.add_column("agent", 4, "string")
    assert table.columns["agent"] == "Nullable(Int64)"
