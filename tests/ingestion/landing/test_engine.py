"""The Kafka-engine landing mode against the loader: the same topics, the same raw tables."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ingestion.landing.engine import QUEUES, EngineLanding
from ingestion.landing.loader import Loader, clickhouse_client
from tests.conftest import wait_for
from tests.ingestion.landing.conftest import Feed, event

pytestmark = pytest.mark.integration

TABLES = ("leads", "calls")
#: every message of the first phase is in the topics before either mode starts
FIRST_VERSIONS = {"leads": 9, "calls": 6}
#: sent while the Kafka engine runs: rows through the views, and a new column mid-stream
SECOND_VERSIONS = {"leads": 3, "calls": 2}
#: sent once the views are switched: through the views only
THIRD_VERSIONS = {"leads": 2}
DEAD = 5
#: a wait after the switches, longer than any block of a Kafka table's consumer (sent right
#: after them, the second phase was in 2 of 7 runs held whole, its known-column rows too)
BLOCK_S = 8.0


def schema_form(value: dict) -> dict:
    """Kafka Connect's schemas.enable form of an event (the loader reads the payload)."""
    return {"schema": {"type": "struct", "optional": False}, "payload": value}


def first_phase(feed: Feed) -> None:
    for table in TABLES:
        feed.create(table, partitions=2)
    row = {"id": 1, "name": "a", "score": 1.5, "vip": True, "tags": ["x", "y"],
           "attrs": {"k": 1}, "note": None, "uni": "é\"q\\", "campaign": None}
    feed.send("leads", {"id": 1}, event("r", 10, after=row), partition=0)
    feed.send("leads", {"id": 2}, event("c", 20, after={**row, "id": 2, "score": 2.0}),
              partition=1)
    # out of order across partitions: the newer version first
    feed.send("leads", {"id": 1}, event("u", 40, after={**row, "name": "c"}), partition=1)
    feed.send("leads", {"id": 1}, event("u", 30, after={**row, "name": "b"}), partition=0)
    feed.send("leads", {"id": 2}, event("d", 50, before={**row, "id": 2}), partition=1)
    feed.send("leads", {"id": 2}, None, partition=1)  # tombstone
    feed.send("leads", {"id": 2}, event("c", 60, after={**row, "id": 2, "name": "back"}),
              partition=1)
    feed.send("leads", {"id": 3}, event("c", 70, after={**row, "id": 3, "vip": False,
                                                        "note": "n"}), partition=0)
    feed.send("leads", {"id": 4}, event("c", 80, after={**row, "id": 4}), partition=0)
    feed.send("leads", None, {**event("t", 85), "before": None}, partition=0)  # truncate
    feed.send("leads", {"id": 4}, event("u", 90, after={**row, "id": 4, "phone": "+1"}),
              partition=0)
    no_ts_us = event("c", 5, after={"id": 7, "state": "new"}, table="calls")
    del no_ts_us["source"]["ts_us"]
    feed.send("calls", {"id": 7}, no_ts_us, partition=0)
    for i, lsn in enumerate((11, 12, 13, 14)):
        feed.send("calls", {"schema": {}, "payload": {"id": i}},
                  schema_form(event("c", lsn, after={"id": i, "state": f"s{i}"}, table="calls")),
                  partition=i % 2)
    feed.send("calls", {"id": 0}, event("u", 15, after={"id": 0, "state": "done"},
                                        table="calls"), partition=0)
    # dead letters, after the good rows that give the columns their types
    feed.send("calls", {"id": 90}, b"not json", partition=0)
    feed.send("calls", {"id": 91}, b'["a list"]', partition=1)
    feed.send("calls", {"id": 92}, json.dumps({"op": "z"}).encode(), partition=1)
    feed.send("calls", {"id": 93}, json.dumps(event("c", 16, after={"id": "text-in-int"},
                                                    table="calls")).encode(), partition=0)
    feed.flush()


