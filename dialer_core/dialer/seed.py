"""The demo load (and benchmark loads): campaigns, rules, routes, operators, leads by COPY.

Leads are streamed with ``COPY`` (a million rows in seconds, no per-row round trip); callbacks
for a share of them are created set-based, with the same result as :func:`create_callback` per
lead (personal bucket, ``next_call_at`` = agreed time, marked as a callback-machinery move).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from dialer_core.dialer.buckets import allow_callback_move, common_bucket, personal_bucket

#: regions of a Russian-speaking contact centre's customers, with their weight
ZONES = [("Europe/Moscow", 50), ("Europe/Samara", 6), ("Asia/Yekaterinburg", 12),
         ("Asia/Novosibirsk", 10), ("Asia/Krasnoyarsk", 6), ("Asia/Vladivostok", 6),
         ("Europe/Kaliningrad", 4), ("Asia/Almaty", 3), ("Europe/Berlin", 3)]
REGION_PREFIX = {"Europe/Moscow": "+7495", "Asia/Novosibirsk": "+7383",
                 "Asia/Yekaterinburg": "+7343", "Asia/Vladivostok": "+7423"}

DEFAULT_RULES = [  # (priority, outcome, action, retry_after)
    (10, "answered", "close", "0"),
    (20, "busy", "retry", "15 minutes"),
    (30, "abandoned", "retry", "10 minutes"),
    (40, "failed", "retry", "30 minutes"),
    (50, "no_answer", "retry", "2 hours"),
    (60, "machine", "retry", "4 hours"),
    (99, "*", "retry", "1 hour"),
]


@dataclass
class CampaignSpec:
    name: str
    strategy: str
    leads: int
    due_share: float = 0.02      # share of leads due now; the rest spread over the next week
    window: tuple[str, str] = ("09:00", "21:00")


@dataclass
class SeedSpec:
    operators: int = 200
    campaigns: list[CampaignSpec] = field(default_factory=lambda: [
        CampaignSpec("Retention", "predictive", 500_000),
        CampaignSpec("Sales", "predictive", 300_000),
        CampaignSpec("Loyalty callbacks", "progressive", 200_000),
    ])
    callback_share: float = 0.001
    seed: int = 1


def demo_spec(operators: int = 200, campaigns: int = 3, leads: int = 1_000_000,
              seed: int = 1) -> SeedSpec:
    """The default demo load, scaled: leads split 50/30/20 over the first three campaigns."""
    shares = [0.5, 0.3, 0.2] if campaigns == 3 else [1 / campaigns] * campaigns
    strategies = ["predictive", "predictive", "progressive", "preview", "personal"]
    specs = [CampaignSpec(f"Campaign {i + 1}", strategies[i % len(strategies)],
                          int(leads * shares[i])) for i in range(campaigns)]
    return SeedSpec(operators, specs, seed=seed)


def seed(conn: psycopg.Connection, spec: SeedSpec, now: datetime,
         log: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Create the load; returns row counts. Runs on an empty dialer schema."""
    rng = random.Random(spec.seed)
    calendar = _calendar(conn, now)
    campaign_ids = []
    for c in spec.campaigns:
        row = conn.execute(
            "INSERT INTO campaigns (name, strategy, window_start, window_end, calendar_id,"
            " status_changed_at, caller_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING campaign_id",
            (c.name, c.strategy, c.window[0], c.window[1], calendar, now,
             f"+7800{rng.randint(1000000, 9999999)}")).fetchone()
        assert row is not None
        cid = int(row[0])
        campaign_ids.append(cid)
        conn.execute("INSERT INTO queues (name, campaign_id) VALUES (%s, %s)",
                     (f"{c.name} queue", cid))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO scheduler_rules (campaign_id, priority, outcome, action,"
                " retry_after) VALUES (%s, %s, %s, %s, %s)",
                [(cid, *rule) for rule in DEFAULT_RULES])
            cur.executemany(
                "INSERT INTO caller_id_routes (kind, campaign_id, phone_prefix, caller_id)"
                " VALUES ('regional', %s, %s, %s)",
                [(cid, prefix, prefix + "0000000") for prefix in REGION_PREFIX.values()])
    conn.execute("INSERT INTO queues (name, direction) VALUES ('inbound', 'inbound')")
    _operators(conn, spec, campaign_ids, rng)
    total = 0
    for c, cid in zip(spec.campaigns, campaign_ids, strict=True):
        _copy_leads(conn, cid, c, now, rng)
        total += c.leads
        log(f"seeded {c.leads} leads into {c.name}")
    callbacks = _callbacks(conn, spec, now)
    conn.execute("ANALYZE")
    return {"campaigns": len(campaign_ids), "operators": spec.operators, "leads": total,
            "callbacks": callbacks}


