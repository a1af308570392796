"""The fast path gives the reference path's bytes, and hands back what it does not handle."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from contour.config import CdcSource
from ingestion.cdc import pgoutput, rowcodec
from ingestion.cdc.envelope import EnvelopeBuilder, SourcePosition, TableShape
from ingestion.cdc.fast_encoder import FastEncoder, compile_row_reader
from ingestion.cdc.pgoutput import UNCHANGED_TOAST, Column, Relation
from ingestion.cdc.relay import Relay
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


def _both(shape: TableShape, builder: EnvelopeBuilder, payload: bytes,
          codec: ModuleType | None, lsn: int = 0x1A2B3C,
          ) -> tuple[tuple[bytes | None, bytes] | None, tuple[bytes | None, bytes]]:
    """(fast path's key and value, reference path's key and value) of one message."""
    tx = pgoutput.Begin(0x1A3000, 1_764_999_999_000_001, 771)
    fast = FastEncoder(shape, builder, codec).encode(payload, lsn, tx.xid, tx.final_lsn,
                                              tx.commit_time, 0x190000)
    change = pgoutput.decode(payload)
    assert isinstance(change, (pgoutput.Insert, pgoutput.Update))
    row = shape.row(change.new)
    pos = SourcePosition(lsn, tx.final_lsn, 0x190000, tx.xid, tx.commit_time)
    op = "c" if isinstance(change, pgoutput.Insert) else "u"
    reference = builder.change(shape, op, None, row, shape.key(change.new, row), pos)
    return fast, reference


@pytest.fixture(params=["python", "native"])
def codec(request: pytest.FixtureRequest) -> ModuleType | None:
    """Each test runs on both row codecs: the pure-Python reader and the C one."""
    if request.param == "python":
        return None
    native = rowcodec.load()
    if native is None:
        if rowcodec.compiler() is None:
            pytest.skip("no C compiler here, so the native row codec cannot be built")
        pytest.fail("a C compiler exists but the native row codec is not built (or is "
                    "stale): run `python3 bootstrap.py setup`")
    return native


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: NOW_NS)


@pytest.mark.parametrize("schemas_enable", [False, True])
def test_inserts_and_updates_are_the_reference_bytes(schemas_enable: bool,
                                                     codec: ModuleType | None) -> None:
    shape = _shape()
    builder = EnvelopeBuilder("src%d", 'db"1', schemas_enable)
    values = [text for _, text in COLUMNS]
    for payload in (_insert(*values), _update(*values)):
        fast, reference = _both(shape, builder, payload, codec)
        assert fast == reference
    value = orjson.loads(fast[1])  # type: ignore[index]
    payload_value = value["payload"] if schemas_enable else value
    assert payload_value["after"]["note"] == values[6]
    assert payload_value["source"]["lsn"] == 0x1A2B3C
    assert payload_value["ts_us"] == NOW_NS // 1000


def test_nulls_take_the_reference_fallbacks(codec: ModuleType | None) -> None:
    shape = _shape()
    builder = EnvelopeBuilder("src", "db")
    values = [None] * len(COLUMNS)
    values[0] = "1"
    fast, reference = _both(shape, builder, _insert(*values), codec)
    assert fast == reference
    after = orjson.loads(fast[1])["after"]  # type: ignore[index]
    assert (after["small"], after["flag"], after["status"], after["n"]) == (0, False, "", None)


def test_a_table_without_a_primary_key_has_no_key(codec: ModuleType | None) -> None:
    shape = _shape([Column("a", 25, -1, False), Column("b", 23, -1, False)], key=[])
    fast, reference = _both(shape, EnvelopeBuilder("src", "db"), _insert("x", "1"), codec)
    assert fast == reference
    assert fast is not None and fast[0] is None


def test_one_transaction_shares_a_template_and_the_next_gets_its_own(
        codec: ModuleType | None) -> None:
    shape = _shape([Column("id", 23, -1, True, not_null=True)])
    encoder = FastEncoder(shape, EnvelopeBuilder("src", "db"), codec)
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
def test_what_the_fast_path_hands_back_to_the_reference(case: str, payload: bytes,
                                                        codec: ModuleType | None) -> None:
    shape = _shape([Column("id", 23, -1, True, not_null=True), Column("s", 25, -1, False)])
    assert FastEncoder(shape, EnvelopeBuilder("src", "db"), codec).encode(
        payload, 1, 2, 3, 4, 5) is None, case


def test_generated_reader_reads_what_the_decoder_reads() -> None:
    shape = _shape()
    read = compile_row_reader(shape)
    values = [text for _, text in COLUMNS]
    data = b"xx" + tuple_data(*values)
    decoded, _ = pgoutput._tuple(data, 2)
    assert read(data, 2) == shape.row(decoded)


#: the columns of the randomized comparison: one of each kind the native codec writes itself
#: ('i' integers, 's' text, 'b' boolean, 'z' timestamptz) and some it hands to Python
RANDOM_COLUMNS = [Column("id", 20, -1, True, not_null=True), Column("k2", 25, -1, True),
                  Column("n", 23, -1, False), Column("t", 25, -1, False),
                  Column("flag", 16, -1, False), Column("at", 1184, -1, False),
                  Column("amount", 1700, 655366, False), Column("f", 701, -1, False),
                  Column("tags", 1009, -1, False)]
EDGE_VALUES: dict[str, list[str | None]] = {
    "n": ["0", "-1", "2147483647", "-2147483648", "007", "-0", "+5", " 5", None],
    "t": ["".join(map(chr, range(128))), "é", "✓", "😀", "\u2028", '%"\\', "", None],
    "flag": ["t", "f", "x", None],
    "at": ["2024-01-02 03:04:05+00", "2024-01-02 03:04:05.5+00",
           "2024-01-02 03:04:05.100000+00", "2024-01-02 03:04:05.000000+00",
           "2024-01-02 03:04:05+05:30", "2024-01-02 03:04:05.25-08", "infinity", "-infinity",
           None],
    "amount": ["12.50", "-0.01", "NaN", None],
    "f": ["1.5", "-0", "NaN", "Infinity", "1e-320", None],
    "tags": ['{a,"b c",NULL}', "{}", None],
}


def _random_text(rng: random.Random) -> str:
    alphabet = [chr(c) for c in range(128)] + ["é", "ß", "✓", "€", "😀", "\u2028", "\ufffd"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))


def _random_row(rng: random.Random, i: int) -> list[str | None]:
    row: list[str | None] = [str(i), _random_text(rng)]
    for column in RANDOM_COLUMNS[2:]:
        edges = EDGE_VALUES[column.name]
        if rng.random() < 0.5:
            row.append(rng.choice(edges))
        elif column.name == "n":
            row.append(str(rng.randrange(-2**31, 2**31)))
        elif column.name == "t":
            row.append(_random_text(rng))
        elif column.name == "at":
            row.append(f"20{rng.randrange(10, 40)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)} "
                       f"1{rng.randrange(10)}:3{rng.randrange(10)}:0{rng.randrange(10)}."
                       f"{rng.randrange(10**6):06d}+00")
        else:
            row.append(rng.choice(edges))
    return row


@pytest.mark.parametrize("schemas_enable", [False, True])
def test_random_rows_are_the_reference_bytes(schemas_enable: bool,
                                             codec: ModuleType | None) -> None:
    """Seeded random rows (every ASCII character, non-ASCII of each UTF-8 length, integers
    and timestamps in and out of their canonical forms, NULLs) give the reference's bytes,
    with a two-column key."""
    shape = _shape(RANDOM_COLUMNS, key=["id", "k2"])
    builder = EnvelopeBuilder("src", "db", schemas_enable)
    rng = random.Random(5)
    for i in range(1500):
        fast, reference = _both(shape, builder, _insert(*_random_row(rng, i)), codec)
        assert fast == reference, i
    assert orjson.loads(fast[0])  # type: ignore[index, arg-type]


@pytest.mark.parametrize("raw", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                 b"ok\xe2\x82"])
def test_text_that_is_not_utf8_goes_to_the_reference(raw: bytes,
                                                     codec: ModuleType | None) -> None:
    """Overlong forms, surrogates, code points above U+10FFFF and cut sequences: the strict
    decoder refuses them, so the fast path hands them back (the reference logs them)."""
    shape = _shape([Column("id", 23, -1, True, not_null=True), Column("s", 25, -1, False)])
    assert FastEncoder(shape, EnvelopeBuilder("src", "db"), codec).encode(
        _insert("1", raw), 1, 2, 3, 4, 5) is None


def test_malformed_tuples_are_handed_back_never_misread(codec: ModuleType | None) -> None:
    """Cut and corrupted messages (seeded): the codec returns None or a well-formed event,
    and never reads past the message (the native codec checks every length)."""
    shape = _shape(RANDOM_COLUMNS, key=["id", "k2"])
    encoder = FastEncoder(shape, EnvelopeBuilder("src", "db"), codec)
    rng = random.Random(11)
    valid = [_insert(*_random_row(rng, i)) for i in range(50)]
    handed_back = 0
    for i in range(3000):
        data = bytearray(rng.choice(valid))
        if i % 2:
            del data[rng.randrange(7, len(data)):]
        else:
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(6, len(data))] = rng.randrange(256)
        encoded = encoder.encode(bytes(data), 1, 2, 3, 4, 5)
        if encoded is None:
            handed_back += 1
        else:
            assert orjson.loads(encoded[1])["after"]
    assert handed_back > 1000


class _FullQueuePublisher:
    """Stands in for the Publisher: its produce finds the local queue full once."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self.produced: list[tuple[str, bytes, bytes | None]] = []
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.full = True

    def ensure_topic(self, topic: str) -> None:
        self.topics.append(topic)

    def produce(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self.full:
            self.full = False
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key))

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.sent.append((topic, key, value))


