"""``contour parity``: recompute a day of KPIs from the source databases and compare them with
the marts.

An independent check of the whole pipeline (CDC → broker → ClickHouse → staging → dbt): each
KPI below is computed again straight from the dialer's and the CRM's own tables, in plain SQL
written from the KPI definitions (DESIGN.md, "KPIs"; the thresholds are read from the dbt
project's vars), without dbt, staging or ClickHouse. Every row of the day's mart
(``marts.kpi_*_daily``) must equal the source's row with the same key, measure by measure;
a row on one side only, or any measure that differs, is a difference, printed with its key
and both values.

The sources move while the pipeline works, so a comparison is exact only once the marts have
caught up with the source state being compared: run it when the load has stopped (or for a day
whose rows no longer change), or with ``--wait`` to compare again until the marts catch up.

Not compared: state-in-time KPIs (hopper depth, open backlog, rolling abandonment), which are
measured at a moment, not recomputable for a past one from the current source state.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import yaml

from contour.config import PROJECT_ROOT, Config
from contour.errors import ConfigError

#: numbers closer than this are equal (sums of fractional seconds, percentiles)
ABS_TOLERANCE = 1e-6
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Kpi:
    """One daily KPI table: its mart, its key, its measures and how the source computes them.

    ``source_sql`` returns the key columns then the measure columns, for the UTC day
    [%(start)s, %(end)s); thresholds are named parameters too."""

    name: str
    mart: str
    database: str
    keys: tuple[str, ...]
    measures: tuple[str, ...]
    source_sql: str


def _ratio(n: str, d: str) -> str:
    """n / d rounded to 6 places; null when d is 0 (a rate of nothing is unknown)."""
    return f"CASE WHEN ({d}) > 0 THEN round(({n})::numeric / ({d}), 6) END"


def _seconds(a: str, b: str) -> str:
    return f"extract(epoch FROM ({b}) - ({a}))"


CALLS = Kpi(
    name="calls", mart="kpi_calls_daily", database="dialer",
    keys=("direction", "campaign_id", "queue_id"),
    measures=("attempts", "outbound_attempts", "leads_dialed", "contacts", "offered", "answered",
              "abandoned", "short_abandoned", "answered_within_sl", "total_wait_seconds",
              "handled", "talk_seconds", "hold_seconds", "wrap_seconds", "abandon_rate",
              "service_level", "asa_seconds", "aht_seconds", "contact_rate",
              "attempts_per_lead"),
    # offered: outbound once a person answered, inbound once the call reached the queue;
    # answered: an operator took it; abandoned: offered, never connected, outcome abandoned;
    # wait: offered -> connected, or offered -> hang-up for an abandon
    source_sql=f"""
