"""The batcher and its in-memory pool (the hopper).

Once a (simulated) minute :func:`select_dialable` runs one set-based query that returns every
lead dialable now, for every active campaign: inside the calling window evaluated in the lead's
own IANA timezone by PostgreSQL (``AT TIME ZONE``, so DST comes from the server's tz database),
not on a holiday of the campaign's calendar (a local date), attempts left, ``next_call_at`` due,
not locked by a call in progress. :class:`Hopper` keeps the result in memory; the dialer takes
from it every second by free operators and next contact time, never querying per call.

Callbacks are selected up to :data:`CALLBACK_LOOKAHEAD` early and held until their minute comes,
so that a callback due between two ticks is dialed on time, not up to a minute late.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

CALLBACK_LOOKAHEAD = timedelta(seconds=60)

# The lead's local time and date are computed once per row from the *service* clock (%(now)s),
# never from the database's now(): a skewed database clock cannot change what is dialed.
SELECT_DIALABLE = """
SELECT d.lead_id, d.campaign_id, d.bucket_id, d.phone, d.timezone, d.next_call_at, d.attempts,
       d.callback_id,
       CASE WHEN d.callback_id IS NOT NULL THEN d.assigned_operator_id
            ELSE b.operator_id END AS owner_id,
       %(now)s::timestamptz + d.window_left AS dialable_until
  FROM campaigns c
  CROSS JOIN LATERAL (
        SELECT l.lead_id, l.campaign_id, l.bucket_id, l.phone, l.timezone, l.next_call_at,
               l.attempts, cb.callback_id, cb.assigned_operator_id,
               CASE WHEN c.window_start <= c.window_end THEN c.window_end - t.local::time
                    WHEN t.local::time >= c.window_start
                    THEN ('24:00'::time - t.local::time) + (c.window_end - '00:00'::time)
                    ELSE c.window_end - t.local::time END AS window_left
          FROM leads l
          LEFT JOIN callbacks cb ON cb.lead_id = l.lead_id AND cb.status = 'pending'
          CROSS JOIN LATERAL (SELECT %(now)s::timestamptz AT TIME ZONE l.timezone AS local) t
         WHERE l.campaign_id = c.campaign_id
           AND l.status = 'active' AND l.locked_by IS NULL
           AND l.next_call_at <= %(horizon)s
           AND (l.next_call_at <= %(now)s OR cb.callback_id IS NOT NULL)
           AND l.attempts < c.max_attempts
           AND dialer_window_open(%(now)s, l.timezone, c.window_start, c.window_end)
           AND (c.calendar_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM holidays h
                     WHERE h.calendar_id = c.calendar_id AND h.day = t.local::date))
         ORDER BY (cb.callback_id IS NULL), l.next_call_at, l.lead_id
         LIMIT c.hopper_size) d
  JOIN buckets b ON b.bucket_id = d.bucket_id
 WHERE c.status = 'active'
 ORDER BY d.campaign_id, (d.callback_id IS NULL), d.next_call_at, d.lead_id
"""


@dataclass(frozen=True, order=True)
class Entry:
    """One dialable lead in the hopper. ``owner_id`` set: only that operator may take it."""

    next_call_at: datetime
    lead_id: int
    campaign_id: int = field(compare=False)
    bucket_id: int = field(compare=False)
    phone: str = field(compare=False)
    timezone: str = field(compare=False)
    attempts: int = field(compare=False)
    callback_id: int | None = field(compare=False)
    owner_id: int | None = field(compare=False)
    #: the lead's local calling window closes then: not dialed later, though selected before
    dialable_until: datetime = field(compare=False, default=datetime.max.replace(tzinfo=UTC))


def select_dialable(conn: psycopg.Connection, now: datetime) -> list[Entry]:
    """Every lead dialable at ``now`` (callbacks up to a minute ahead), callbacks first."""
    rows = conn.execute(SELECT_DIALABLE, {"now": now, "horizon": now + CALLBACK_LOOKAHEAD})
    return [Entry(r[5], r[0], r[1], r[2], r[3], r[4], r[6], r[7], r[8], r[9]) for r in rows]


@dataclass
class CampaignPool:
    """One campaign's share of the hopper: a common queue and per-operator queues."""

    common: deque[Entry] = field(default_factory=deque)
    personal: dict[int, deque[Entry]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.common) + sum(len(q) for q in self.personal.values())


