"""ReplicationStream.read_many on a stand-in connection: bursts, and an end seen mid-burst."""

from __future__ import annotations

import struct
from collections import deque

import pytest

from ingestion.cdc.pgoutput import Keepalive, XLogData
from ingestion.cdc.replication import ReplicationError, ReplicationStream


class _Result:
    error_message = b"ERROR:  the slot was dropped"


class _PgConn:
    """Hands out queued CopyData results as libpq would: (size, data), 0 when nothing is
    buffered, -1 when the stream ended."""

    def __init__(self, *results: tuple[int, bytes]) -> None:
        self.results = deque(results)

    def get_copy_data(self, async_: int) -> tuple[int, memoryview]:
        size, data = self.results.popleft() if self.results else (0, b"")
        return size, memoryview(data)

    def get_result(self) -> _Result:
        return _Result()


def _stream(*results: tuple[int, bytes]) -> ReplicationStream:
    stream = ReplicationStream.__new__(ReplicationStream)
    stream.pgconn = _PgConn(*results)  # type: ignore[assignment]
    stream._ended = None
    return stream


def _xlog(start: int, payload: bytes) -> tuple[int, bytes]:
    data = b"w" + struct.pack(">QQq", start, start + 1, 0) + payload
    return len(data), data


def _keepalive(end: int) -> tuple[int, bytes]:
    data = b"k" + struct.pack(">QqB", end, 0, 0)
    return len(data), data


def test_a_burst_takes_what_was_received_up_to_the_limit() -> None:
    stream = _stream(_xlog(1, b"I1"), _keepalive(9), _xlog(2, b"I2"), _xlog(3, b"I3"))
    first = stream.read_many(0.0, limit=3)
    assert [type(m) for m in first] == [XLogData, Keepalive, XLogData]
    assert [m.payload for m in first if isinstance(m, XLogData)] == [b"I1", b"I2"]
    assert isinstance(first[0].payload, bytes)  # a copy, not a view of libpq's buffer
    rest = stream.read_many(0.0, limit=3)
    assert [m.data_start for m in rest] == [3]  # type: ignore[union-attr]


def test_an_end_after_the_first_message_is_raised_by_the_next_read() -> None:
    stream = _stream(_xlog(1, b"I1"), (-1, b""))
    (message,) = stream.read_many(0.0, limit=10)
    assert message.payload == b"I1"  # type: ignore[union-attr]
    with pytest.raises(ReplicationError, match="stream ended: ERROR:  the slot was dropped"):
        stream.read_many(0.0, limit=10)
