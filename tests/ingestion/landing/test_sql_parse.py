"""The loader's parse as ClickHouse SQL, on embedded ClickHouse (chdb) in this process: the
same conversions as the loader's coercers, the same reasons for dead letters."""

from __future__ import annotations

import json

import chdb
import pytest

from ingestion.landing import sql_parse
from ingestion.landing.tables import RawTable, coercer


def relation(*messages: tuple[str, bytes | str]) -> str:
    """A relation with the Kafka engine's columns holding these (key, value) messages."""
    rows = ", ".join(
        f"('t.public.x', 0, {offset}, {sql_parse.literal(key)}, "
        f"{sql_parse.literal(value if isinstance(value, str) else value.decode())})"
        for offset, (key, value) in enumerate(messages))
    return ("values('_topic String, _partition UInt64, _offset UInt64, _key String, "
            f"value String', {rows})")


def query(sql: str) -> list[list[object]]:
    return [json.loads(line) for line in
            chdb.query(sql, "JSONCompactEachRow").bytes().decode().splitlines()]


def change(op: str, row: dict, lsn: int = 7, **source: object) -> str:
    body = {"op": op, "before" if op == "d" else "after": row,
            "source": {"lsn": lsn, "ts_us": 1_700_000_000_000_001, "txId": 3, **source}}
    return json.dumps(body)


TABLE = RawTable("x", ["id"], {"id": "Int64", "n": "Nullable(Int64)", "f": "Nullable(Float64)",
                               "b": "Nullable(Bool)", "s": "Nullable(String)"})


def test_values_convert_as_the_loaders_coercers_do() -> None:
    rows = [{"id": 1, "n": 5, "f": 2, "b": True, "s": "é\"q\\"},
            {"id": 2, "n": None, "f": 1.25, "b": None, "s": {"k": [1, "a"]}},
            {"id": 3, "s": [1.5, None, True]},
            {"id": 4, "s": 12}]
    sql = sql_parse.rows_select(TABLE, relation(*[("", change("c", r)) for r in rows]))
    got = query(f"SELECT id, n, f, b, s, _op, _version, _tx_id, _source_ts FROM ({sql}) "
                "ORDER BY id")
    convert = {c: coercer(t) for c, t in TABLE.columns.items()}
    expected = [[convert[c](r.get(c)) for c in TABLE.columns] for r in rows]  # type: ignore[operator]
    assert [g[:5] for g in got] == expected
    assert {(g[5], g[6], g[7], g[8]) for g in got} == {("c", 7, 3, "2023-11-14 22:13:20.000001")}


def test_delete_reads_before_and_source_ts_falls_back_to_ts_ms() -> None:
    message = change("d", {"id": 9}, lsn=8, ts_us=None, ts_ms=1_700_000_000_123)
    got = query(f"SELECT id, _op, _is_deleted, _source_ts FROM "
                f"({sql_parse.rows_select(TABLE, relation(('', message)))})")
    assert got == [[9, "d", 1, "2023-11-14 22:13:20.123000"]]


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("", b"not json", "not JSON"),
    ("", '["a list"]', "not a Debezium envelope: not a JSON object"),
    ("", '{"schema": {}, "payload": null}', "not a Debezium envelope: payload is not an object"),
    ("", '{"op": "z", "source": {}}', "not a Debezium envelope: no op/source"),
    ("", '{"op": "c", "after": null, "source": {"lsn": 1}}',
     "not a Debezium envelope: op 'c' without a row or source.lsn"),
    ("", '{"op": "c", "after": {"id": 1}, "source": {"lsn": "1"}}',
     "not a Debezium envelope: op 'c' without a row or source.lsn"),
    ("{bad", change("c", {"id": 1}), "key is not JSON"),
    ("", change("c", {"id": "text"}), "column id: does not fit Int64"),
    ("", change("c", {"id": None}), "column id: does not fit Int64"),
    ("", change("c", {"id": 1, "n": 1.5}), "column n: does not fit Nullable(Int64)"),
    ("", change("c", {"id": 1, "b": 1}), "column b: does not fit Nullable(Bool)"),
])
def test_dead_letters_say_why(key: str, value: bytes | str, reason: str) -> None:
    messages = relation((key, value))
    assert query(f"SELECT error FROM ({sql_parse.dead_letters_select(messages, TABLE)})") == \
        [[reason]]
    assert query(f"SELECT count() FROM ({sql_parse.rows_select(TABLE, messages)})") == [[0]]


def test_tombstones_truncates_and_new_columns_are_neither_rows_nor_dead_letters() -> None:
    messages = relation(("{\"id\": 1}", ""), ("", '{"op": "t", "source": {"lsn": 2}}'),
                        ("", change("c", {"id": 1, "new": "x"})))
    assert query(f"SELECT count() FROM ({sql_parse.rows_select(TABLE, messages)})") == [[0]]
    assert query(f"SELECT count() FROM ({sql_parse.dead_letters_select(messages, TABLE)})") \
        == [[0]]
    # held for the controller: only the change with a column the table lacks
    assert query(f"SELECT _offset FROM ({sql_parse.pending_select(messages, TABLE)})") == [[2]]
    assert query(f"SELECT _offset FROM ({sql_parse.pending_select(messages, None)})") == [[2]]