WITH calls AS (
    SELECT c.*, CASE c.direction WHEN 'outbound' THEN c.answered_at ELSE c.queued_at END
                    AS offer_at
    FROM call_attempts c
    WHERE c.originated_at >= %(start)s AND c.originated_at < %(end)s
), timed AS (
    SELECT calls.*,
           offer_at IS NOT NULL AND connected_at IS NOT NULL AS took,
           offer_at IS NOT NULL AND connected_at IS NULL AND outcome = 'abandoned' AS gave_up,
           CASE WHEN offer_at IS NULL THEN NULL
                WHEN connected_at IS NOT NULL THEN {_seconds('offer_at', 'connected_at')}
                WHEN outcome = 'abandoned' THEN {_seconds('offer_at', 'ended_at')} END AS waited,
           connected_at IS NOT NULL AND wrap_ended_at IS NOT NULL AS done,
           CASE WHEN connected_at IS NOT NULL AND ended_at IS NOT NULL
                THEN greatest({_seconds('connected_at', 'ended_at')} - hold_seconds, 0)
                ELSE 0 END AS talk,
           CASE WHEN connected_at IS NOT NULL AND wrap_ended_at IS NOT NULL
                THEN {_seconds('ended_at', 'wrap_ended_at')} ELSE 0 END AS wrap
    FROM calls
), summed AS (
    SELECT direction, campaign_id, queue_id,
           count(*) AS attempts,
           count(*) FILTER (WHERE direction = 'outbound') AS outbound_attempts,
           count(DISTINCT lead_id) FILTER (WHERE direction = 'outbound') AS leads_dialed,
           count(*) FILTER (WHERE direction = 'outbound' AND answered_at IS NOT NULL)
               AS contacts,
           count(offer_at) AS offered,
           count(*) FILTER (WHERE took) AS answered,
           count(*) FILTER (WHERE gave_up) AS abandoned,
           count(*) FILTER (WHERE gave_up AND waited < %(short_abandon_seconds)s)
               AS short_abandoned,
           count(*) FILTER (WHERE took AND waited <= %(service_level_seconds)s)
               AS answered_within_sl,
           coalesce(sum(waited) FILTER (WHERE took), 0) AS total_wait_seconds,
           count(*) FILTER (WHERE done) AS handled,
           coalesce(sum(talk) FILTER (WHERE done), 0) AS talk_seconds,
           coalesce(sum(hold_seconds) FILTER (WHERE done), 0) AS hold_seconds,
           coalesce(sum(wrap) FILTER (WHERE done), 0) AS wrap_seconds
    FROM timed
    GROUP BY direction, campaign_id, queue_id
)
SELECT direction, campaign_id, queue_id, attempts, outbound_attempts, leads_dialed, contacts,
       offered, answered, abandoned, short_abandoned, answered_within_sl, total_wait_seconds,
       handled, talk_seconds, hold_seconds, wrap_seconds,
       {_ratio('abandoned', 'offered')}, {_ratio('answered_within_sl', 'offered')},
       {_ratio('total_wait_seconds', 'answered')},
       {_ratio('talk_seconds + hold_seconds + wrap_seconds', 'handled')},
       {_ratio('contacts', 'outbound_attempts')}, {_ratio('outbound_attempts', 'leads_dialed')}
FROM summed
""")

APPEALS = Kpi(
    name="appeals", mart="kpi_appeals_daily", database="crm",
    keys=("channel", "topic_id", "queue_id", "region_id"),
    measures=("appeals", "new_cases", "linked_duplicates", "cross_channel_duplicates",
              "repeat_contacts", "reopened", "first_responded", "avg_first_response_seconds",
              "first_response_p50_seconds", "resolved", "resolution_p50_seconds",
              "resolution_p90_seconds", "still_open"),
    # repeat contact: the same customer's previous appeal (any topic or channel) opened within
    # repeat_contact_days before; linked duplicate: status linked (joined to the case's first
    # appeal), cross-channel when that first appeal came on another channel
    source_sql=f"""
WITH recent AS (
    SELECT a.*, lag(a.opened_at) OVER (PARTITION BY a.customer_id
                                       ORDER BY a.opened_at, a.appeal_id) AS before_at
    FROM appeals a
    WHERE a.opened_at >= %(start)s - make_interval(days => %(repeat_contact_days)s)
      AND a.opened_at < %(end)s
), day AS (
    SELECT r.*,
           r.status = 'linked' AND (SELECT f.channel FROM appeals f
                                    WHERE f.appeal_id = r.linked_appeal_id)
               IS DISTINCT FROM r.channel AS cross_channel,
           r.before_at >= r.opened_at - make_interval(days => %(repeat_contact_days)s)
               AS repeat_contact,
           {_seconds('r.opened_at', 'r.first_response_at')} AS response_s,
           {_seconds('r.opened_at', 'r.resolved_at')} AS resolution_s
    FROM recent r
    WHERE r.opened_at >= %(start)s
)
SELECT channel, topic_id, queue_id, region_id,
       count(*),
       count(*) FILTER (WHERE status <> 'linked'),
       count(*) FILTER (WHERE status = 'linked'),
       count(*) FILTER (WHERE cross_channel),
       count(*) FILTER (WHERE repeat_contact),
       count(*) FILTER (WHERE reopened_count > 0),
       count(first_response_at),
       round(avg(response_s), 3),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_s),
       count(resolved_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_s),
       count(*) FILTER (WHERE status IN ('open', 'in_progress'))
