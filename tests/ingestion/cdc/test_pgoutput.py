"""Unit tests of the pgoutput decoder on hand-built protocol messages."""

from __future__ import annotations

import struct

from ingestion.cdc import pgoutput
from ingestion.cdc.pgoutput import (
    PG_EPOCH_MICROS,
    UNCHANGED_TOAST,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    decode,
    decode_copy,
    lsn_to_str,
    str_to_lsn,
)


def tuple_data(*values: object) -> bytes:
    """TupleData of pgoutput: None is null, UNCHANGED_TOAST unchanged, bytes as they are, the
    rest as text."""
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED_TOAST:
            out += b"u"
        else:
            raw = value if isinstance(value, bytes) else str(value).encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
    return out


def test_lsn_text_round_trip() -> None:
    assert lsn_to_str(str_to_lsn("16/B374D848")) == "16/B374D848"
    assert str_to_lsn("0/3347DC0") == 0x3347DC0


def test_begin_and_commit() -> None:
    begin = decode(b"B" + struct.pack(">QqI", 0x1234, 1_000_000, 77))
    assert begin == Begin(0x1234, 1_000_000 + PG_EPOCH_MICROS, 77)
    commit = decode(b"C" + struct.pack(">bQQq", 0, 0x1234, 0x1300, 5))
    assert commit == Commit(0x1234, 0x1300, 5 + PG_EPOCH_MICROS)


def test_relation() -> None:
    body = (b"R" + struct.pack(">I", 16384) + b"public\0leads\0" + b"d" + struct.pack(">h", 2)
            + b"\x01id\0" + struct.pack(">Ii", 20, -1) + b"\x00name\0" + struct.pack(">Ii", 25, -1))
    relation = decode(body)
    assert isinstance(relation, Relation)
    assert (relation.oid, relation.schema, relation.table, relation.replica_identity) == \
        (16384, "public", "leads", "d")
    assert [(c.name, c.type_oid, c.is_identity) for c in relation.columns] == \
        [("id", 20, True), ("name", 25, False)]


def test_insert_update_delete_truncate() -> None:
    rel = struct.pack(">I", 16384)
    assert decode(b"I" + rel + b"N" + tuple_data(1, "ann", None)) == \
        Insert(16384, ["1", "ann", None])
    # REPLICA IDENTITY DEFAULT, key unchanged: no old tuple; TOASTed column untouched
    assert decode(b"U" + rel + b"N" + tuple_data(1, UNCHANGED_TOAST)) == \
        Update(16384, None, False, ["1", UNCHANGED_TOAST])
    # REPLICA IDENTITY FULL: the whole old row
    assert decode(b"U" + rel + b"O" + tuple_data(1, "a") + b"N" + tuple_data(1, "b")) == \
        Update(16384, ["1", "a"], False, ["1", "b"])
    # key changed under DEFAULT: the old key
    assert decode(b"U" + rel + b"K" + tuple_data(1, None) + b"N" + tuple_data(2, "b")) == \
        Update(16384, ["1", None], True, ["2", "b"])
    assert decode(b"D" + rel + b"K" + tuple_data(1, None)) == Delete(16384, ["1", None], True)
    assert decode(b"T" + struct.pack(">ib", 2, 1) + struct.pack(">II", 5, 6)) == \
        Truncate([5, 6], True, False)


def test_copy_framing_and_status_update() -> None:
    xlog = decode_copy(b"w" + struct.pack(">QQq", 10, 20, 30) + b"payload")
    assert (xlog.data_start, xlog.wal_end, xlog.payload) == (10, 20, b"payload")
    keepalive = decode_copy(b"k" + struct.pack(">QqB", 99, 1, 1))
    assert keepalive.wal_end == 99 and keepalive.reply_requested
    status = pgoutput.standby_status(5, 6, 7, PG_EPOCH_MICROS + 8)
    assert status == b"r" + struct.pack(">QQQqB", 5, 6, 7, 8, 0)
