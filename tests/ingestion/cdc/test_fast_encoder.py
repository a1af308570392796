"""The fast path gives the reference path's bytes, and hands back what it does not handle."""

from __future__ import annotations

import struct
import time

import orjson
import pytest

from ingestion.cdc import pgoutput
from ingestion.cdc.envelope import EnvelopeBuilder, SourcePosition, TableShape
from ingestion.cdc.fast_encoder import FastEncoder, compile_row_reader
from ingestion.cdc.pgoutput import UNCHANGED_TOAST, Column, Relation
from ingestion.cdc.typemap import CatalogType
from tests.ingestion.cdc.test_pgoutput import tuple_data

OID = 16384
#: every type the sources use, with NOT NULL columns (their fallbacks) and text with quotes,
#: backslashes, control characters, non-ASCII and a percent sign
COLUMNS = [
    (Column("id", 20, -1, True, not_null=True), "9007199254740993"),
    (Column("small", 21, -1, False, not_null=True), "-7"),
    (Column("n", 23, -1, False), "42"),
    (Column("f", 701, -1, False), "1.5"),
    (Column("flag", 16, -1, False, not_null=True), "t"),
    (Column("amount", 1700, 655366, False), "12.50"),
    (Column("note", 25, -1, False), 'a "quoted" \\ back\tslash\n% héllo ✓'),
    (Column("uid", 2950, -1, False), "797cc686-1e7c-4654-8433-4ccbc27bb7b0"),
    (Column("doc", 3802, -1, False), '{"a": [1, "%d"]}'),
    (Column("day", 1082, -1, False), "2024-01-02"),
    (Column("at", 1114, -1, False), "2024-01-02 03:04:05.123456"),
    (Column("at_tz", 1184, -1, False), "2024-01-02 03:04:05.1234+00"),
    (Column("clock", 1083, -1, False), "10:15:30.5"),
    (Column("span", 1186, -1, False), "P1DT2H"),
    (Column("raw", 17, -1, False), "\\x00ff"),
    (Column("tags", 1009, -1, False), '{a,"b c",NULL}'),
    (Column("status", 90001, -1, False, not_null=True), "busy"),
]
CATALOG = {90001: CatalogType(90001, "call_status", "e", 0, 0, False, ("answered", "busy"))}
NOW_NS = 1_765_000_000_123_456_789


def _shape(columns: list[Column] | None = None, key: list[str] | None = None,
           source: str = "src", table: str = "calls") -> TableShape:
    columns = columns if columns is not None else [c for c, _ in COLUMNS]
    relation = Relation(OID, "public", table, "d", columns, ["id"] if key is None else key)
    return TableShape.build(relation, source, CATALOG.__getitem__)


def _insert(*values: object) -> bytes:
    return b"I" + struct.pack(">I", OID) + b"N" + tuple_data(*values)


def _update(*values: object, old: tuple[bytes, tuple[object, ...]] | None = None) -> bytes:
    head = b"U" + struct.pack(">I", OID)
    if old is not None:
        head += old[0] + tuple_data(*old[1])
    return head + b"N" + tuple_data(*values)


def _both(shape: TableShape, builder: EnvelopeBuilder, payload: bytes, lsn: int = 0x1A2B3C,
          ) -> tuple[tuple[bytes | None, bytes] | None, tuple[bytes | None, bytes]]:
    """(fast path's key and value, reference path's key and value) of one message."""
    tx = pgoutput.Begin(0x1A3000, 1_764_999_999_000_001, 771)
    fast = FastEncoder(shape, builder).encode(payload, lsn, tx.xid, tx.final_lsn,
                                              tx.commit_time, 0x190000)
    change = pgoutput.decode(payload)
    assert isinstance(change, (pgoutput.Insert, pgoutput.Update))
    row = shape.row(change.new)
    pos = SourcePosition(lsn, tx.final_lsn, 0x190000, tx.xid, tx.commit_time)
    op = "c" if isinstance(change, pgoutput.Insert) else "u"
    reference = builder.change(shape, op, None, row, shape.key(change.new, row), pos)
    return fast, reference


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: NOW_NS)


