"""The relay's hot path: a pgoutput insert or update straight to Debezium key and value bytes.

:class:`~ingestion.cdc.envelope.EnvelopeBuilder` with :func:`~ingestion.cdc.pgoutput.decode`
is the reference: it handles every message. Most of a source's changes are plain inserts and
updates of a table whose shape is known, and for those this module does the same work with
less Python per event (BENCHMARKS.md, CDC relay):

- the envelope is a byte template per transaction and operation, made by serializing the
  reference envelope with markers in the varying places (the row, the LSN, the event time),
  so it is the reference's layout by construction: the pieces between those places;
- the row codec: the native one (:mod:`.rowcodec`, C) when it is built reads the tuple and
  writes the row, the key and the filled template in one call; otherwise one function per
  table shape, generated when the shape is first seen, reads the tuple and converts every
  column in a single unrolled pass, and orjson and a ``%`` format of the pieces do the rest.
  Both give the same bytes.

Anything unusual (an unchanged TOAST value, an old tuple, a value the converter refuses, text
that is not UTF-8, a column count that does not match the shape, a cut message) makes
:meth:`FastEncoder.encode` return None and the caller takes the reference path, which logs and
counts exactly as before. Tests compare both codecs with the reference byte for byte.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson

from ingestion.cdc import rowcodec
from ingestion.cdc.envelope import SourcePosition
from ingestion.cdc.typemap import CONVERSION_ERRORS, NATIVE_KINDS

if TYPE_CHECKING:
    from ingestion.cdc.envelope import EnvelopeBuilder, TableShape

_INSERT = 0x49  # 'I'
_UPDATE = 0x55  # 'U'
_NEW_TUPLE = 0x4E  # 'N'
_OPS = {_INSERT: "c", _UPDATE: "u"}
#: the first bytes of the messages the fast path takes
FAST_KINDS = frozenset(_OPS)
#: what the reference envelope is serialized with, to find the varying places in its bytes
_MARKS = {"after": "\x01after\x01", "lsn": "\x01lsn\x01", "ms": "\x01ms\x01",
          "us": "\x01us\x01", "ns": "\x01ns\x01", "key": "\x01key\x01"}

#: a marker as a whole JSON string, or inside one (the LSN in ``source.sequence``)
_MARK = re.compile(rb'"\\u0001(\w+)\\u0001"|\\u0001(\w+)\\u0001')
_SLOTS = ["after", "lsn", "lsn", "ms", "us", "ns"]
_AUTO: Any = object()

#: an unsigned 32-bit big-endian integer at an offset: ``read_u32(data, pos)[0]``
read_u32 = struct.Struct(">I").unpack_from

RowReader = Callable[[bytes, int], dict[str, object]]


class Fallback(Exception):  # noqa: N818 - control flow, not an error
    """The message needs the reference path."""


def compile_row_reader(shape: TableShape) -> RowReader:
    """A function ``read(data, pos) -> row`` for the TupleData at ``data[pos:]`` of this
    shape: the reference's ``TableShape.row(_tuple(...))`` unrolled over the columns. Raises
    :class:`Fallback` for what only the reference handles, and the converter's own error
    for a value it refuses."""
    converters = shape._converters
    count = len(converters)
    namespace: dict[str, Any] = {"Fallback": Fallback, "U32": read_u32}
    lines = ["def read(data, pos):",
             f"    if ((data[pos] << 8) | data[pos + 1]) != {count}:",
             "        raise Fallback",
             "    pos += 2"]
    for i, (name, convert, fallback) in enumerate(converters):
        namespace[f"N{i}"] = name
        namespace[f"F{i}"] = fallback
        text = "data[pos + 5:end].decode()"
        if convert is int:  # int() reads the bytes: no str in between
            text = "int(data[pos + 5:end])"
        elif convert is not None:
            namespace[f"C{i}"] = convert
            text = f"C{i}({text})"
        lines += [
            "    kind = data[pos]",
            "    if kind == 116:",  # 't' text
            "        end = pos + 5 + U32(data, pos + 1)[0]",
            f"        v{i} = {text}",
            "        pos = end",
            "    elif kind == 110:",  # 'n' null
            f"        v{i} = F{i}",
            "        pos += 1",
            "    else:",  # 'u' unchanged TOAST, or not a kind the reference knows either
            "        raise Fallback",
        ]
    lines.append("    return {" + ", ".join(f"N{i}: v{i}" for i in range(count)) + "}")
    exec(compile("\n".join(lines), f"<row reader {shape.topic}>", "exec"),  # noqa: S102
         namespace)
    return namespace["read"]  # type: ignore[no-any-return]


def native_spec(shape: TableShape) -> tuple[object, ...]:
    """What ``rowcodec.c``'s ``encode`` needs to know of a shape (its header comment)."""
    kinds, prefixes, nulls, converters = [], [], [], []
    for i, (name, convert, fallback) in enumerate(shape._converters):
        kinds.append("s" if convert is None else NATIVE_KINDS.get(convert, "p"))
        prefixes.append((b"," if i else b"{") + orjson.dumps(name) + b":")
        nulls.append(orjson.dumps(fallback))
        converters.append(convert)
    names = [prefix[1:] for prefix in prefixes]
    key_prefixes = tuple((b"," if k else b"{") + names[i]
                         for k, i in enumerate(shape.key_index))
    return ("".join(kinds).encode(), tuple(prefixes), tuple(nulls), tuple(converters),
            tuple(shape.key_index), key_prefixes, orjson.dumps)