class Hopper:
    """The in-memory pool the dialer takes from each second, rebuilt by every batcher tick.

    Rebuilding (rather than topping up) means a lead deleted, moved, closed or re-ruled since the
    last tick drops out within a minute; leads already taken are locked in the database and so
    are not selected again.
    """

    def __init__(self) -> None:
        self.pools: dict[int, CampaignPool] = {}
        self.last_tick_ms = 0.0

    def tick(self, conn: psycopg.Connection, now: datetime) -> dict[int, int]:
        """Run the batcher; returns the number of leads selected per active campaign."""
        started = time.perf_counter()
        entries = select_dialable(conn, now)
        self.load(entries)
        self.last_tick_ms = (time.perf_counter() - started) * 1000
        return {cid: len(pool) for cid, pool in self.pools.items()}

    def load(self, entries: list[Entry]) -> None:
        pools: dict[int, CampaignPool] = {}
        for entry in entries:  # already in callback-first, next-contact order
            pool = pools.setdefault(entry.campaign_id, CampaignPool())
            if entry.owner_id is None:
                pool.common.append(entry)
            else:
                pool.personal.setdefault(entry.owner_id, deque()).append(entry)
        self.pools = pools

    def depth(self, campaign_id: int) -> int:
        pool = self.pools.get(campaign_id)
        return len(pool) if pool else 0

    def has_due_personal(self, operator_id: int, now: datetime) -> bool:
        """Whether a lead reserved for this operator is due now (the operator must get it,
        not a predictive call)."""
        return any(q[0].next_call_at <= now for pool in self.pools.values()
                   if (q := pool.personal.get(operator_id)))

    def take_personal(self, operator_id: int, now: datetime) -> Entry | None:
        """The operator's earliest due reserved lead (callbacks first), across campaigns."""
        best: deque[Entry] | None = None
        for pool in self.pools.values():
            queue = pool.personal.get(operator_id)
            while queue and queue[0].dialable_until <= now:
                queue.popleft()  # its window closed since the tick
            if queue and queue[0].next_call_at <= now and (
                    best is None or _rank(queue[0]) < _rank(best[0])):
                best = queue
        return best.popleft() if best else None

    def take_common(self, campaign_id: int, count: int, now: datetime) -> list[Entry]:
        """Up to ``count`` due common leads of a campaign in next-contact order."""
        pool = self.pools.get(campaign_id)
        taken: list[Entry] = []
        early: list[Entry] = []  # callbacks selected ahead of their minute stay in front
        while pool and pool.common and len(taken) < count:
            entry = pool.common.popleft()
            if entry.dialable_until <= now:
                continue  # its window closed since the tick
            (taken if entry.next_call_at <= now else early).append(entry)
            if entry.callback_id is None and entry.next_call_at > now:
                break
        if pool:
            pool.common.extendleft(reversed(early))
        return taken

    def discard_operator(self, operator_id: int) -> None:
        for pool in self.pools.values():
            pool.personal.pop(operator_id, None)


def _rank(entry: Entry) -> tuple[bool, datetime]:
    return (entry.callback_id is None, entry.next_call_at)


def record_tick(conn: psycopg.Connection, now: datetime, depths: dict[int, int],
                duration_ms: float) -> None:
    """Hopper depth per campaign (a KPI) in one statement."""
    if not depths:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hopper_ticks (campaign_id, tick_at, selected, duration_ms)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(cid, now, n, round(duration_ms)) for cid, n in depths.items()])