def test_the_relay_fast_path_sends_through_the_waiting_send_when_the_queue_is_full(
        tmp_path: Path, codec: ModuleType | None) -> None:
    source = CdcSource("src", "dbname=x", "db", "slot", "pub", (), (), "initial", False, 1, 10.0,
                       tmp_path)
    relay = Relay(source, "127.0.0.1:1")
    relay.row_codec = codec
    shape = _shape([Column("id", 23, -1, True, not_null=True), Column("s", 25, -1, False)])
    relay.shapes[OID] = shape
    publisher = _FullQueuePublisher()
    tx = pgoutput.Begin(0x1A3000, 1_764_999_999_000_001, 771)
    for i in range(2):
        assert relay._publish_fast(_insert(str(i), "x"), tx, 100 + i, 50,
                                   publisher) == 1  # type: ignore[arg-type]
    assert publisher.topics == [shape.topic]  # made once, before the first produce
    ((topic, key, value),) = publisher.sent  # the first event, after BufferError
    assert (topic, orjson.loads(key)) == (shape.topic, {"id": 0})  # type: ignore[arg-type]
    assert orjson.loads(value)["after"] == {"id": 0, "s": "x"}  # type: ignore[arg-type]
    ((topic, value, key),) = publisher.produced
    assert orjson.loads(value)["after"] == {"id": 1, "s": "x"}
    assert relay.metrics.events_total == 2
    relay.shapes[OID] = None  # a relation that is not captured: nothing sent, no fallback
    assert relay._publish_fast(_insert("3", "x"), tx, 200, 50,
                               publisher) == 0  # type: ignore[arg-type]


def test_long_text_full_of_escapes_is_the_reference_bytes(codec: ModuleType | None) -> None:
    """Values far beyond the codec's first buffer, each byte escaped (six bytes for one)."""
    shape = _shape([Column("id", 23, -1, True, not_null=True), Column("s", 25, -1, False),
                    Column("t", 25, -1, False)])
    builder = EnvelopeBuilder("src", "db")
    texts = ["\x01" * 5000 + '"\\' * 3000, "é✓😀\n" * 4000]
    fast, reference = _both(shape, builder, _insert("1", *texts), codec)
    assert fast == reference