class FastEncoder:
    """Inserts and updates of one table shape to (key, value) bytes, as the reference.

    ``native`` is the built row codec module; by default the one :func:`rowcodec.load`
    finds, and None runs the pure-Python reader."""

    def __init__(self, shape: TableShape, builder: EnvelopeBuilder,
                 native: ModuleType | None = _AUTO) -> None:
        self.shape = shape
        self.topic = shape.topic
        self.builder = builder
        self.native = rowcodec.load() if native is _AUTO else native
        columns = shape.relation.columns
        self.key_names = [columns[i].name for i in shape.key_index]
        if self.native is not None:
            self._spec = native_spec(shape)
        else:
            self.read_row = compile_row_reader(shape)
        self._key_pieces = self._key_layout() if self.key_names else None
        self._key_template = None if self._key_pieces is None else \
            _percent(list(self._key_pieces), [b"%b"])
        self._tx: tuple[int | None, int, int] | None = None
        self._templates: dict[int, tuple[tuple[bytes, ...], bytes]] = {}
        self.fallbacks = 0  # messages handed back to the reference path

    def encode(self, payload: bytes, lsn: int, tx_id: int | None, commit_lsn: int,
               commit_time: int, last_commit: int) -> tuple[bytes | None, bytes] | None:
        """Key and value of an insert or update without an old tuple; None when the
        reference path must take this message."""
        kind = payload[0]
        if payload[5] != _NEW_TUPLE:
            self.fallbacks += 1
            return None  # an update with the old key or row
        tx = (tx_id, commit_time, last_commit)
        if tx != self._tx:
            self._tx = tx
            self._templates = {}
        template = self._templates.get(kind)
        if template is None:
            template = self._templates[kind] = self._template(
                _OPS[kind], SourcePosition(lsn, commit_lsn, last_commit, tx_id, commit_time))
        now_us = time.time_ns() // 1000
        if self.native is not None:
            encoded = self.native.encode(self._spec, payload, 6, template[0], self._key_pieces,
                                         lsn, now_us)
        else:
            encoded = self._encode_python(payload, template[1], lsn, now_us)
        if encoded is None:
            self.fallbacks += 1
        return encoded  # type: ignore[no-any-return]

    def _encode_python(self, payload: bytes, template: bytes, lsn: int, now_us: int,
                       ) -> tuple[bytes | None, bytes] | None:
        try:
            row = self.read_row(payload, 6)
        except (Fallback, struct.error, *CONVERSION_ERRORS):
            return None
        key = None
        if self.key_names:
            key = orjson.dumps({name: row[name] for name in self.key_names})
            if self._key_template is not None:
                key = self._key_template % key
        return key, template % (orjson.dumps(row), lsn, lsn, now_us // 1000, now_us,
                                now_us * 1000)

    def _key_layout(self) -> tuple[bytes, bytes] | None:
        """What the reference key has around its columns' JSON object (the schemas.enable
        wrapper), or None when the key is that object alone."""
        marked = self.builder.encode_key(self.shape, _MARKS["key"])  # type: ignore[arg-type]
        assert marked is not None
        pieces, names = _split(marked)
        if names != ["key"]:
            raise AssertionError(f"the key's layout changed: {marked!r}")
        return None if pieces == [b"", b""] else (pieces[0], pieces[1])

    def _template(self, op: str, pos: SourcePosition) -> tuple[tuple[bytes, ...], bytes]:
        """The reference value of this transaction and operation, as the pieces between its
        varying places (row, LSN in ``source.sequence``, LSN, ts_ms, ts_us, ts_ns) and as
        the same with ``%`` slots in their place."""
        marks = _MARKS
        source = self.builder.source_block(self.shape, replace(pos, lsn=marks["lsn"]))
        value = self.builder.value(self.shape, op, None, marks["after"], source,
                                   marks["ms"], marks["us"], marks["ns"])
        pieces, names = _split(orjson.dumps(value))
        if names != _SLOTS:
            raise AssertionError(f"the envelope's layout changed: slots {names}, not {_SLOTS}")
        return tuple(pieces), _percent(pieces, [b"%b" if n == "after" else b"%d"
                                                for n in names])


def _split(marked: bytes) -> tuple[list[bytes], list[str]]:
    """Serialized JSON with markers → the pieces between the markers, and their names."""
    pieces: list[bytes] = []
    names: list[str] = []
    at = 0
    for match in _MARK.finditer(marked):
        pieces.append(marked[at:match.start()])
        names.append((match[1] or match[2]).decode())
        at = match.end()
    pieces.append(marked[at:])
    return pieces, names


def _percent(pieces: list[bytes], slots: list[bytes]) -> bytes:
    """The pieces as one ``%`` format with ``slots`` between them."""
    escaped = [piece.replace(b"%", b"%%") for piece in pieces]
    return b"".join(piece + slot for piece, slot in zip(escaped, [*slots, b""], strict=True))