FROM day
GROUP BY channel, topic_id, queue_id, region_id
""")

#: the newest operator status change: open intervals (and due callbacks never dialed) are
#: measured up to it, not to the wall clock
_DIALER_DATA_TIME = ("(SELECT greatest(max(started_at), max(ended_at)) "
                     "FROM operator_status_log)")

OPERATOR_STATES = Kpi(
    name="operator_states", mart="kpi_operator_states_daily", database="dialer",
    keys=("operator_id",),
    measures=("ready_seconds", "talk_seconds", "wrap_seconds", "paused_seconds",
              "waiting_unpause_seconds", "logged_in_seconds", "occupancy"),
    # time per state inside the day; occupancy = (talk + wrap) / (ready + talk + wrap)
    source_sql=f"""
WITH spans AS (
    SELECT operator_id, status,
           greatest(started_at, %(start)s) AS from_at,
           least(greatest(coalesce(ended_at, {_DIALER_DATA_TIME}), started_at), %(end)s)
               AS to_at
    FROM operator_status_log
    WHERE status <> 'offline' AND started_at < %(end)s
), cut AS (
    SELECT operator_id, status, {_seconds('from_at', 'to_at')} AS s
    FROM spans WHERE to_at > from_at
), summed AS (
    SELECT operator_id,
           coalesce(sum(s) FILTER (WHERE status = 'ready'), 0) AS ready,
           coalesce(sum(s) FILTER (WHERE status = 'on_call'), 0) AS talk,
           coalesce(sum(s) FILTER (WHERE status = 'wrap_up'), 0) AS wrap,
           coalesce(sum(s) FILTER (WHERE status = 'paused'), 0) AS paused,
           coalesce(sum(s) FILTER (WHERE status = 'waiting_unpause'), 0) AS waiting,
           sum(s) AS logged_in
    FROM cut GROUP BY operator_id
)
SELECT operator_id, ready, talk, wrap, paused, waiting, logged_in,
       {_ratio('talk + wrap', 'ready + talk + wrap')}
FROM summed
""")

CALLBACKS = Kpi(
    name="callbacks", mart="kpi_callbacks_daily", database="dialer",
    keys=("campaign_id", "assigned_operator_id"),
    measures=("due", "kept_on_time", "late", "missed", "cancelled", "open", "reassigned",
              "kept_on_time_rate", "idle_with_due_seconds"),
    # by due time (next_call_at); idle: seconds the assigned operator was ready or waiting for
    # unpause while the callback was due and not dialed yet (from next_call_at to its first
    # dial; never dialed: to its end, or, still open, to the data time)
    source_sql=f"""
WITH day AS (
    SELECT cb.*,
           greatest(cb.next_call_at, coalesce(
               (SELECT min(a.originated_at) FROM call_attempts a
                WHERE a.callback_id = cb.callback_id),
               CASE WHEN cb.status IN ('kept', 'late', 'missed', 'cancelled')
                    THEN cb.updated_at END,
               {_DIALER_DATA_TIME})) AS due_until
    FROM callbacks cb
    WHERE cb.next_call_at >= %(start)s AND cb.next_call_at < %(end)s
), idle AS (
    SELECT d.callback_id,
           sum(greatest({_seconds(
               'greatest(l.started_at, d.next_call_at)',
               f'least(greatest(coalesce(l.ended_at, {_DIALER_DATA_TIME}), l.started_at), '
               'd.due_until)')}, 0)) AS s
    FROM day d
    JOIN operator_status_log l
      ON l.operator_id = d.assigned_operator_id
     AND l.status IN ('ready', 'waiting_unpause')
     AND l.started_at < d.due_until
     AND greatest(coalesce(l.ended_at, {_DIALER_DATA_TIME}), l.started_at) > d.next_call_at
    GROUP BY d.callback_id
), summed AS (
    SELECT d.campaign_id, d.assigned_operator_id,
           count(*) FILTER (WHERE d.status <> 'cancelled') AS due,
           count(*) FILTER (WHERE d.status = 'kept') AS kept,
           count(*) FILTER (WHERE d.status = 'late') AS late,
           count(*) FILTER (WHERE d.status = 'missed') AS missed,
           count(*) FILTER (WHERE d.status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE d.status IN ('pending', 'dialing')) AS open,
           count(d.reassigned_at) AS reassigned,
           coalesce(sum(i.s), 0) AS idle_s
    FROM day d LEFT JOIN idle i ON i.callback_id = d.callback_id
    GROUP BY d.campaign_id, d.assigned_operator_id
)
SELECT campaign_id, assigned_operator_id, due, kept, late, missed, cancelled, open, reassigned,
       {_ratio('kept', 'due')}, idle_s
