"""The fast per-column converters agree with the reference conversion, errors included."""

from __future__ import annotations

import pytest

from ingestion.landing.tables import DoesNotFit, RawTable, coerce, coercer

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
