"""Reference data of the simulated company: regions, stores, queues, groups, staff, topics.

Built deterministically from a :class:`Scale` (same scale, same rows), loaded idempotently
(``ON CONFLICT DO NOTHING``) so that ``crm run`` can start again on an existing database. The
shape is a retail chain: customers belong to one of ~16,000 stores across Russia's time zones,
with most of the traffic in the west (regional skew).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from dialer_core.crm.settings import CHANNELS


@dataclass(frozen=True)
class Region:
    region_id: int
    code: str
    name: str
    timezone: str
    weight: float  # share of the traffic
    zone: str      # macro zone served by one set of queues


REGIONS: tuple[Region, ...] = (
    Region(1, "MOW", "Moscow", "Europe/Moscow", 0.28, "west"),
    Region(2, "SPE", "Saint Petersburg", "Europe/Moscow", 0.12, "west"),
    Region(3, "KDA", "Krasnodar", "Europe/Moscow", 0.08, "west"),
    Region(4, "NIZ", "Nizhny Novgorod", "Europe/Moscow", 0.06, "west"),
    Region(5, "KZN", "Kazan", "Europe/Moscow", 0.06, "west"),
    Region(6, "SAM", "Samara", "Europe/Samara", 0.05, "west"),
    Region(7, "EKB", "Yekaterinburg", "Asia/Yekaterinburg", 0.08, "siberia"),
    Region(8, "NSK", "Novosibirsk", "Asia/Novosibirsk", 0.07, "siberia"),
    Region(9, "OMS", "Omsk", "Asia/Omsk", 0.04, "siberia"),
    Region(10, "KJA", "Krasnoyarsk", "Asia/Krasnoyarsk", 0.05, "siberia"),
    Region(11, "IRK", "Irkutsk", "Asia/Irkutsk", 0.04, "siberia"),
    Region(12, "VVO", "Vladivostok", "Asia/Vladivostok", 0.04, "far_east"),
    Region(13, "KHV", "Khabarovsk", "Asia/Vladivostok", 0.03, "far_east"),
)
ZONES = ("west", "siberia", "far_east")
CHANNEL_GROUP = {"call": "voice", "chat": "chat", "web": "chat", "email": "email",
                 "whatsapp": "messengers", "telegram": "messengers", "viber": "messengers"}
CHANNEL_GROUPS = ("voice", "chat", "email", "messengers")
GROUPS = ("general_support", "billing", "refunds", "delivery", "warranty", "tech_support",
          "store_quality", "loyalty", "returns", "complaints", "accounts", "logistics")
# fixed-date public holidays (month, day): New Year week, Defender's Day, Women's Day,
# Labour Day, Victory Day, Russia Day, Unity Day
HOLIDAYS = ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (2, 23), (3, 8),
            (5, 1), (5, 9), (6, 12), (11, 4))
HOLIDAY_YEARS = range(2024, 2031)
DEFAULT_CALENDAR_ID = 100
CALL_QUEUE_ID = 100  # "calls": where dialer calls land (CrmSettings.call_queue_code)


@dataclass(frozen=True)
class Scale:
    stores: int = 16_000
    operators: int = 500
    supervisors: int = 100
    engineers_per_group: int = 20
    topics: int = 80
    territories_per_region: int = 4
    seed: int = 1


@dataclass
class Reference:
    """The rows to load, plus the lookups the workload needs."""

    scale: Scale
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    stores_by_region: dict[int, list[int]] = field(default_factory=dict)
    store_region: dict[int, int] = field(default_factory=dict)
    topic_ids: list[int] = field(default_factory=list)
    topic_weights: list[float] = field(default_factory=list)
    engineers_by_group: dict[int, list[int]] = field(default_factory=dict)
    operators_by_queue: dict[int, list[int]] = field(default_factory=dict)
    queue_id: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, zone) -> id


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` by ``weights`` exactly (largest remainder)."""
    raw = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build(scale: Scale = Scale()) -> Reference:  # noqa: B008 - Scale is immutable
    rng = random.Random(f"crm-reference:{scale.seed}")
    ref = Reference(scale)
    t = ref.tables
    t["business_calendars"] = [(r.region_id, f"cal_{r.code.lower()}", r.timezone)
                               for r in REGIONS]
    t["business_calendars"].append((DEFAULT_CALENDAR_ID, "default", "Europe/Moscow"))
    t["calendar_holidays"] = [(cal[0], date(y, m, d)) for cal in t["business_calendars"]
                              for y in HOLIDAY_YEARS for m, d in HOLIDAYS]
    t["regions"] = [(r.region_id, r.code, r.name, r.timezone, r.region_id) for r in REGIONS]
    t["territories"] = []
    territories: dict[int, list[int]] = {}
    for r in REGIONS:
        for k in range(1, scale.territories_per_region + 1):
            tid = r.region_id * 100 + k
            territories.setdefault(r.region_id, []).append(tid)
            t["territories"].append((tid, r.region_id, f"{r.code}-{k}", f"{r.name} {k}"))
    t["stores"] = []
    store_id = 0
    for r, count in zip(REGIONS, _apportion(scale.stores, [r.weight for r in REGIONS]),
                        strict=True):
        for k in range(count):
            store_id += 1
            terr = territories[r.region_id][k % len(territories[r.region_id])]
            t["stores"].append((store_id, terr, f"S{store_id:05d}", f"{r.name} store {k + 1}"))
            ref.stores_by_region.setdefault(r.region_id, []).append(store_id)
            ref.store_region[store_id] = r.region_id
    t["queues"] = []
    for gi, group in enumerate(CHANNEL_GROUPS):
        for zi, zone in enumerate(ZONES):
            qid = gi * len(ZONES) + zi + 1
            ref.queue_id[(group, zone)] = qid
            t["queues"].append((qid, f"{group}_{zone}", f"{group.title()} {zone}"))
    t["queues"].append((CALL_QUEUE_ID, "calls", "Dialer calls"))
    t["specialist_groups"] = [(i + 1, g, g.replace("_", " ").title())
                              for i, g in enumerate(GROUPS)]
    _staff(ref, rng)
    _topics(ref, rng)
    t["sla_policies"] = [("task", 480, 60), ("claim", 1620, 180)]
    return ref


