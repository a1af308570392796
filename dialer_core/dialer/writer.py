"""Buffered writes of call-attempt life cycles.

The engine changes many rows every simulated second (attempt state transitions, lead releases).
Queuing them and sending each second's batch in one transaction through a psycopg pipeline keeps
the row-per-transition history (each transition is its own UPDATE, so CDC sees every state)
while paying one round trip per second instead of one per statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


class Writer:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self.statements = 0

    def add(self, sql: str, params: tuple[Any, ...]) -> None:
        self.pending.append((sql, params))

    def attempt(self, attempt_id: int, now: datetime, **cols: Any) -> None:
        """Move one attempt to its next state: ``cols`` are the columns that change."""
        names = sorted(cols)
        sets = ", ".join(f"{n} = %s" for n in names)
        self.add(f"UPDATE call_attempts SET {sets}, updated_at = %s WHERE attempt_id = %s",
                 (*(cols[n] for n in names), now, attempt_id))

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        with self.conn.transaction(), self.conn.pipeline():
            for sql, params in batch:
                self.conn.execute(sql, params)
        self.statements += len(batch)