@pytest.mark.parametrize("schemas_enable", [False, True])
def test_inserts_and_updates_are_the_reference_bytes(schemas_enable: bool) -> None:
    shape = _shape()
    builder = EnvelopeBuilder("src%d", 'db"1', schemas_enable)
    values = [text for _, text in COLUMNS]
    for payload in (_insert(*values), _update(*values)):
        fast, reference = _both(shape, builder, payload)
        assert fast == reference
    value = orjson.loads(fast[1])  # type: ignore[index]
    payload_value = value["payload"] if schemas_enable else value
    assert payload_value["after"]["note"] == values[6]
    assert payload_value["source"]["lsn"] == 0x1A2B3C
    assert payload_value["ts_us"] == NOW_NS // 1000


def test_nulls_take_the_reference_fallbacks() -> None:
    shape = _shape()
    builder = EnvelopeBuilder("src", "db")
    values = [None] * len(COLUMNS)
    values[0] = "1"
    fast, reference = _both(shape, builder, _insert(*values))
    assert fast == reference
    after = orjson.loads(fast[1])["after"]  # type: ignore[index]
    assert (after["small"], after["flag"], after["status"], after["n"]) == (0, False, "", None)


def test_a_table_without_a_primary_key_has_no_key() -> None:
    shape = _shape([Column("a", 25, -1, False), Column("b", 23, -1, False)], key=[])
    fast, reference = _both(shape, EnvelopeBuilder("src", "db"), _insert("x", "1"))
    assert fast == reference
    assert fast is not None and fast[0] is None


def test_one_transaction_shares_a_template_and_the_next_gets_its_own() -> None:
    shape = _shape([Column("id", 23, -1, True, not_null=True)])
    encoder = FastEncoder(shape, EnvelopeBuilder("src", "db"))
    first = [encoder.encode(_insert(str(i)), 100 + i, 7, 200, 1_000_000, 50) for i in range(3)]
    second = encoder.encode(_insert("9"), 300, 8, 400, 2_000_000, 200)
    sources = [orjson.loads(v)["source"] for _, v in (*first, second)]  # type: ignore[misc]
    assert [s["lsn"] for s in sources] == [100, 101, 102, 300]
    assert [s["sequence"] for s in sources] == ['["50","100"]', '["50","101"]', '["50","102"]',
                                                '["200","300"]']
    assert [s["txId"] for s in sources] == [7, 7, 7, 8]


@pytest.mark.parametrize(("case", "payload"), [
    ("unchanged TOAST value", _insert("1", UNCHANGED_TOAST)),
    ("update with the old key", _update("1", "x", old=(b"K", ("1", None)))),
    ("update with the old row (REPLICA IDENTITY FULL)", _update("1", "x", old=(b"O", ("1", "y")))),
    ("value the converter refuses", _insert("not-a-number", "x")),
    ("more columns than the shape (ADD COLUMN not yet described)", _insert("1", "x", "extra")),
    ("unknown tuple kind", b"I" + struct.pack(">I", OID) + b"N" + struct.pack(">h", 2)
     + b"t" + struct.pack(">i", 1) + b"1" + b"?"),
])
def test_what_the_fast_path_hands_back_to_the_reference(case: str, payload: bytes) -> None:
    shape = _shape([Column("id", 23, -1, True, not_null=True), Column("s", 25, -1, False)])
    assert FastEncoder(shape, EnvelopeBuilder("src", "db")).encode(
        payload, 1, 2, 3, 4, 5) is None, case


def test_generated_reader_reads_what_the_decoder_reads() -> None:
    shape = _shape()
    read = compile_row_reader(shape)
    values = [text for _, text in COLUMNS]
    data = b"xx" + tuple_data(*values)
    decoded, _ = pgoutput._tuple(data, 2)
    assert read(data, 2) == shape.row(decoded)
