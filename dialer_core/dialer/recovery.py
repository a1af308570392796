"""Start-up recovery after a crash or kill: nothing stays locked or half-open.

Calls in flight live only in the engine's memory, so after the process dies their rows are
orphans: attempts never closed, leads locked by them (the batcher would skip those leads
forever), callbacks stuck in ``dialing``, operators stuck ``on_call``/``wrap_up``. One
transaction closes and releases all of them before the first tick; the attempt keeps every
timestamp it had and is marked ``interrupted`` so reports can tell it from a real outcome.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from dialer_core.dialer.operators import status_statements


def recover(conn: psycopg.Connection, now: datetime) -> dict[str, int]:
    with conn.transaction():
        attempts = conn.execute(
            "UPDATE call_attempts SET state = 'closed', outcome = coalesce(outcome, 'failed'),"
            " disposition = 'interrupted', closed_at = %s, updated_at = %s"
            " WHERE state <> 'closed'", (now, now)).rowcount
        leads = conn.execute("UPDATE leads SET locked_by = NULL, locked_at = NULL,"
                             " updated_at = %s WHERE locked_by IS NOT NULL", (now,)).rowcount
        callbacks = conn.execute("UPDATE callbacks SET status = 'pending', attempt_id = NULL,"
                                 " updated_at = %s WHERE status = 'dialing'", (now,)).rowcount
        stuck = [r[0] for r in conn.execute(
            "SELECT operator_id FROM operators WHERE status IN ('on_call', 'wrap_up')")]
        for op in stuck:
            for sql, params in status_statements(op, "ready", now):
                conn.execute(sql, params)
    return {"attempts": attempts, "leads": leads, "callbacks": callbacks, "operators": len(stuck)}