FROM summed
""")

TICKETS = Kpi(
    name="tickets", mart="kpi_tickets_daily", database="crm",
    keys=("group_id", "ticket_type", "region_id", "topic_id"),
    measures=("tickets", "complaints", "resolved", "sla_breached", "reassignments",
              "reassigned_tickets", "reopened", "resolution_p50_seconds",
              "resolution_p90_seconds"),
    # by creation day; breached: resolved after the SLA due time, or unresolved past it at
    # the data time (the newest ticket change); a reassignment: an assignment that replaced
    # a group or an assignee; complaints are claims
    source_sql=f"""
WITH now_at AS (
    SELECT greatest((SELECT max(updated_at) FROM tickets),
                    (SELECT max(at) FROM ticket_history)) AS at
), day AS (
    SELECT t.*,
           (SELECT count(*) FROM ticket_history h
            WHERE h.ticket_id = t.ticket_id AND h.event = 'assigned'
              AND (h.from_group_id IS NOT NULL OR h.from_assignee_id IS NOT NULL)) AS moves,
           coalesce(t.resolved_at, (SELECT at FROM now_at)) > t.sla_due_at AS breached,
           {_seconds('t.created_at', 't.resolved_at')} AS resolution_s
    FROM tickets t
    WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
)
SELECT group_id, ticket_type, region_id, topic_id,
       count(*),
       count(*) FILTER (WHERE ticket_type = 'claim'),
       count(resolved_at),
       count(*) FILTER (WHERE breached),
       coalesce(sum(moves), 0),
       count(*) FILTER (WHERE moves > 0),
       count(*) FILTER (WHERE reopened_count > 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_s)
FROM day
GROUP BY group_id, ticket_type, region_id, topic_id
""")

ICP = Kpi(
    name="icp", mart="kpi_icp_daily", database="dialer",
    keys=(),
    measures=("sessions", "requests", "fallback_sessions", "fallback_rate", "errors",
              "latency_p50_ms", "latency_p95_ms"),
    # a step is a request when the endpoint was asked (an HTTP status or a latency);
    # sessions are the inbound calls with steps, fallback ones ran the fallback scenario
    source_sql=f"""
WITH day AS (
    SELECT *, http_status IS NOT NULL OR latency_ms IS NOT NULL AS asked
    FROM icp_steps WHERE requested_at >= %(start)s AND requested_at < %(end)s
), summed AS (
    SELECT count(DISTINCT attempt_id) AS sessions,
           count(*) FILTER (WHERE asked) AS requests,
           count(DISTINCT attempt_id) FILTER (WHERE fallback) AS fallback_sessions,
           count(error) AS errors,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)
               FILTER (WHERE asked AND latency_ms IS NOT NULL) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
               FILTER (WHERE asked AND latency_ms IS NOT NULL) AS p95,
           count(*) AS steps
    FROM day
)
SELECT sessions, requests, fallback_sessions, {_ratio('fallback_sessions', 'sessions')},
       errors, p50, p95