def _calendar(conn: psycopg.Connection, now: datetime) -> int:
    row = conn.execute("INSERT INTO calendars (name) VALUES ('Public holidays')"
                       " RETURNING calendar_id").fetchone()
    assert row is not None
    year = now.year
    conn.execute(
        "INSERT INTO holidays (calendar_id, day, name) SELECT %s, d::date, 'New Year'"
        " FROM generate_series(make_date(%s, 1, 1), make_date(%s, 1, 8), '1 day') d"
        " ON CONFLICT DO NOTHING", (row[0], year + 1, year + 1))
    return int(row[0])


def _operators(conn: psycopg.Connection, spec: SeedSpec, campaign_ids: list[int],
               rng: random.Random) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO operators (login, name) VALUES (%s, %s)",
                        [(f"op{i:04d}", f"Operator {i}") for i in range(1, spec.operators + 1)])
    ids = [r[0] for r in conn.execute("SELECT operator_id FROM operators ORDER BY operator_id")]
    members = []
    for i, op in enumerate(ids):
        home = campaign_ids[i % len(campaign_ids)]
        members.append((home, op))
        if rng.random() < 0.3 and len(campaign_ids) > 1:
            members.append((rng.choice([c for c in campaign_ids if c != home]), op))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO queue_members (queue_id, operator_id)"
                        " SELECT queue_id, %s FROM queues WHERE campaign_id = %s",
                        [(op, cid) for cid, op in members])


def _copy_leads(conn: psycopg.Connection, campaign_id: int, spec: CampaignSpec,
                now: datetime, rng: random.Random) -> None:
    bucket = common_bucket(conn, campaign_id)
    zones = [z for z, _ in ZONES]
    weights = [w for _, w in ZONES]
    week = 7 * 24 * 3600
    with conn.cursor() as cur, cur.copy(
            "COPY leads (campaign_id, bucket_id, phone, timezone, next_call_at, created_at,"
            " updated_at) FROM STDIN") as copy:
        for zone in rng.choices(zones, weights, k=spec.leads):
            if rng.random() < spec.due_share:
                at = now - timedelta(seconds=rng.randint(1, 86_400))
            else:
                at = now + timedelta(seconds=rng.randint(60, week))
            phone = REGION_PREFIX.get(zone, "+79") + str(rng.randint(10**6, 10**7 - 1))
            copy.write_row((campaign_id, bucket, phone, zone, at, now, now))


def _callbacks(conn: psycopg.Connection, spec: SeedSpec, now: datetime) -> int:
    """Callbacks for a share of leads, each to an operator of the lead's campaign, agreed
    within the next eight hours."""
    with conn.transaction():
        for cid, op in conn.execute(
                "SELECT DISTINCT q.campaign_id, qm.operator_id FROM queue_members qm"
                " JOIN queues q USING (queue_id) WHERE q.campaign_id IS NOT NULL").fetchall():
            personal_bucket(conn, cid, op)
        allow_callback_move(conn)
        conn.execute("SELECT setseed(%s)", (spec.seed / 1000,))
        rows = conn.execute(
            """
            WITH chosen AS (
                SELECT l.lead_id, l.campaign_id,
                       %(now)s::timestamptz + random() * interval '8 hours' AS agreed,
                       (SELECT qm.operator_id FROM queue_members qm JOIN queues q
                               USING (queue_id)
                         WHERE q.campaign_id = l.campaign_id
                         ORDER BY md5(qm.operator_id::text || l.lead_id::text) LIMIT 1) AS op
                  FROM leads l TABLESAMPLE BERNOULLI (%(pct)s) REPEATABLE (%(seed)s)),
            made AS (
                INSERT INTO callbacks (lead_id, campaign_id, operator_id, assigned_operator_id,
                                       agreed_at, next_call_at, created_at, updated_at)
                SELECT lead_id, campaign_id, op, op, agreed, agreed, %(now)s, %(now)s
                  FROM chosen WHERE op IS NOT NULL
                RETURNING lead_id, campaign_id, assigned_operator_id, next_call_at)
            UPDATE leads l SET bucket_id = b.bucket_id, next_call_at = made.next_call_at
              FROM made JOIN buckets b ON b.campaign_id = made.campaign_id
                   AND b.operator_id = made.assigned_operator_id AND b.kind = 'personal'
             WHERE l.lead_id = made.lead_id
            RETURNING l.lead_id""",
            {"now": now, "pct": spec.callback_share * 100, "seed": spec.seed}).fetchall()
    return len(rows)