def second_phase(feed: Feed) -> None:
    feed.send("leads", {"id": 5}, event("c", 100, after={"id": 5, "name": "late", "score": 0.5,
                                                         "vip": False, "tags": [],
                                                         "attrs": {}, "note": None,
                                                         "uni": "", "phone": None,
                                                         "campaign": 7}))
    feed.send("leads", {"id": 3}, event("u", 110, after={"id": 3, "name": "more",
                                                         "region": "EU"}))
    feed.send("leads", {"id": 5}, event("d", 120, before={"id": 5}))
    # (one partition: the first message with the new column gives its type, in either mode)
    feed.send("calls", {"id": 8}, event("c", 17, after={"id": 8, "state": "s8", "agent": 4},
                                        table="calls"), partition=0)
    feed.send("calls", {"id": 1}, event("u", 18, after={"id": 1, "state": "s1b", "agent": 5},
                                        table="calls"), partition=0)
    feed.send("calls", {"id": 94}, json.dumps(event("c", 19, after={"id": 94, "agent": "x"},
                                                    table="calls")).encode(), partition=0)
    feed.flush()


def third_phase(feed: Feed) -> None:
    feed.send("leads", {"id": 6}, event("c", 130, after={"id": 6, "name": "v", "region": "US"}))
    feed.send("leads", {"id": 1}, event("u", 140, after={"id": 1, "name": "w", "score": 3.5}))
    feed.flush()


def landed(feed: Feed, versions: dict[str, int], dead: int) -> Callable[[], bool]:
    client = clickhouse_client(feed.config)

    def check() -> bool:
        try:
            counts = {t: client.query(f"SELECT count() FROM history.{feed.name}__{t} FINAL"
                                      ).result_rows[0][0] for t in TABLES}
        except Exception:  # noqa: BLE001 - not created yet
            return False
        dead_now = client.query("SELECT count() FROM raw._dead_letters FINAL WHERE "
                                "startsWith(topic, {p:String})",
                                parameters={"p": f"{feed.name}."}).result_rows[0][0]
        return counts == versions and dead_now == dead
    return check


def snapshot(feed: Feed) -> dict[str, object]:
    """The raw and history tables (FINAL, without the landing time), their column types and
    the dead letters (without the reason's wording after its first part, and the time)."""
    client = clickhouse_client(feed.config)
    out: dict[str, object] = {}
    for t in TABLES:
        name = f"{feed.name}__{t}"
        columns = sorted(client.query(
            "SELECT name, type FROM system.columns WHERE database = 'raw' AND table = "
            "{t:String}", parameters={"t": name}).result_rows)
        out[f"columns.{t}"] = columns
        # (by name: the modes may add two new columns in either order)
        names = ", ".join(f"`{c}`" for c, _ in columns if c != "_ingested_at")
        for database in ("raw", "history"):
            out[f"{database}.{t}"] = client.query(
                f"SELECT {names} FROM {database}.{name} FINAL ORDER BY {names}").result_rows
        out[f"key.{t}"] = client.query(
            "SELECT sorting_key FROM system.tables WHERE database = 'raw' AND name = {t:String}",
            parameters={"t": name}).result_rows
    out["dead"] = [(*r[:5], r[5].split(":")[0]) for r in client.query(
        "SELECT topic, partition, offset, key, value, error FROM raw._dead_letters FINAL "
        "WHERE startsWith(topic, {p:String}) ORDER BY ALL",
        parameters={"p": f"{feed.name}."}).result_rows]
    return out


def forget(feed: Feed) -> None:
    """Drop what the first mode landed, so the second starts from an empty ClickHouse."""
    client = clickhouse_client(feed.config)
    for t in TABLES:
        name = f"{feed.name}__{t}"
        for statement in (f"DROP VIEW IF EXISTS history.{name}__copy",
                          f"DROP VIEW IF EXISTS current.{name}", f"DROP TABLE IF EXISTS raw.{name}",
                          f"DROP TABLE IF EXISTS history.{name}"):
            client.command(statement)
    client.command("DELETE FROM raw._dead_letters WHERE startsWith(topic, {p:String})",
                   parameters={"p": f"{feed.name}."})


