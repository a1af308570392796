"""Drive the CRM on the shared clock: planned arrivals become appeals, and each case lives on.

For every arrival the simulator writes the appeal through the same functions the API uses
(calls through :func:`appeals.record_call`, like the dialer), then schedules the case's life on
a heap of future events: first response after a channel-typical delay, a ticket for
``ticket_share`` of cases, assignment to an engineer of the routed group, sometimes a
reassignment, resolution, closing, and now and then a reopen. SLA reminders and the answer
outbox are processed as time passes. All randomness is seeded, so a run is reproducible on a
:class:`ManualClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from dialer_core.clock import Clock
from dialer_core.crm import answers, appeals, reminders, tickets
from dialer_core.crm.errors import CrmError
from dialer_core.crm.reference import Reference, contact_address, customer_phone
from dialer_core.crm.settings import CHANNELS, DEFAULT_SETTINGS, CrmSettings
from dialer_core.crm.workload import Arrival, WorkloadConfig, plan_day

# first-response delay per channel: (min, max) seconds
RESPONSE_DELAY = {"call": (5, 60), "chat": (30, 300), "web": (300, 3600),
                  "whatsapp": (60, 1800), "telegram": (60, 1800), "viber": (60, 1800),
                  "email": (1800, 8 * 3600)}
# channel adapters of the simulation: delivery always succeeds
SIM_SENDERS: dict[str, Callable[[dict[str, Any]], None]] = {ch: lambda _: None
                                                            for ch in CHANNELS}


def _call_id(arrival: Arrival) -> str:
    return f"sim-{arrival.at:%Y%m%dT%H%M%S.%f}-{arrival.customer_no}"


@dataclass
class Stats:
    appeals: int = 0
    linked: int = 0
    answers: int = 0
    tickets: int = 0
    ticket_changes: int = 0
    reminders: int = 0
    rejected: int = 0


@dataclass
class Simulation:
    conn: psycopg.Connection[Any]
    ref: Reference
    config: WorkloadConfig = field(default_factory=WorkloadConfig)
    settings: CrmSettings = DEFAULT_SETTINGS
    stats: Stats = field(default_factory=Stats)
    _events: list[tuple[datetime, int, str, dict[str, Any]]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _planned_until: date | None = None
    _last_housekeeping: datetime | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(f"crm-simulation:{self.config.seed}")

    def _schedule(self, at: datetime, kind: str, **data: Any) -> None:
        heapq.heappush(self._events, (at, next(self._seq), kind, data))

    def _plan(self, start: datetime, until: datetime) -> None:
        """Queue the arrivals of every day up to ``until`` (skipping those before ``start``)."""
        day = start.date() if self._planned_until is None else self._planned_until
        while day <= until.date():
            for arrival in plan_day(self.config, self.ref, day):
                if arrival.at >= start:
                    self._schedule(arrival.at, "arrival", arrival=arrival)
            day += timedelta(days=1)
        self._planned_until = day

    def advance(self, start: datetime, until: datetime) -> None:
        """Write everything that happens in [start, until]; call with increasing ``until``."""
        self._plan(start, until)
        while self._events and self._events[0][0] <= until:
            at, _, kind, data = heapq.heappop(self._events)
            self._housekeeping(at)
            try:
                getattr(self, f"_on_{kind}")(at, **data)
            except CrmError:
                self.stats.rejected += 1  # e.g. a case closed by its repeat's history
        self._housekeeping(until)

    def _housekeeping(self, at: datetime) -> None:
        """Once per simulated minute: SLA reminders and the answer outbox."""
        if self._last_housekeeping and at - self._last_housekeeping < timedelta(minutes=1):
            return
        self._last_housekeeping = at
        self.stats.reminders += len(reminders.send_due(self.conn, at))
        answers.dispatch(self.conn, SIM_SENDERS, at)

    # ---------------------------------------------------------------- event handlers
    def _on_arrival(self, at: datetime, arrival: Arrival) -> None:
        low, high = RESPONSE_DELAY[arrival.channel]
        responded = at + timedelta(seconds=self.rng.uniform(low, high))
        if arrival.channel == "call":
            operator = self.rng.choice(self.ref.operators_by_queue[arrival.queue_id])
            appeal = appeals.record_call(
                self.conn, customer_phone(arrival.customer_no), at=at, call_id=_call_id(arrival),
                topic_id=arrival.topic_id, queue_id=arrival.queue_id, settings=self.settings)
            self._schedule(responded, "call_answered", arrival=arrival, operator=operator)
        else:
            appeal = appeals.create(
                self.conn, channel=arrival.channel,
                address=contact_address(arrival.channel, arrival.customer_no),
                phone=customer_phone(arrival.customer_no), topic_id=arrival.topic_id,
                queue_id=arrival.queue_id, region_id=arrival.region_id,
                store_id=arrival.store_id, full_name=f"Customer {arrival.customer_no}", at=at,
                settings=self.settings)
            self._schedule(responded, "answer", appeal_id=appeal.appeal_id, queue=arrival.queue_id)
        self.stats.appeals += 1
        self.stats.linked += appeal.linked_appeal_id is not None
        if appeal.linked_appeal_id is None and self.rng.random() < self.config.ticket_share:
            self._schedule(responded + timedelta(seconds=30), "ticket",
                           appeal_id=appeal.appeal_id)
        elif appeal.linked_appeal_id is None:
            self._schedule(responded + timedelta(minutes=self.rng.uniform(2, 30)),
                           "appeal_resolved", appeal_id=appeal.appeal_id)
        elif not self._has_active_ticket(appeal.linked_appeal_id):
            # the repeat's operator settles the case (reopened if it had been resolved); a case
            # with a ticket in work is settled by the ticket
            self._schedule(responded + timedelta(minutes=self.rng.uniform(2, 30)),
                           "appeal_resolved", appeal_id=appeal.linked_appeal_id)

    def _has_active_ticket(self, appeal_id: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM tickets WHERE appeal_id = %s AND status IN "
                                "('open', 'in_progress') LIMIT 1", (appeal_id,)).fetchone()
        return row is not None

    def _on_call_answered(self, at: datetime, arrival: Arrival, operator: int) -> None:
        """The dialer's second report of the same call: an operator took it."""
        appeals.record_call(self.conn, customer_phone(arrival.customer_no), at=arrival.at,
                            call_id=_call_id(arrival), answered_at=at, operator_id=operator,
                            topic_id=arrival.topic_id, queue_id=arrival.queue_id,
                            settings=self.settings)

    def _on_answer(self, at: datetime, appeal_id: int, queue: int) -> None:
        operator = self.rng.choice(self.ref.operators_by_queue[queue])
        answers.send(self.conn, appeal_id, "Thank you, we are looking into it.", at,
                     employee_id=operator)
        self.stats.answers += 1

    def _on_appeal_resolved(self, at: datetime, appeal_id: int) -> None:
        if appeals.get(self.conn, appeal_id)["status"] in appeals.OPEN_STATUSES:
            appeals.set_status(self.conn, appeal_id, "resolved", at)
            self._schedule(at + timedelta(hours=24), "appeal_closed", appeal_id=appeal_id)

    def _on_appeal_closed(self, at: datetime, appeal_id: int) -> None:
        """Close a case a day after it was resolved, unless a repeat reopened it since."""
        if appeals.get(self.conn, appeal_id)["status"] == "resolved":
            appeals.set_status(self.conn, appeal_id, "closed", at)

    def _on_ticket(self, at: datetime, appeal_id: int) -> None:
        kind = "claim" if self.rng.random() < self.config.claim_share else "task"
        ticket = tickets.create(self.conn, appeal_id=appeal_id, ticket_type=kind, at=at,
                                settings=self.settings)
        self.stats.tickets += 1
        self._schedule(at + timedelta(minutes=self.rng.uniform(5, 90)), "assign",
                       ticket_id=ticket["ticket_id"], group_id=ticket["group_id"])

    def _on_assign(self, at: datetime, ticket_id: int, group_id: int) -> None:
        engineer = self.rng.choice(self.ref.engineers_by_group[group_id])
        tickets.assign(self.conn, ticket_id, at, assignee_id=engineer)
        self.stats.ticket_changes += 1
        work = timedelta(hours=self.rng.lognormvariate(1.5, 0.9))
        if self.rng.random() < 0.1:  # handed to a colleague half-way
            self._schedule(at + work / 2, "assign", ticket_id=ticket_id, group_id=group_id)
        else:
            self._schedule(at + work, "resolve", ticket_id=ticket_id)

    def _on_resolve(self, at: datetime, ticket_id: int) -> None:
        ticket = tickets.set_status(self.conn, ticket_id, "resolved", at)
        appeal = appeals.get(self.conn, ticket["appeal_id"])
        if appeal["status"] in appeals.OPEN_STATUSES:
            appeals.set_status(self.conn, appeal["appeal_id"], "resolved", at)
        self.stats.ticket_changes += 1
        if self.rng.random() < 0.05:  # the fix did not hold
            self._schedule(at + timedelta(hours=self.rng.uniform(2, 48)), "reopen",
                           ticket_id=ticket_id)
        else:
            self._schedule(at + timedelta(hours=24), "close", ticket_id=ticket_id)

    def _on_reopen(self, at: datetime, ticket_id: int) -> None:
        tickets.reopen(self.conn, ticket_id, at, settings=self.settings)
        self.stats.ticket_changes += 1
        self._schedule(at + timedelta(hours=self.rng.lognormvariate(1.0, 0.7)), "resolve",
                       ticket_id=ticket_id)

    def _on_close(self, at: datetime, ticket_id: int) -> None:
        tickets.close(self.conn, ticket_id, at)
        self.stats.ticket_changes += 1

    # ---------------------------------------------------------------- live loop
    async def run(self, clock: Clock, stop: asyncio.Event, tick: float = 1.0) -> Stats:
        """Follow ``clock`` until ``stop`` is set, writing each simulated second's events."""
        start = last = clock.now()
        while True:
            now = clock.now()
            if now > last:
                await asyncio.to_thread(self.advance, start, now)
                last = now
            if stop.is_set():  # after the last catch-up: nothing due before now is left out
                return self.stats
            await clock.sleep(tick)
