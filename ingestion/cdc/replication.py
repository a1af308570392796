"""A logical replication connection (psycopg 3, streaming protocol, pgoutput).

psycopg 3 has no replication API, but a connection opened with ``replication=database`` accepts
replication commands through libpq's simple query interface, and ``START_REPLICATION`` leaves it
in COPY BOTH mode where ``get_copy_data``/``put_copy_data`` carry the stream and our standby
status updates.
"""

from __future__ import annotations

import contextlib
import select
import time

import psycopg
from psycopg import pq

from ingestion.cdc.pgoutput import Keepalive, XLogData, decode_copy, lsn_to_str, standby_status

#: session settings that make every value's text form exact and parseable (see typemap)
SESSION_OPTIONS = ("-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 "
                   "-c extra_float_digits=3 -c bytea_output=hex")


class ReplicationError(RuntimeError):
    pass


def connect(dsn: str, replication: bool = False) -> psycopg.Connection:
    kwargs: dict[str, object] = {"autocommit": True, "options": SESSION_OPTIONS,
                                 "connect_timeout": 10}
    if replication:
        kwargs["replication"] = "database"
    return psycopg.connect(dsn, **kwargs)  # type: ignore[arg-type]


class ReplicationStream:
    def __init__(self, dsn: str) -> None:
        self.conn = connect(dsn, replication=True)
        self.pgconn = self.conn.pgconn
        self.streaming = False
        self._ended: ReplicationError | None = None  # seen while reading ahead (read_many)

    def _exec(self, command: str) -> pq.abc.PGresult:
        result = self.pgconn.exec_(command.encode())
        if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK,
                                 pq.ExecStatus.COPY_BOTH):
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise ReplicationError(f"{command.split()[0]} failed: {message}")
        return result

    def create_slot(self, slot: str, export_snapshot: bool) -> tuple[int, str | None]:
        """Create a pgoutput slot; returns (consistent point LSN, exported snapshot name).

        The exported snapshot stays valid only until the next command on this connection, so
        the caller must finish reading the snapshot before :meth:`start`.
        """
        from ingestion.cdc.pgoutput import str_to_lsn

        mode = "export" if export_snapshot else "nothing"
        result = self._exec(f"CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput "
                            f"(SNAPSHOT '{mode}')")
        consistent = result.get_value(0, 1)
        snapshot = result.get_value(0, 2)
        return (str_to_lsn(consistent.decode()) if consistent else 0,
                snapshot.decode() if snapshot else None)

    def start(self, slot: str, publication: str, start_lsn: int) -> None:
        self._exec(f"START_REPLICATION SLOT {slot} LOGICAL {lsn_to_str(start_lsn)} "
                   f"(proto_version '1', publication_names '{publication}')")
        self.streaming = True

    def read(self, timeout: float) -> XLogData | Keepalive | None:
        """Next message, or None when nothing arrived within ``timeout`` seconds."""
        if self._ended is not None:
            raise self._ended
        size, data = self.pgconn.get_copy_data(1)  # async: 0 means "nothing buffered yet"
        if size == 0:
            ready, _, _ = select.select([self.pgconn.socket], [], [], timeout)
            if not ready:
                return None
            self.pgconn.consume_input()
            size, data = self.pgconn.get_copy_data(1)
            if size == 0:
                return None
        if size < 0:
            raise self._end(size)
        return decode_copy(data)

    def read_many(self, timeout: float, limit: int) -> list[XLogData | Keepalive]:
        """The next message (waiting up to ``timeout`` seconds for it) and up to ``limit``
        in all that are already received: the caller's per-read work is done once per
        burst. An error after the first message is raised by the next read."""
        first = self.read(timeout)
        if first is None:
            return []
        messages = [first]
        append = messages.append
        get = self.pgconn.get_copy_data
        while len(messages) < limit:
            size, data = get(1)
            if size <= 0:
                if size < 0:
                    self._ended = self._end(size)
                break
            append(decode_copy(data))
        return messages

    def _end(self, size: int) -> ReplicationError:
        """The error of a stream that ended (``size`` -1) or failed (-2)."""
        if size == -1:
            result = self.pgconn.get_result()
            message = (result.error_message or b"").decode(errors="replace").strip() \
                if result else ""
            return ReplicationError(
                f"replication stream ended: {message or 'server closed it'}")
        return ReplicationError("replication stream error: "
                                + self.pgconn.error_message.decode(errors="replace").strip())

    def send_status(self, flushed_lsn: int, reply: bool = False) -> None:
        """Confirm everything up to ``flushed_lsn``: the server may now discard that WAL."""
        message = standby_status(flushed_lsn, flushed_lsn, flushed_lsn,
                                 time.time_ns() // 1000, reply)
        self.pgconn.put_copy_data(message)
        self.pgconn.flush()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