@pytest.fixture
def running() -> Iterator[Callable[[Callable[[threading.Event], None]], None]]:
    """Runs landing loops in threads; stops them at the end."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(loop: Callable[[threading.Event], None]) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=loop, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(timeout=30)


def test_both_modes_land_the_same_raw_tables(feed: Feed, running) -> None:  # noqa: ANN001
    """Every op, out-of-order versions, delete and re-insert, a tombstone, a truncate, the
    schemas.enable form, every inferred type, dead letters, and new columns — first in the
    topics before the Kafka engine starts (held, then parsed once the controller made the
    tables), then while it runs (through the views, switched to a new generation for the new
    columns). The loader, reading the same topics afterwards, lands identical tables."""
    first_phase(feed)
    engine = EngineLanding(feed.config, poll_seconds=0.5)
    client = clickhouse_client(feed.config)
    try:
        running(engine.run)
        # (chdb's Kafka consumers take ~25 s to be assigned their partitions)
        wait_for(landed(feed, FIRST_VERSIONS, 4), timeout=180, explain=lambda: str(
            client.query(f"SELECT name FROM system.tables WHERE database = '{QUEUES}'"
                         ).result_rows))
        # (the rows are visible a moment before the engine counts them as taken)
        wait_for(lambda: engine.held_parsed > 0, timeout=30)
        second_phase(feed)
        total = {t: FIRST_VERSIONS[t] + SECOND_VERSIONS[t] for t in TABLES}
        wait_for(landed(feed, total, DEAD), timeout=120)
        # rows of the columns the tables had went through the views (the two of leads 5);
        # only those with a new column (leads 3, calls 8 and maybe 1 and 94) were held
        # a Kafka table's consumer streams through the views it had when its current block
        # began, so the second phase may all have been held; once the switches are a block
        # behind, rows of the columns a table has go through its row views, never held
        held_before = engine.held_parsed
        time.sleep(BLOCK_S)
        third_phase(feed)
        total = {t: total[t] + THIRD_VERSIONS.get(t, 0) for t in TABLES}
        wait_for(landed(feed, total, DEAD), timeout=120)
        assert engine.held_parsed == held_before

        # landing metrics from the positions in the raw tables, as the loader writes them
        def metrics() -> list[tuple]:
            return client.query(
                "SELECT partition, argMax(landed_offset, at), argMax(last_source_lsn, at) "
                "FROM raw._landing_metrics WHERE topic = {t:String} GROUP BY partition "
                "ORDER BY partition", parameters={"t": feed.topic("leads")}).result_rows

        ends = client.query(f"SELECT _kafka_partition, max(_kafka_offset), max(_lsn) FROM "
                            f"history.{feed.name}__leads GROUP BY 1 ORDER BY 1").result_rows
        wait_for(lambda: metrics() == ends, timeout=30, explain=lambda: f"{metrics()} {ends}")
        by_engine = snapshot(feed)
    finally:
        for name in [r[0] for r in client.query(
                f"SELECT name FROM system.tables WHERE database = '{QUEUES}' AND "
                "startsWith(name, {p:String})", parameters={"p": feed.name}).result_rows]:
            client.command(f"DROP TABLE IF EXISTS {QUEUES}.`{name}`")
    forget(feed)
    loader = Loader(feed.config, group_id=f"g-{feed.name}", batch_seconds=0.2)
    running(loader.run)
    wait_for(landed(feed, total, DEAD), timeout=120)
    by_loader = snapshot(feed)
    assert by_engine["raw.leads"], by_engine
    for part in by_loader:
        assert by_engine[part] == by_loader[part], part
