"""Decoder of PostgreSQL's built-in ``pgoutput`` logical replication protocol (version 1).

Messages are documented in PostgreSQL's "Logical Replication Message Formats". Only text-format
tuples are used (protocol version 1), so every column value arrives as the type's text output
and is mapped to Debezium's representation by :mod:`ingestion.cdc.typemap`.

The decoder is a set of small pure functions over bytes so that it can be tested without a
server and kept fast (it sits on the hot path of every change).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch)
PG_EPOCH_MICROS = 946_684_800_000_000

UNCHANGED_TOAST = object()  # a TOASTed value the update did not touch (not sent)

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">bQQq")
_XLOGDATA = struct.Struct(">QQq")
_KEEPALIVE = struct.Struct(">QqB")
_STATUS = struct.Struct(">cQQQqB")


def lsn_to_str(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def str_to_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def pg_time_to_micros(pg_micros: int) -> int:
    """PostgreSQL timestamps (µs since 2000-01-01) to µs since the Unix epoch."""
    return pg_micros + PG_EPOCH_MICROS


def pg_time_to_datetime(pg_micros: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=pg_micros)


# ---------------------------------------------------------------------- messages
@dataclass(slots=True)
class Column:
    name: str
    type_oid: int
    typmod: int
    is_identity: bool  # part of the replica identity (all columns under REPLICA IDENTITY FULL)
    not_null: bool = False  # from the catalog: pgoutput does not send nullability
    default: str | None = None  # the column default's expression (pg_get_expr), if any


@dataclass(slots=True)
class Relation:
    oid: int
    schema: str
    table: str
    replica_identity: str  # d(efault) n(othing) f(ull) i(ndex)
    columns: list[Column]
    key_columns: list[str] = field(default_factory=list)  # primary key, from the catalog


@dataclass(slots=True)
class Begin:
    final_lsn: int
    commit_time: int  # µs since Unix epoch
    xid: int


@dataclass(slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: int  # µs since Unix epoch


@dataclass(slots=True)
class TypeInfo:
    oid: int
    schema: str
    name: str


@dataclass(slots=True)
class Insert:
    relation_oid: int
    new: list[object]


@dataclass(slots=True)
class Update:
    relation_oid: int
    old: list[object] | None  # full old row (FULL) or old key (key changed), else None
    old_is_key: bool
    new: list[object]


@dataclass(slots=True)
class Delete:
    relation_oid: int
    old: list[object]
    old_is_key: bool


@dataclass(slots=True)
class Truncate:
    relation_oids: list[int]
    cascade: bool
    restart_identity: bool


@dataclass(slots=True)
class Origin:
    lsn: int
    name: str


Message = Begin | Commit | Relation | TypeInfo | Insert | Update | Delete | Truncate | Origin


class ProtocolError(ValueError):
    pass


def _string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise ProtocolError("unterminated string")
    return data[pos:end].decode(), end + 1


def _tuple(data: bytes, pos: int) -> tuple[list[object], int]:
    """TupleData: a column count, then per column 'n' null, 'u' unchanged TOAST or 't' text.

    The hot path of the relay: plain bytes slicing, no memoryview copies.
    """
    ncols = (data[pos] << 8) | data[pos + 1]
    pos += 2
    values: list[object] = []
    append = values.append
    for _ in range(ncols):
        kind = data[pos]
        if kind == 0x74:  # 't' text
            size = int.from_bytes(data[pos + 1:pos + 5], "big")
            pos += 5
            append(data[pos:pos + size].decode())
            pos += size
        elif kind == 0x6E:  # 'n' null
            append(None)
            pos += 1
        elif kind == 0x75:  # 'u' unchanged TOAST
            append(UNCHANGED_TOAST)
            pos += 1
        else:
            raise ProtocolError(f"unknown tuple column kind {kind!r}")
    return values, pos


def decode(data: bytes) -> Message | None:
    """Decode one pgoutput message; None for kinds Contour does not use (e.g. 'M')."""
    buf = data
    kind = data[0]
    if kind == 0x42:  # 'B'
        final_lsn, ts, xid = _BEGIN.unpack_from(buf, 1)
        return Begin(final_lsn, pg_time_to_micros(ts), xid)
    if kind == 0x43:  # 'C'
        _flags, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(buf, 1)
        return Commit(commit_lsn, end_lsn, pg_time_to_micros(ts))
    if kind == 0x49:  # 'I'
        (rel,) = _U32.unpack_from(buf, 1)
        if data[5] != 0x4E:
            raise ProtocolError("insert without new tuple")
        values, _ = _tuple(buf, 6)
        return Insert(rel, values)
    if kind == 0x55:  # 'U'
        (rel,) = _U32.unpack_from(buf, 1)
        pos = 5
        old = None
        old_is_key = False
        if data[pos] in (0x4B, 0x4F):  # 'K' key / 'O' old tuple
            old_is_key = data[pos] == 0x4B
            old, pos = _tuple(buf, pos + 1)
        if data[pos] != 0x4E:
            raise ProtocolError("update without new tuple")
        new, _ = _tuple(buf, pos + 1)
        return Update(rel, old, old_is_key, new)
    if kind == 0x44:  # 'D'
        (rel,) = _U32.unpack_from(buf, 1)
        old_is_key = data[5] == 0x4B
        old, _ = _tuple(buf, 6)
        return Delete(rel, old, old_is_key)
    if kind == 0x52:  # 'R'
        (oid,) = _U32.unpack_from(buf, 1)
        schema, pos = _string(buf, 5)
        table, pos = _string(buf, pos)
        identity = chr(data[pos])
        (ncols,) = _I16.unpack_from(buf, pos + 1)
        pos += 3
        columns = []
        for _ in range(ncols):
            flags = data[pos]
            name, pos = _string(buf, pos + 1)
            type_oid, typmod = struct.unpack_from(">Ii", buf, pos)
            pos += 8
            columns.append(Column(name, type_oid, typmod, bool(flags & 1)))
        return Relation(oid, schema, table, identity, columns)
    if kind == 0x59:  # 'Y'
        (oid,) = _U32.unpack_from(buf, 1)
        schema, pos = _string(buf, 5)
        name, _ = _string(buf, pos)
        return TypeInfo(oid, schema, name)
    if kind == 0x54:  # 'T'
        (nrels,) = _I32.unpack_from(buf, 1)
        options = data[5]
        oids = list(struct.unpack_from(f">{nrels}I", buf, 6))
        return Truncate(oids, bool(options & 1), bool(options & 2))
    if kind == 0x4F:  # 'O'
        (lsn,) = _U64.unpack_from(buf, 1)
        name, _ = _string(buf, 9)
        return Origin(lsn, name)
    return None


# ---------------------------------------------------------------------- CopyBoth framing
@dataclass(slots=True)
class XLogData:
    data_start: int
    wal_end: int
    send_time: int
    payload: bytes


@dataclass(slots=True)
class Keepalive:
    wal_end: int
    send_time: int
    reply_requested: bool


def decode_copy(data: bytes | memoryview) -> XLogData | Keepalive:
    """Decode one CopyData message of the replication stream ('w' or 'k'); the payload is
    copied once (bytes of a memoryview's slice)."""
    if data[0] == 0x77:  # 'w'
        start, end, ts = _XLOGDATA.unpack_from(data, 1)
        return XLogData(start, end, ts, bytes(data[25:]))
    if data[0] == 0x6B:  # 'k'
        end, ts, reply = _KEEPALIVE.unpack_from(data, 1)
        return Keepalive(end, ts, bool(reply))
    raise ProtocolError(f"unknown replication message {data[:1]!r}")


def standby_status(written: int, flushed: int, applied: int, now_micros: int,
                   reply: bool = False) -> bytes:
    """A Standby Status Update ('r'): tells the server what may be discarded (``flushed``)."""
    return _STATUS.pack(b"r", written, flushed, applied, now_micros - PG_EPOCH_MICROS,
                        1 if reply else 0)