FROM summed WHERE steps > 0
""")

KPIS = (CALLS, APPEALS, OPERATOR_STATES, CALLBACKS, TICKETS, ICP)


@dataclass(frozen=True)
class Difference:
    kpi: str
    day: str
    key: dict[str, Any]
    measure: str  # "(row)" when the row is on one side only
    source: Any
    mart: Any


@dataclass
class DayResult:
    kpi: str
    day: str
    rows: int  # keys on either side
    differences: list[Difference]


def thresholds(project: Any = None) -> dict[str, Any]:
    """The KPI thresholds the dbt project is configured with (its vars)."""
    path = project or PROJECT_ROOT / "dbt_project" / "dbt_project.yml"
    names = ("service_level_seconds", "short_abandon_seconds", "repeat_contact_days")
    with open(path, encoding="utf-8") as handle:
        variables = (yaml.safe_load(handle) or {}).get("vars", {})
    missing = [n for n in names if n not in variables]
    if missing:
        raise ConfigError(f"{path}: vars {', '.join(missing)} are not set; they define the KPIs "
                          f"this check recomputes")
    return {n: variables[n] for n in names}


def same(a: Any, b: Any) -> bool:
    """Equal values; numbers within the tolerance (fractional-second sums, percentiles)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return math.isclose(float(a), float(b), rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return bool(a == b)


def compare(kpi: Kpi, day: date, source: Iterable[Sequence[Any]],
            mart: Iterable[Sequence[Any]]) -> DayResult:
    """Rows (key columns then measures) of the source and of the mart, matched by key."""
    width = len(kpi.keys)

    def by_key(rows: Iterable[Sequence[Any]], side: str) -> dict[tuple[Any, ...], Sequence[Any]]:
        keyed: dict[tuple[Any, ...], Sequence[Any]] = {}
        for row in rows:
            key = tuple(row[:width])
            if key in keyed:
                raise AssertionError(f"{kpi.name}: two {side} rows for key {key}")
            keyed[key] = row[width:]
        return keyed

    ours, theirs = by_key(source, "source"), by_key(mart, kpi.mart)
    differences = []
    for key in sorted(set(ours) | set(theirs), key=lambda k: tuple(map(str, k))):
        named = dict(zip(kpi.keys, key, strict=True))
        if key not in theirs or key not in ours:
            differences.append(Difference(kpi.name, day.isoformat(), named, "(row)",
                                          "present" if key in ours else "absent",
                                          "present" if key in theirs else "absent"))
            continue
        for measure, a, b in zip(kpi.measures, ours[key], theirs[key], strict=True):
            if not same(a, b):
                differences.append(Difference(kpi.name, day.isoformat(), named, measure,
                                              _plain(a), _plain(b)))
    return DayResult(kpi.name, day.isoformat(), len(set(ours) | set(theirs)), differences)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Checker:
    def __init__(self, config: Config, kpis: Sequence[Kpi] = KPIS) -> None:
        self.config = config
        self.kpis = kpis
        self.params = thresholds()

    def newest_days(self, count: int) -> list[date]:
        """The newest UTC days holding a call attempt or an appeal, newest first."""
        found: set[date] = set()
        for database, table, column in (("dialer", "call_attempts", "originated_at"),
                                        ("crm", "appeals", "opened_at")):
            with self._connect(database) as conn:
                found |= {r[0] for r in conn.execute(
                    f"SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM {table} "
                    f"ORDER BY 1 DESC LIMIT %s", (count,))}
        return sorted(found, reverse=True)[:count]

    def check(self, days: Sequence[date]) -> list[DayResult]:
        results = []
        with self._connect("warehouse") as warehouse:
            missing = [k.mart for k in self.kpis if warehouse.execute(
                "SELECT to_regclass(%s)", (f"marts.{k.mart}",)).fetchone()[0] is None]
            if missing:
                raise ConfigError(f"the marts {', '.join(missing)} do not exist in the "
                                  f"warehouse yet: build them first (`contour warehouse "
                                  f"refresh`, or let the contour_realtime DAG run)")
            for kpi in self.kpis:
                with self._connect(kpi.database) as source:
                    for day in days:
                        window = self._window(day)
                        ours = source.execute(kpi.source_sql, window).fetchall()
                        columns = ", ".join(f'"{c}"' for c in (*kpi.keys, *kpi.measures))
                        theirs = warehouse.execute(
                            f"SELECT {columns} FROM marts.{kpi.mart} "
                            f"WHERE bucket_start = %(start)s", window).fetchall()
                        results.append(compare(kpi, day, ours, theirs))
        return results

    def _window(self, day: date) -> dict[str, Any]:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return {"start": start, "end": start + timedelta(days=1), **self.params}

    def _connect(self, database: str) -> psycopg.Connection[Any]:
        # one snapshot per connection's transaction: a KPI's source query sees one state
        return psycopg.connect(self.config.pg_dsn(database), connect_timeout=10)


def render(results: Sequence[DayResult], limit: int = 20) -> str:
    lines = [f"{'kpi':<16} {'day':<10} {'rows':>6} {'differences':>11}"]
    for r in results:
        lines.append(f"{r.kpi:<16} {r.day:<10} {r.rows:>6} {len(r.differences):>11}")
    shown = [d for r in results for d in r.differences][:limit]
    if shown:
        lines.append("")
        lines.append("differences (source vs mart):")
        for d in shown:
            key = ", ".join(f"{k}={v}" for k, v in d.key.items()) or "(the day)"
            lines.append(f"  {d.kpi} {d.day} [{key}] {d.measure}: {d.source} vs {d.mart}")
        total = sum(len(r.differences) for r in results)
        if total > len(shown):
            lines.append(f"  ... and {total - len(shown)} more (--json lists every one)")
    return "\n".join(lines)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def cmd_parity(config: Config, args: argparse.Namespace) -> int:
    checker = Checker(config, [k for k in KPIS if not args.kpi or k.name in args.kpi])
    days = args.day or checker.newest_days(args.days)
    if not days:
        print("contour parity: the sources hold no call attempt and no appeal: nothing to "
              "compare", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.wait
    while True:
        results = checker.check(days)
        failing = sum(len(r.differences) for r in results)
        if not failing or time.monotonic() >= deadline:
            break
        print(f"contour parity: {failing} difference(s); the marts may still be catching up, "
              f"comparing again in 10 s ({deadline - time.monotonic():.0f} s left)",
              file=sys.stderr)
        time.sleep(10)
    if args.json:
        print(json.dumps({"days": [d.isoformat() for d in days], "matching": not failing,
                          "results": [{**asdict(r), "differences": [asdict(d) for d in
                                                                   r.differences]}
                                      for r in results]}, indent=2, default=str))
    else:
        print(render(results))
        print(f"\n{'PASSED' if not failing else 'FAILED'}: {len(results)} comparisons of "
              f"{len(days)} day(s), {failing} difference(s)")
    return 0 if not failing else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "parity", help="recompute a day of KPIs from the sources and compare with the marts",
        description="Recompute daily KPIs (calls, appeals, operator states, callbacks, tickets, "
                    "interactive call processing) from the dialer and CRM databases in plain "
                    "SQL, independently of dbt, and compare every row and measure with the "
                    "marts' kpi_*_daily tables. Exit 1 with the differing rows. Exact once the "
                    "marts have caught up with the sources: run it after the load stopped, or "
                    "with --wait.")
    p.add_argument("--day", type=_day, action="append",
                   help="UTC day to compare, YYYY-MM-DD (repeatable; default: the newest days "
                        "with data, see --days)")
    p.add_argument("--days", type=int, default=1,
                   help="without --day: how many of the newest days with data (default 1)")
    p.add_argument("--kpi", action="append", choices=[k.name for k in KPIS],
                   help="only this KPI table (repeatable; default: all)")
    p.add_argument("--wait", type=float, default=0.0,
                   help="seconds to keep comparing while differences remain (default 0)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_parity)
