"""The dialer engine: campaigns against operators, one simulated second at a time.

:meth:`Engine.tick` runs once a minute: it reassigns overdue callbacks, reloads campaigns, rules,
routes and operators (so a stopped campaign, a changed rule or a removed operator takes effect
within a minute) and rebuilds the hopper with one set-based query. :meth:`Engine.step` runs
every second and touches only memory plus one batched write: it advances calls, connects answered
calls to operators, abandons those nobody took within 2 s, and originates new calls from the
hopper by strategy.

Operators with a due reserved lead (a callback or a personal lead) are served first, before any
strategy sees them, and are never offered to the predictive queue while that lead waits: that is
how an operator with a due callback is never left idle.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from dialer_core.dialer import operators as ops_db
from dialer_core.dialer.callbacks import create_callback, reassign_overdue
from dialer_core.dialer.caller_id import Route, load_routes, resolve
from dialer_core.dialer.crm_link import HandledCall
from dialer_core.dialer.hopper import Entry, Hopper, record_tick
from dialer_core.dialer.pacing import CampaignStats, predictive_calls
from dialer_core.dialer.rules import Rule, decide, load_rules
from dialer_core.dialer.telephony import CallPlan, Profile, Telephony
from dialer_core.dialer.writer import Writer

#: an answered outbound call nobody takes within this is abandoned
ABANDON_AFTER = timedelta(seconds=2)
#: a callback connected later than this after its due time counts as late, not kept
KEPT_GRACE = timedelta(seconds=60)
PREVIEW_SECONDS = 8.0


@dataclass
class Campaign:
    campaign_id: int
    strategy: str
    status: str
    max_attempts: int
    abandon_target: float
    max_dial_ratio: float
    caller_id: str
    queue_id: int | None


@dataclass
class Operator:
    operator_id: int
    status: str
    campaigns: tuple[int, ...]
    penalty: int = 0
    attempt_id: int | None = None      # the call they are on or reserved for
    free_since: datetime | None = None
    removed: bool = False              # removed mid-call: finishes the call, then leaves
    login: str = ""


@dataclass
class Call:
    attempt_id: int
    entry: Entry
    strategy: str
    plan: CallPlan
    operator_id: int | None            # reserved (progressive/preview/personal) or connected
    reserved: bool
    originated_at: datetime
    answered_at: datetime | None = None
    connected_at: datetime | None = None


@dataclass
class InboundCall:
    """An inbound call ICP routed to a queue: waits for any free operator (blended)."""

    attempt_id: int
    plan: CallPlan
    give_up_at: datetime
    operator_id: int | None = None
    phone: str = ""                    # the caller's number (numa)
    arrived_at: datetime | None = None
    queued_at: datetime | None = None  # the ICP thread's clock can be ahead of the tick


@dataclass
class Workforce:
    """Simulated operator behaviour after each call (absent when real people drive the API)."""

    callback_share: float = 0.05       # connected calls ending in an agreed callback
    pause_share: float = 0.03          # calls followed by a short break
    pause_minutes: tuple[float, float] = (3.0, 12.0)
    callback_minutes: tuple[float, float] = (20.0, 180.0)


@dataclass
class Metrics:
    originated: int = 0
    connected: int = 0
    abandoned: int = 0
    callbacks_created: int = 0
    idle_due_callback_seconds: int = 0
    stats: dict[int, CampaignStats] = field(default_factory=dict)


class Engine:
    def __init__(self, conn: psycopg.Connection, telephony: Telephony,
                 workforce: Workforce | None = None,
                 profiles: dict[int, Profile] | None = None) -> None:
        self.conn = conn
        self.telephony = telephony
        self.workforce = workforce
        self.profiles = profiles or {}
        self.writer = Writer(conn)
        self.hopper = Hopper()
        self.campaigns: dict[int, Campaign] = {}
        self.rules: dict[int, list[Rule]] = {}
        self.routes: list[Route] = []
        self.operators: dict[int, Operator] = {}
        self.calls: dict[int, Call] = {}
        self.waiting: deque[int] = deque()     # answered, unreserved, no operator yet
        self.inbound: dict[int, InboundCall] = {}
        self.inbound_waiting: deque[int] = deque()
        self.events: list[tuple[datetime, int, str, int]] = []
        self._seq = itertools.count()
        self.metrics = Metrics()
        self.last_tick: datetime | None = None
        self._unpauses: list[tuple[datetime, int]] = []
        #: calls connected to an operator since the service last drained this (CRM appeals);
        #: None: nobody drains it, so nothing is collected
        self.handled: list[HandledCall] | None = None

    # ------------------------------------------------------------------ minute tick
    def tick(self, now: datetime) -> None:
        """The batcher: reassign overdue callbacks, reload, rebuild the hopper."""
        self.writer.flush()
        reassign_overdue(self.conn, now)
        self._reload()
        self.hopper.tick(self.conn, now)
        depths = {cid: self.hopper.depth(cid) for cid, c in self.campaigns.items()
                  if c.status == "active"}   # an empty hopper is a figure too
        record_tick(self.conn, now, depths, self.hopper.last_tick_ms)
        for op in self.operators.values():
            if op.status == "waiting_unpause" and op.attempt_id is None \
                    and not self.hopper.has_due_personal(op.operator_id, now):
                self._lift_unpause(op, now)
        self.last_tick = now

    def _reload(self) -> None:
        self.campaigns = {r[0]: Campaign(r[0], r[1], r[2], r[3], float(r[4]), float(r[5]), r[6],
                                         r[7])
                          for r in self.conn.execute(
            "SELECT c.campaign_id, c.strategy, c.status, c.max_attempts, c.abandon_target,"
            " c.max_dial_ratio, c.caller_id,"
            " (SELECT min(queue_id) FROM queues q WHERE q.campaign_id = c.campaign_id)"
            " FROM campaigns c")}
        self.rules = load_rules(self.conn)
        self.routes = load_routes(self.conn)
        fresh: dict[int, Operator] = {}
        for op_id, status, penalty, campaigns, login in self.conn.execute(
                "SELECT o.operator_id, o.status, coalesce(max(qm.penalty), 0),"
                " coalesce(array_agg(q.campaign_id ORDER BY q.campaign_id)"
                "          FILTER (WHERE q.campaign_id IS NOT NULL), '{}'), o.login"
                " FROM operators o LEFT JOIN queue_members qm USING (operator_id)"
                " LEFT JOIN queues q USING (queue_id)"
                " WHERE o.removed_at IS NULL GROUP BY o.operator_id"):
            known = self.operators.get(op_id)
            if known is not None and known.attempt_id is not None:
                known.campaigns = tuple(campaigns)   # mid-call: memory is the truth
                fresh[op_id] = known
                continue
            fresh[op_id] = Operator(op_id, status, tuple(campaigns), penalty,
                                    free_since=known.free_since if known else None,
                                    login=login)
        for op_id in set(self.operators) - set(fresh):
            self.hopper.discard_operator(op_id)      # removed: their leads wait reassignment
            gone = self.operators[op_id]
            if gone.attempt_id is not None:
                gone.removed = True
                fresh[op_id] = gone
        self.operators = fresh

    # ------------------------------------------------------------------ second step
    def step(self, now: datetime) -> None:
        while self.events and self.events[0][0] <= now:
            at, _, kind, attempt_id = heapq.heappop(self.events)
            call: Call | InboundCall | None = (
                self.inbound.get(attempt_id) if kind.startswith("inbound_")
                else self.calls.get(attempt_id))
            if call is not None:
                getattr(self, f"_on_{kind}")(call, at)
        self._serve_waiting(now)
        self._serve_inbound(now)
        self._dispatch(now)
        self._count_idle(now)
        self.writer.flush()

    def _schedule(self, at: datetime, kind: str, attempt_id: int) -> None:
        heapq.heappush(self.events, (at, next(self._seq), kind, attempt_id))

    # ------------------------------------------------------------------ operator actions
    def operator_action(self, operator_id: int, action: str, now: datetime,
                        reason: str | None = None) -> str:
        """login, logout, pause (with reason), unpause; returns the new status."""
        self.writer.flush()
        op = self.operators.get(operator_id)
        if action == "unpause":
            status = ops_db.request_unpause(self.conn, operator_id, now)
            if op:
                op.status = status
                op.penalty = ops_db.UNPAUSE_PENALTY if status == "waiting_unpause" else 0
                op.free_since = now
            return status
        if op is not None and op.attempt_id is not None and action in ("logout", "pause"):
            raise ops_db.OperatorError(f"operator {operator_id} is on a call; finish it first")
        status = {"login": "ready", "logout": "offline", "pause": "paused"}.get(action)
        if status is None:
            raise ops_db.OperatorError(f"unknown action {action!r}", 422)
        ops_db.set_status(self.conn, operator_id, status, now, reason)
        if op:
            op.status = status
            op.free_since = now
        return status

    def _set_status(self, op: Operator, status: str, now: datetime,
                    reason: str | None = None) -> None:
        for sql, params in ops_db.status_statements(op.operator_id, status, now, reason):
            self.writer.add(sql, params)
        op.status = status

    def _lift_unpause(self, op: Operator, now: datetime, status: str = "ready") -> None:
        """No reserved call needs the operator any more: drop the penalty and kept reason."""
        self._set_status(op, status, now)
        self.writer.add(*ops_db.penalty_statement(op.operator_id, 0))
        op.penalty = 0

    # ------------------------------------------------------------------ dispatch
    def _free_for_personal(self) -> list[Operator]:
        return [op for op in self.operators.values()
                if op.attempt_id is None and op.status in ("ready", "waiting_unpause")]

    def _free_for_queue(self, campaign_id: int, now: datetime) -> list[Operator]:
        """Operators the queue may give a new call of this campaign, longest idle first."""
        free = [op for op in self.operators.values()
                if op.attempt_id is None and op.status == "ready"
                and op.penalty < ops_db.UNPAUSE_PENALTY and campaign_id in op.campaigns
                and not self.hopper.has_due_personal(op.operator_id, now)]
        free.sort(key=lambda o: (o.penalty, o.free_since or now, o.operator_id))
        return free

    def _dispatch(self, now: datetime) -> None:
        batch: list[tuple[Entry, int | None]] = []
        for op in self._free_for_personal():
            entry = self.hopper.take_personal(op.operator_id, now)
            if entry is not None and self._active(entry.campaign_id):
                batch.append((entry, op.operator_id))
                op.attempt_id = -1  # reserved until origination assigns the attempt
        counted: set[int] = set()  # an operator's capacity paces one campaign per second
        for campaign in self.campaigns.values():
            if campaign.status != "active" or campaign.strategy == "personal":
                continue
            free = [op for op in self._free_for_queue(campaign.campaign_id, now)
                    if op.operator_id not in counted]
            if campaign.strategy == "predictive":
                counted.update(op.operator_id for op in free)
                ringing = sum(1 for c in self.calls.values()
                              if c.entry.campaign_id == campaign.campaign_id
                              and not c.reserved and c.answered_at is None)
                count = predictive_calls(len(free), ringing, self._stats(campaign.campaign_id),
                                         campaign.abandon_target, campaign.max_dial_ratio)
                batch.extend((e, None) for e in
                             self.hopper.take_common(campaign.campaign_id, count, now))
            else:  # progressive, preview, callback: one call per free operator, reserved
                entries = self.hopper.take_common(campaign.campaign_id, len(free), now)
                for entry, op in zip(entries, free, strict=False):
                    batch.append((entry, op.operator_id))
                    op.attempt_id = -1
        if batch:
            self._originate(batch, now)

    def _active(self, campaign_id: int) -> bool:
        campaign = self.campaigns.get(campaign_id)
        return campaign is not None and campaign.status == "active"

    def _originate(self, batch: list[tuple[Entry, int | None]], now: datetime) -> None:
        """Lock the batch's leads in one statement; a lead deleted, moved, closed or locked
        since the tick is simply not returned, and its reserved operator is freed."""
        ids = [r[0] for r in self.conn.execute(
            "SELECT nextval('call_attempts_attempt_id_seq') FROM generate_series(1, %s)",
            (len(batch),))]
        locked = {r[0] for r in self.conn.execute(
            "UPDATE leads l SET locked_by = x.aid, locked_at = %s, updated_at = %s"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS x(lid, aid, bucket)"
            " WHERE l.lead_id = x.lid AND l.bucket_id = x.bucket AND l.status = 'active'"
            " AND l.locked_by IS NULL RETURNING l.lead_id",
            (now, now, [e.lead_id for e, _ in batch], ids, [e.bucket_id for e, _ in batch]))}
        for attempt_id, (entry, op_id) in zip(ids, batch, strict=True):
            op = self.operators.get(op_id) if op_id is not None else None
            if entry.lead_id not in locked:
                if op is not None:
                    op.attempt_id = None
                continue
            campaign = self.campaigns[entry.campaign_id]
            strategy = "callback" if entry.callback_id is not None else (
                "personal" if entry.owner_id is not None else campaign.strategy)
            local_hour = now.astimezone(ZoneInfo(entry.timezone)).hour
            plan = self.telephony.plan_call(self.profiles.get(entry.campaign_id, Profile()),
                                            local_hour)
            call = Call(attempt_id, entry, strategy, plan, op_id, op_id is not None, now)
            self.calls[attempt_id] = call
            if op is not None:
                op.attempt_id = attempt_id
            if entry.callback_id is not None:
                self.writer.add("UPDATE callbacks SET status = 'dialing', attempt_id = %s,"
                                " updated_at = %s WHERE callback_id = %s AND status = 'pending'",
                                (attempt_id, now, entry.callback_id))
            if strategy == "preview":  # the operator reads the lead first, the lead stays locked
                self._schedule(now + timedelta(seconds=PREVIEW_SECONDS), "dial", attempt_id)
            else:
                self._on_dial(call, now)

    def _on_dial(self, call: Call, at: datetime) -> None:
        """Originate: the attempt row is born here, with the caller ID it shows."""
        entry = call.entry
        campaign = self.campaigns.get(entry.campaign_id)
        call.originated_at = at
        caller = resolve(self.routes, entry.campaign_id, entry.phone,
                         call.operator_id if call.strategy in ("callback", "personal") else None,
                         campaign.caller_id if campaign else "")
        self.writer.add(
            "INSERT INTO call_attempts (attempt_id, campaign_id, lead_id, callback_id,"
            " queue_id, operator_id, strategy, phone, caller_id, state, originated_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'originated', %s, %s)",
            (call.attempt_id, entry.campaign_id, entry.lead_id, entry.callback_id,
             campaign.queue_id if campaign else None, call.operator_id, call.strategy,
             entry.phone, caller, at, at))
        self.metrics.originated += 1
        self._schedule(at + timedelta(seconds=1), "ringing", call.attempt_id)

    # ------------------------------------------------------------------ call life
    def _on_ringing(self, call: Call, at: datetime) -> None:
        self.writer.attempt(call.attempt_id, at, state="ringing", ringing_at=at)
        self._schedule(at + timedelta(seconds=call.plan.ring_s), "outcome", call.attempt_id)

    def _on_outcome(self, call: Call, at: datetime) -> None:
        outcome = call.plan.outcome
        stats = self._stats(call.entry.campaign_id)
        if outcome != "answered":
            stats.record(answered=False)
            self.writer.attempt(call.attempt_id, at, state=outcome, outcome=outcome, ended_at=at)
            self._close(call, at, outcome)
            return
        call.answered_at = at
        self.writer.attempt(call.attempt_id, at, state="answered", answered_at=at)
        if call.reserved:
            stats.record(answered=True)
            self._connect(call, at)
            return
        self.writer.attempt(call.attempt_id, at, state="queued", queued_at=at)
        self.waiting.append(call.attempt_id)
        self._schedule(at + ABANDON_AFTER, "abandon", call.attempt_id)
        self._serve_waiting(at)

    def _serve_waiting(self, now: datetime) -> None:
        kept: deque[int] = deque()
        while self.waiting:
            attempt_id = self.waiting.popleft()
            call = self.calls.get(attempt_id)
            if call is None or call.connected_at is not None:
                continue
            free = self._free_for_queue(call.entry.campaign_id, now)
            if free:
                self._stats(call.entry.campaign_id).record(answered=True)
                call.operator_id = free[0].operator_id
                free[0].attempt_id = attempt_id
                self.writer.attempt(attempt_id, now, operator_id=call.operator_id)
                self._connect(call, now)
            else:
                kept.append(attempt_id)
        self.waiting = kept

    def _on_abandon(self, call: Call, at: datetime) -> None:
        if call.connected_at is not None or call.attempt_id not in self.waiting:
            return
        self.waiting.remove(call.attempt_id)
        self._stats(call.entry.campaign_id).record(answered=True, abandoned=True)
        self.metrics.abandoned += 1
        self.writer.attempt(call.attempt_id, at, state="abandoned", outcome="abandoned",
                            ended_at=at)
        self._close(call, at, "abandoned")

    def _connect(self, call: Call, at: datetime) -> None:
        call.connected_at = at
        op = self.operators.get(call.operator_id) if call.operator_id is not None else None
        self.writer.attempt(call.attempt_id, at, state="connected", connected_at=at,
                            hold_seconds=round(call.plan.hold_s))
        if call.entry.callback_id is not None:
            kept = at <= call.entry.next_call_at + KEPT_GRACE
            self.writer.add("UPDATE callbacks SET status = %s, updated_at = %s"
                            " WHERE callback_id = %s",
                            ("kept" if kept else "late", at, call.entry.callback_id))
        if op is not None:
            if op.status == "waiting_unpause":
                self._lift_unpause(op, at, "on_call")   # no reserved call needs them now
            else:
                self._set_status(op, "on_call", at)
        self.metrics.connected += 1
        if self.handled is not None:
            self.handled.append(HandledCall(call.attempt_id, "outbound", call.entry.phone,
                                            call.originated_at, at, op.login if op else ""))
        talk = timedelta(seconds=call.plan.talk_s + call.plan.hold_s)
        self._schedule(at + talk, "talk_end", call.attempt_id)

    def _on_talk_end(self, call: Call, at: datetime) -> None:
        self.writer.attempt(call.attempt_id, at, state="wrap_up", ended_at=at)
        op = self.operators.get(call.operator_id) if call.operator_id is not None else None
        if op is not None:
            self._set_status(op, "wrap_up", at)
        self._schedule(at + timedelta(seconds=call.plan.wrap_s), "wrap_end", call.attempt_id)

    def _on_wrap_end(self, call: Call, at: datetime) -> None:
        self.writer.attempt(call.attempt_id, at, wrap_ended_at=at)
        self._close(call, at, "answered", disposition="completed")

    def _close(self, call: Call, at: datetime, outcome: str,
               disposition: str | None = None) -> None:
        """Finish the attempt, apply the first matching scheduler rule to the lead, free the
        operator; the simulated workforce may then agree a callback or take a break."""
        entry = call.entry
        campaign = self.campaigns.get(entry.campaign_id)
        max_attempts = campaign.max_attempts if campaign else entry.attempts + 1
        decision = decide(self.rules.get(entry.campaign_id, []), outcome, entry.attempts + 1,
                          max_attempts, at)
        callback_agreed = (disposition == "completed" and self.workforce is not None
                           and call.operator_id is not None
                           and self.telephony.chance(self.workforce.callback_share))
        self.writer.attempt(call.attempt_id, at, state="closed", closed_at=at,
                            outcome=outcome,
                            disposition=disposition or outcome)
        self.writer.add(
            "UPDATE leads SET attempts = attempts + 1, locked_by = NULL, locked_at = NULL,"
            " last_outcome = %s, status = %s, next_call_at = %s, updated_at = %s"
            " WHERE lead_id = %s AND locked_by = %s",
            (outcome, decision.status, decision.next_call_at, at, entry.lead_id,
             call.attempt_id))
        if entry.callback_id is not None and outcome != "answered":
            self.writer.add(
                "UPDATE callbacks SET status = CASE WHEN %s = 'active' THEN 'pending'"
                " ELSE 'missed' END, attempt_id = NULL, updated_at = %s"
                " WHERE callback_id = %s AND status = 'dialing'",
                (decision.status, at, entry.callback_id))
        del self.calls[call.attempt_id]
        self._release(call.operator_id, at, entry.lead_id if callback_agreed else None)

    def _release(self, operator_id: int | None, at: datetime,
                 callback_lead: int | None = None) -> None:
        """The operator is done with a call: next status, and in simulation maybe a callback
        agreed with the customer (``callback_lead``) or a break."""
        op = self.operators.get(operator_id) if operator_id is not None else None
        if op is None:
            return
        op.attempt_id = None
        op.free_since = at
        if op.removed:
            self._set_status(op, "offline", at)
            del self.operators[op.operator_id]
            return
        if callback_lead is not None and self.workforce is not None:
            self.writer.flush()
            low, high = self.workforce.callback_minutes
            agreed = at + timedelta(minutes=self.telephony.uniform(low, high))
            create_callback(self.conn, callback_lead, op.operator_id, agreed, at)
            self.metrics.callbacks_created += 1
        if op.status == "waiting_unpause":
            if not self.hopper.has_due_personal(op.operator_id, at):
                self._lift_unpause(op, at)
        elif self.workforce is not None and self.telephony.chance(self.workforce.pause_share):
            self._set_status(op, "paused", at, "break")
            low, high = self.workforce.pause_minutes
            self._schedule_unpause(op, at + timedelta(minutes=self.telephony.uniform(low, high)))
        elif op.status != "ready":
            self._set_status(op, "ready", at)

    def _schedule_unpause(self, op: Operator, at: datetime) -> None:
        self._unpauses.append((at, op.operator_id))

    def run_workforce(self, now: datetime) -> None:
        """Simulated operators come back from breaks (asking to unpause)."""
        due = [u for u in self._unpauses if u[0] <= now]
        self._unpauses = [u for u in self._unpauses if u[0] > now]
        for _, op_id in due:
            op = self.operators.get(op_id)
            if op is not None and op.status == "paused":
                self.operator_action(op_id, "unpause", now)

    # ------------------------------------------------------------------ inbound queue
    def offer_inbound(self, attempt_id: int, now: datetime, phone: str = "",
                      arrived_at: datetime | None = None) -> None:
        """ICP routed an inbound call (its row already ``queued``) to the operator queue.
        Outbound answered calls are served first (their 2 s limit is the hard one); an inbound
        caller waits up to their patience, then hangs up (abandoned in queue)."""
        plan, patience = self.telephony.plan_inbound(Profile())
        call = InboundCall(attempt_id, plan, now + timedelta(seconds=patience), phone=phone,
                           arrived_at=arrived_at or now, queued_at=now)
        self.writer.attempt(attempt_id, now, state="queued", queued_at=now)
        self.inbound[attempt_id] = call
        self.inbound_waiting.append(attempt_id)
        self._schedule(call.give_up_at, "inbound_give_up", attempt_id)

    def _serve_inbound(self, now: datetime) -> None:
        while self.inbound_waiting:
            free = [op for op in self.operators.values()
                    if op.attempt_id is None and op.status == "ready"
                    and op.penalty < ops_db.UNPAUSE_PENALTY
                    and not self.hopper.has_due_personal(op.operator_id, now)]
            if not free:
                return
            op = min(free, key=lambda o: (o.free_since or now, o.operator_id))
            call = self.inbound[self.inbound_waiting.popleft()]
            # offered from the ICP thread at its own clock reading, which can be a moment
            # after this tick: never connect before the call was queued
            at = max(now, call.queued_at or now)
            call.operator_id, op.attempt_id = op.operator_id, call.attempt_id
            self.writer.attempt(call.attempt_id, at, state="connected", connected_at=at,
                                operator_id=op.operator_id,
                                hold_seconds=round(call.plan.hold_s))
            self._set_status(op, "on_call", at)
            self.metrics.connected += 1
            if self.handled is not None and call.phone:
                self.handled.append(HandledCall(call.attempt_id, "inbound", call.phone,
                                                call.arrived_at or at, at, op.login))
            talk = timedelta(seconds=call.plan.talk_s + call.plan.hold_s)
            self._schedule(at + talk, "inbound_talk_end", call.attempt_id)

    def _on_inbound_give_up(self, call: InboundCall, at: datetime) -> None:
        if call.operator_id is not None:
            return
        self.inbound_waiting.remove(call.attempt_id)
        del self.inbound[call.attempt_id]
        self.writer.attempt(call.attempt_id, at, state="closed", outcome="abandoned",
                            ended_at=at, closed_at=at)

    def _on_inbound_talk_end(self, call: InboundCall, at: datetime) -> None:
        self.writer.attempt(call.attempt_id, at, state="wrap_up", ended_at=at)
        op = self.operators.get(call.operator_id) if call.operator_id is not None else None
        if op is not None:
            self._set_status(op, "wrap_up", at)
        self._schedule(at + timedelta(seconds=call.plan.wrap_s), "inbound_wrap_end",
                       call.attempt_id)

    def _on_inbound_wrap_end(self, call: InboundCall, at: datetime) -> None:
        self.writer.attempt(call.attempt_id, at, state="closed", outcome="answered",
                            wrap_ended_at=at, closed_at=at)
        del self.inbound[call.attempt_id]
        self._release(call.operator_id, at)

    # ------------------------------------------------------------------ metrics
    def _stats(self, campaign_id: int) -> CampaignStats:
        return self.metrics.stats.setdefault(campaign_id, CampaignStats())

    def _count_idle(self, now: datetime) -> None:
        """Seconds an operator sat free while a reserved callback of theirs was due."""
        for op in self.operators.values():
            if op.attempt_id is None and op.status in ("ready", "waiting_unpause") \
                    and self.hopper.has_due_personal(op.operator_id, now):
                self.metrics.idle_due_callback_seconds += 1


def run_simulation(engine: Engine, start: datetime, seconds: int,
                   on_minute: Callable[[datetime], None] | None = None) -> datetime:
    """Drive the engine through ``seconds`` of simulated time as fast as possible (tests,
    benchmarks); the service drives the same methods from the clock instead."""
    now = start
    for second in range(seconds):
        now = start + timedelta(seconds=second)
        if second % 60 == 0:
            engine.tick(now)
            engine.run_workforce(now)
            if on_minute:
                on_minute(now)
        engine.step(now)
    return now
