"""Calls handled by the dialer become CRM appeals (issue 4), without ever slowing the dialer.

*Handled* means connected to an operator: an outbound call the customer answered and an
operator took, or an inbound call ICP routed to a queue and an operator took. Unanswered
attempts (no answer, busy, failed), answered calls abandoned before an operator took them and
inbound callers who hung up in the queue are *not* appeals: nobody spoke with the customer, and
recording every dial would create a CRM customer for each of the millions of leads dialed. They
stay in the dialer's ``call_attempts`` for the warehouse.

Identity: the phone (the lead's, or the inbound caller's) normalised with the CRM's own
:func:`~dialer_core.crm.phones.normalise_phone`, so a lead and a CRM customer with the same
number are one customer. The appeal comes from :func:`dialer_core.crm.appeals.record_call` with
``call_id`` = the dialer's ``attempt_id`` (``external_ref = 'dialer:<attempt_id>'``, idempotent,
so a batch re-sent after a lost commit adds nothing), ``at`` = the call's start (origination,
or the inbound call's arrival) and ``answered_at`` = the moment an operator was connected.
Topic and queue are the CRM defaults (``general``/``calls``).

Operator: dialer operators and CRM employees are separate tables; the link is the *login*
(``op0001`` …, the same scheme in the dialer's demo seed and the CRM's reference data). A
dialer operator whose login is an active CRM employee with role ``operator`` gives
``operator_id`` = that employee; anyone else gives ``None``. The dialer operator stays
recoverable through ``external_ref`` → ``call_attempts.operator_id`` either way.

Non-blocking: the service hands each second's connected calls to :meth:`CrmLink.submit` (a queue
put); one worker thread writes them on its own connection, one transaction per batch (each call
a savepoint, so one bad call does not lose the others). The worker migrates the CRM schema with
the CRM's own :func:`dialer_core.crm.migrate` when it connects (what ``crm run`` does too). If
the CRM is unreachable, its migration fails or its reference data (queue ``calls``, topic
``general``) is missing, it logs once per outage, keeps up to ``max_pending`` calls in memory
and retries every ``retry_seconds`` (wall clock); the dialer goes on dialing regardless.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from dialer_core import crm
from dialer_core.crm.appeals import record_call
from dialer_core.crm.db import id_by_code
from dialer_core.crm.errors import CrmError
from dialer_core.crm.phones import normalise_phone
from dialer_core.crm.settings import DEFAULT_SETTINGS


class HandledCall(NamedTuple):
    attempt_id: int
    direction: str          # 'outbound' | 'inbound'
    phone: str              # as the dialer has it (lead phone / caller's number)
    started_at: datetime    # origination (outbound) or arrival (inbound)
    connected_at: datetime  # an operator was connected: the appeal's first response
    operator_login: str     # the dialer operator's login ('' if unknown)


@dataclass
class LinkStats:
    recorded: int = 0        # record_call committed (new or idempotent repeat)
    invalid_phone: int = 0   # not a phone number for normalise_phone: skipped
    rejected: int = 0        # the CRM refused the call (logged once): skipped
    dropped: int = 0         # lost while the CRM was down (pending over max_pending, or stop)
    batches: int = 0


class CrmLink:
    def __init__(self, dsn: str, log: Callable[[str], None] = print, *, migrate: bool = True,
                 retry_seconds: float = 30.0, max_pending: int = 100_000,
                 connect_timeout: int = 5) -> None:
        self.dsn = dsn
        self.log = log
        self.migrate = migrate
        self.retry_seconds = retry_seconds
        self.max_pending = max_pending
        self.connect_timeout = connect_timeout
        self.stats = LinkStats()
        self._queue: queue.Queue[list[HandledCall] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="dialer-crm-link", daemon=True)
        self._conn: psycopg.Connection[Any] | None = None
        self._next_try = 0.0
        self._down = False
        self._logged: set[str] = set()

    # ------------------------------------------------------------------ service side
    def start(self) -> None:
        self._thread.start()

    def submit(self, calls: list[HandledCall]) -> None:
        """Hand over one second's handled calls; never blocks."""
        if calls:
            self._queue.put(calls)

    def close(self, timeout: float = 30.0) -> LinkStats:
        """Write what is pending (if the CRM is up), stop the worker; gives up after
        ``timeout`` seconds so a hanging CRM cannot hold the dialer's shutdown."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.log("dialer: CRM link did not finish within "
                     f"{timeout:g} s; unwritten calls are lost")
        return self.stats

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        pending: list[HandledCall] = []
        self._ensure_connection()
        stopping = False
        while not stopping:
            wait = None if not pending else max(0.1, self._next_try - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = []
            while True:   # everything queued meanwhile goes into the same batch
                if item is None:
                    stopping = True
                else:
                    pending.extend(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if pending and self._ensure_connection(force=False) and self._write(pending):
                pending = []
            if len(pending) > self.max_pending:
                self.stats.dropped += len(pending) - self.max_pending
                pending = pending[-self.max_pending:]
        if pending:
            self.stats.dropped += len(pending)
            self.log(f"dialer: CRM link stopped with {len(pending)} calls not recorded "
                     "(CRM unavailable)")
        if self._conn is not None:
            self._conn.close()

    def _off(self, reason: str) -> None:
        if not self._down:
            self.log(f"dialer: CRM link off ({reason}); handled calls are not recorded as "
                     f"appeals until it is back (retry every {self.retry_seconds:g} s); "
                     "dialing goes on")
        self._down = True

    def _ensure_connection(self, force: bool = True) -> bool:
        if self._conn is not None:
            return True
        if not force and time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + self.retry_seconds
        conn = None
        try:
            # reachability first, with a timeout (the migration's own connect has none)
            conn = psycopg.connect(self.dsn, autocommit=True,
                                   connect_timeout=self.connect_timeout)
            if self.migrate:
                crm.migrate(self.dsn)
            missing = [f"{table} {code!r}" for table, key, code in (
                ("queues", "queue_id", DEFAULT_SETTINGS.call_queue_code),
                ("topics", "topic_id", DEFAULT_SETTINGS.call_topic_code))
                if id_by_code(conn, table, key, code) is None]
        except Exception as exc:   # unreachable, not migrated, migration refused: never fatal
            if conn is not None:
                conn.close()
            self._off(_reason(exc))
            return False
        if missing:
            conn.close()
            self._off(f"CRM reference data missing: {', '.join(missing)}; "
                      "run `contour crm run` once")
            return False
        self._conn = conn
        if self._down:
            self.log("dialer: CRM link back; recording handled calls as appeals again")
        self._down = False
        return True

    def _once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.log(message)

    def _write(self, batch: list[HandledCall]) -> bool:
        """One transaction for the batch; True when committed (or nothing to do)."""
        conn = self._conn
        assert conn is not None
        recorded = invalid = rejected = 0
        employees: dict[str, int | None] = {}
        try:
            with conn.transaction():
                for call in batch:
                    try:
                        phone = normalise_phone(call.phone)
                    except CrmError:
                        invalid += 1
                        self._once("phone", f"dialer: CRM link skips calls from numbers that "
                                            f"are not phones (first: {call.phone!r})")
                        continue
                    if call.operator_login not in employees:
                        row = conn.execute(
                            "SELECT employee_id FROM employees WHERE login = %s"
                            " AND role = 'operator' AND active", (call.operator_login,)
                        ).fetchone()
                        employees[call.operator_login] = row[0] if row else None
                    try:
                        record_call(conn, phone, call_id=str(call.attempt_id),
                                    at=call.started_at, answered_at=call.connected_at,
                                    operator_id=employees[call.operator_login])
                    except (CrmError, psycopg.errors.DataError,
                            psycopg.errors.IntegrityError) as exc:
                        # this call only (its savepoint rolled back); the batch goes on
                        rejected += 1
                        self._once("rejected", f"dialer: CRM refused call {call.attempt_id} "
                                               f"({exc}); such calls are skipped")
                        continue
                    recorded += 1
        except psycopg.Error as exc:
            try:
                conn.close()
            finally:
                self._conn = None
            self._off(_reason(exc))
            return False
        self.stats.recorded += recorded
        self.stats.invalid_phone += invalid
        self.stats.rejected += rejected
        self.stats.batches += 1
        return True


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