def _staff(ref: Reference, rng: random.Random) -> None:
    scale, rows = ref.scale, []
    queue_ids = sorted(ref.queue_id.values())
    for i in range(1, scale.operators + 1):
        queue = queue_ids[(i - 1) % len(queue_ids)]
        region = rng.choice(REGIONS).region_id
        rows.append((i, f"op{i:04d}", f"Operator {i}", "operator", None, queue, region))
        ref.operators_by_queue.setdefault(queue, []).append(i)
    base = scale.operators
    for i in range(1, scale.supervisors + 1):
        queue = queue_ids[(i - 1) % len(queue_ids)]
        rows.append((base + i, f"sup{i:04d}", f"Supervisor {i}", "supervisor", None, queue,
                     rng.choice(REGIONS).region_id))
    base += scale.supervisors
    for g in range(1, len(GROUPS) + 1):
        for k in range(scale.engineers_per_group):
            eid = base + (g - 1) * scale.engineers_per_group + k + 1
            rows.append((eid, f"eng{eid:05d}", f"Engineer {eid}", "engineer", g, None,
                         rng.choice(REGIONS).region_id))
            ref.engineers_by_group.setdefault(g, []).append(eid)
    ref.tables["employees"] = rows


def _topics(ref: Reference, rng: random.Random) -> None:
    """One parent topic per group (routed there) and children under them; Zipf weights over
    a shuffled order give the long tail (a few topics carry most appeals)."""
    rows: list[tuple[Any, ...]] = []
    routes: list[tuple[Any, ...]] = []
    for gi, group in enumerate(GROUPS, start=1):
        code = "general" if group == "general_support" else group
        rows.append((gi, code, code.replace("_", " ").title(), None))
        routes.append((gi, gi, None, gi))
    for tid in range(len(GROUPS) + 1, ref.scale.topics + 1):
        parent = rng.randint(1, len(GROUPS))
        rows.append((tid, f"{rows[parent - 1][1]}_{tid}", f"{rows[parent - 1][2]} #{tid}",
                     parent))
    # regional override: Far East deliveries go to logistics
    logistics = GROUPS.index("logistics") + 1
    delivery = GROUPS.index("delivery") + 1
    for r in REGIONS:
        if r.zone == "far_east":
            routes.append((len(routes) + 1, delivery, r.region_id, logistics))
    ref.tables["topics"] = rows
    ref.tables["topic_routes"] = routes
    order = [row[0] for row in rows]
    rng.shuffle(order)
    ref.topic_ids = order
    ref.topic_weights = [1 / (rank ** 1.1) for rank in range(1, len(order) + 1)]


_INSERTS = {
    "business_calendars": "INSERT INTO business_calendars (calendar_id, code, timezone) "
                          "VALUES (%s, %s, %s)",
    "calendar_holidays": "INSERT INTO calendar_holidays (calendar_id, holiday) VALUES (%s, %s)",
    "regions": "INSERT INTO regions (region_id, code, name, timezone, calendar_id) "
               "VALUES (%s, %s, %s, %s, %s)",
    "territories": "INSERT INTO territories (territory_id, region_id, code, name) "
                   "VALUES (%s, %s, %s, %s)",
    "stores": "INSERT INTO stores (store_id, territory_id, code, name) VALUES (%s, %s, %s, %s)",
    "queues": "INSERT INTO queues (queue_id, code, name) VALUES (%s, %s, %s)",
    "specialist_groups": "INSERT INTO specialist_groups (group_id, code, name) "
                         "VALUES (%s, %s, %s)",
    "employees": "INSERT INTO employees (employee_id, login, full_name, role, group_id, "
                 "queue_id, region_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
    "topics": "INSERT INTO topics (topic_id, code, name, parent_topic_id) "
              "VALUES (%s, %s, %s, %s)",
    "topic_routes": "INSERT INTO topic_routes (route_id, topic_id, region_id, group_id) "
                    "VALUES (%s, %s, %s, %s)",
    "sla_policies": "INSERT INTO sla_policies (ticket_type, resolve_minutes, "
                    "remind_before_minutes) VALUES (%s, %s, %s)",
}


def load(conn: psycopg.Connection[Any], ref: Reference) -> None:
    """Insert the reference rows that are missing (in dependency order, one transaction)."""
    with conn.transaction(), conn.cursor() as cur:
        for table, sql in _INSERTS.items():
            cur.executemany(sql + " ON CONFLICT DO NOTHING", ref.tables[table])


def contact_address(channel: str, customer_no: int) -> str:
    """The simulated customer's address on a channel (phone channels use the phone)."""
    return {
        "email": f"c{customer_no}@mail.example",
        "telegram": f"@c{customer_no}",
        "chat": f"chat-{customer_no}",
        "web": f"web-{customer_no}",
    }.get(channel, customer_phone(customer_no))


def customer_phone(customer_no: int) -> str:
    return f"+79{customer_no:09d}"


assert set(CHANNEL_GROUP) == set(CHANNELS)
