"""The loader on the real broker and ClickHouse, fed with hand-made Debezium events."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaException, Producer

from contour.config import Config
from ingestion.landing.loader import Loader, clickhouse_client
from ingestion.landing.tables import UNTYPED_COMMENT
from tests.conftest import ROOT, Stack, private_stack, wait_for
from tests.ingestion.landing.conftest import Feed, event, final

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def running_loader(feed: Feed) -> Iterator[Loader]:
    """A loader of the feed's topics running in a thread; stopped on leaving."""
    loader = Loader(feed.config, group_id=f"g-{feed.name}", batch_seconds=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield loader
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture
def loader(feed: Feed) -> Iterator[Loader]:
    with running_loader(feed) as loader:
        yield loader


def test_every_op_versions_delete_reinsert_and_new_column(feed: Feed, loader: Loader) -> None:
    feed.create("leads")
    k = {"id": 1}
    feed.send("leads", {"id": 9}, event("r", 10, after={"id": 9, "name": "snap"}))
    feed.send("leads", k, event("c", 20, after={"id": 1, "name": "a"}), partition=0)
    # out of order across partitions: the newer version arrives first on partition 1
    feed.send("leads", k, event("u", 40, after={"id": 1, "name": "c"}), partition=1)
    feed.send("leads", k, event("u", 30, after={"id": 1, "name": "b"}), partition=0)
    feed.send("leads", {"id": 2}, event("c", 50, after={"id": 2, "name": "x"}))
    feed.send("leads", {"id": 2}, event("d", 60, before={"id": 2, "name": None}))
    feed.send("leads", {"id": 2}, None)  # tombstone
    feed.send("leads", {"id": 3}, event("c", 70, after={"id": 3, "name": "gone"}))
    feed.send("leads", {"id": 3}, event("d", 80, before={"id": 3, "name": None}))
    feed.send("leads", {"id": 3}, event("c", 90, after={"id": 3, "name": "back"}))
    feed.send("leads", {"id": 4}, event("c", 100, after={"id": 4, "name": "n", "phone": "+1"}))
    feed.flush()
    wait_for(lambda: final(feed, "leads", "id, name, phone") == [
        (1, "c", None), (3, "back", None), (4, "n", "+1"), (9, "snap", None)])
    client = clickhouse_client(feed.config)
    # (row counts without FINAL depend on background merges: only the winners are checked)
    winners = client.query(f"SELECT id, _op, _version, _kafka_partition FROM "
                           f"raw.{feed.name}__leads FINAL ORDER BY id").result_rows
    assert [(r[0], r[1], r[2]) for r in winners] == [(1, "u", 40), (3, "c", 90), (4, "c", 100),
                                                     (9, "r", 10)]
    assert winners[0][3] == 1  # the newest version came on partition 1, before the older one
    # every version stays in history; current is the state without the deleted keys
    history = client.query(f"SELECT id, _version FROM history.{feed.name}__leads FINAL "
                           "ORDER BY id, _version").result_rows
    assert history == [(1, 20), (1, 30), (1, 40), (2, 50), (2, 60), (3, 70), (3, 80), (3, 90),
                       (4, 100), (9, 10)]
    current = client.query(f"SELECT id, name, phone FROM current.{feed.name}__leads "
                           "ORDER BY id").result_rows
    assert current == [(1, "c", None), (3, "back", None), (4, "n", "+1"), (9, "snap", None)]
    # landing metrics: per partition, the last offset landed, no lag, the newest source LSN
    wait_for(lambda: bool(client.query(
        "SELECT count() FROM raw._landing_metrics WHERE topic = {t:String}",
        parameters={"t": feed.topic("leads")}).result_rows[0][0]), timeout=20)
    metrics = client.query(
        "SELECT partition, argMax(landed_offset, at), argMax(lag, at), "
        "argMax(last_source_lsn, at) FROM raw._landing_metrics WHERE topic = {t:String} "
        "GROUP BY partition ORDER BY partition", parameters={"t": feed.topic("leads")}
    ).result_rows
    ends = client.query(f"SELECT _kafka_partition, max(_kafka_offset), max(_lsn) FROM "
                        f"history.{feed.name}__leads GROUP BY 1 ORDER BY 1").result_rows
    assert [(p, off, 0, lsn) for p, off, lsn in ends] == \
        [(p, off, lag, lsn) for p, off, lag, lsn in metrics]
    assert loader.dead_letters == 0


def test_partitions_holding_only_a_truncate_or_a_dead_letter_get_a_landed_probe(
        feed: Feed, loader: Loader) -> None:
    """The relay (confirmation "landed") trusts a partition's landed offset only once the
    broker's message at the probe offset carries the probe's LSN. A partition whose only
    message is a truncate (``dialer seed --replace``) once had no probe: its batch never
    became durable, the slot was never confirmed again and PostgreSQL invalidated it after
    4 GB of WAL under load (found by bench_sustained). A dead letter with a source LSN is
    stored too (``raw._dead_letters``), and serves the same way."""
    feed.create("calls", partitions=3)
    truncate = {**event("t", 77, table="calls"), "before": None}
    feed.send("calls", None, truncate, partition=0)
    feed.send("calls", {"id": 1}, event("c", 80, after={"id": 1, "name": "a"}, table="calls"),
              partition=1)
    unknown_op = {**event("c", 90, after={"id": 2, "name": "b"}, table="calls"), "op": "x"}
    feed.send("calls", {"id": 2}, unknown_op, partition=2)
    feed.flush()
    client = clickhouse_client(feed.config)

    def probes() -> list[tuple]:
        return client.query(
            "SELECT partition, argMax(landed_offset, at), argMax(probe_offset, at), "
            "argMax(probe_lsn, at) FROM raw._landing_metrics WHERE topic = {t:String} "
            "GROUP BY partition ORDER BY partition",
            parameters={"t": feed.topic("calls")}).result_rows

    wait_for(lambda: len(probes()) == 3, timeout=60, explain=lambda: str(probes()))
    assert probes() == [(0, 0, 0, 77), (1, 0, 0, 80), (2, 0, 0, 90)]
    assert (loader.truncates, loader.dead_letters) == (1, 1)


def test_a_column_of_nulls_takes_the_source_columns_type(feed: Feed, services: Stack) -> None:
    """Calls of an inbound queue only (no campaign yet): ``campaign_id`` is an integer column
    from the start (the source's catalog says so), and joins with the campaigns' key."""
    services.require("postgres")
    with psycopg.connect(feed.config.pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{feed.name}"')
    try:
        with psycopg.connect(feed.config.pg_dsn(feed.name), autocommit=True) as conn:
            conn.execute("CREATE TABLE calls (id bigint PRIMARY KEY, campaign_id bigint, "
                         "hold int, score double precision, vip boolean, note text, "
                         "at timestamptz)")
        feed.create("calls", partitions=1)
        nulls = {"campaign_id": None, "hold": None, "score": None, "vip": None, "note": None,
                 "at": None, "not_in_source": None}
        feed.send("calls", {"id": 1}, event("c", 10, after={"id": 1, **nulls}, table="calls"))
        feed.flush()
        with running_loader(feed):
            wait_for(lambda: final(feed, "calls", "id") == [(1,)])
    finally:
        with psycopg.connect(feed.config.pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{feed.name}" WITH (FORCE)')
    client = clickhouse_client(feed.config)
    columns = dict(client.query(
        "SELECT name, (type, comment) FROM system.columns WHERE database = 'raw' AND "
        "table = {t:String}", parameters={"t": f"{feed.name}__calls"}).result_rows)
    assert {c: columns[c] for c in nulls} == {
        "campaign_id": ("Nullable(Int64)", ""), "hold": ("Nullable(Int64)", ""),
        "score": ("Nullable(Float64)", ""), "vip": ("Nullable(Bool)", ""),
        "note": ("Nullable(String)", ""), "at": ("Nullable(String)", ""),
        # a column the source does not have (dropped since) waits for a value
        "not_in_source": ("Nullable(String)", UNTYPED_COMMENT)}
    assert client.query(f"SELECT count() FROM current.{feed.name}__calls AS c "
                        "JOIN (SELECT 7 AS k) AS k ON c.campaign_id = k.k").result_rows == [(0,)]


def test_a_column_of_nulls_is_typed_by_its_first_value_across_a_restart(feed: Feed) -> None:
    """When the source cannot tell the type (here: there is no source database), an inbound
    call first (no campaign), then outbound ones: ``campaign_id`` ends an integer column
    that joins with the campaigns' key, not a string one."""
    feed.create("calls", partitions=1)
    feed.send("calls", {"id": 1}, event("c", 10, after={"id": 1, "campaign_id": None},
                                        table="calls"))
    feed.flush()
    client = clickhouse_client(feed.config)
    table = f"{feed.name}__calls"

    def column() -> list[tuple]:
        return client.query(
            "SELECT type, comment FROM system.columns WHERE database = {d:String} AND "
            "table = {t:String} AND name = 'campaign_id'",
            parameters={"d": "raw", "t": table}).result_rows

    with running_loader(feed):
        wait_for(lambda: final(feed, "calls", "id, campaign_id") == [(1, None)])
    assert column() == [("Nullable(String)", UNTYPED_COMMENT)]
    # a new loader reads the mark back from the column's comment
    feed.send("calls", {"id": 2}, event("c", 20, after={"id": 2, "campaign_id": None},
                                        table="calls"))
    feed.send("calls", {"id": 3}, event("c", 30, after={"id": 3, "campaign_id": 7},
                                        table="calls"))
    feed.send("calls", {"id": 4}, event("c", 40, after={"id": 4, "campaign_id": "x"},
                                        table="calls"))
    feed.flush()
    with running_loader(feed) as second:
        wait_for(lambda: final(feed, "calls", "id, campaign_id") == [(1, None), (2, None),
                                                                     (3, 7)])
        wait_for(lambda: second.dead_letters == 1)  # a string in what is now an integer
    assert column() == [("Nullable(Int64)", "")]
    for database in ("history", "current"):
        assert client.query(
            f"SELECT toTypeName(campaign_id) FROM {database}.{table} LIMIT 1"
        ).result_rows == [("Nullable(Int64)",)]
    assert client.query(f"SELECT c.id FROM current.{table} AS c JOIN (SELECT 7 AS k) AS k "
                        "ON c.campaign_id = k.k").result_rows == [(3,)]


def test_poison_messages_become_dead_letters_and_good_rows_stay(feed: Feed,
                                                                loader: Loader) -> None:
    feed.create("calls", partitions=3)
    rng = random.Random(5)
    poison_kinds = [b"not json", b'["a list"]', json.dumps({"op": "z"}).encode(),
                    json.dumps(event("c", 1, after={"id": "text-in-int", "name": "x"},
                                     table="calls")).encode()]
    good, poison = 100_000, 1_000  # the figures
    # (the first hundred are good: a table takes its column types from its first row)
    slots = sorted(rng.sample(range(100, good + poison), poison))
    lsn = 0
    for i in range(good + poison):
        if slots and slots[0] == i:
            slots.pop(0)
            feed.send("calls", {"id": i}, poison_kinds[i % len(poison_kinds)])
            continue
        lsn += 1
        feed.send("calls", {"id": i}, event("c", lsn, after={"id": i, "name": f"n{i}"},
                                            table="calls"))
    feed.flush()
    client = clickhouse_client(feed.config)

    def landed() -> tuple[int, int]:
        # (no FINAL while the loader inserts: on the embedded engine, one statement at a
        # time, FINAL polls starved the inserts; a plain count() reads the parts' row counts,
        # and the loader lands each row once)
        rows = client.query(f"SELECT count() FROM raw.{feed.name}__calls").result_rows[0][0]
        dead = client.query("SELECT uniqExact(partition, offset) FROM raw._dead_letters "
                            "WHERE topic = {t:String}",
                            parameters={"t": feed.topic("calls")}).result_rows[0][0]
        return int(rows), int(dead)

    def done() -> bool:
        time.sleep(1.0)
        return landed() == (good, poison)

    # (not on the loader's counters: a batch in flight when the loop starts over lands
    # without being counted)
    wait_for(done, timeout=300,
             explain=lambda: f"{landed()} landed (rows, dead letters)")
    assert client.query(f"SELECT count(), uniqExact(id) FROM raw.{feed.name}__calls FINAL"
                        ).result_rows == [(good, good)]
    assert client.query("SELECT count() FROM raw._dead_letters FINAL WHERE topic = {t:String}",
                        parameters={"t": feed.topic("calls")}).result_rows == [(poison,)]
    reasons = {r[0].split(":")[0] for r in client.query(
        "SELECT error FROM raw._dead_letters WHERE topic = {t:String}",
        parameters={"t": feed.topic("calls")}).result_rows}
    assert reasons == {"not JSON", "not a Debezium envelope", "column id"}


def test_kill_9_during_load_neither_loses_nor_duplicates(feed: Feed) -> None:
    feed.create("ledger", partitions=3)
    client = clickhouse_client(feed.config)
    procs: list[subprocess.Popen[bytes]] = []

    log_path = Path(tempfile.mkdtemp()) / "loaders.log"

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "contour", "loader", "run",
                                     "--batch-size", "2000", "--batch-seconds", "0.1"],
                                    env=feed.env, cwd=ROOT, stdout=log, stderr=log)
        procs.append(proc)
        return proc

    def count() -> int:
        if procs[-1].poll() is not None:  # a loader that exits by itself is a failure
            raise AssertionError(f"loader exited {procs[-1].returncode}:\n"
                                 + log_path.read_text()[-3000:])
        try:
            return client.query(f"SELECT count() FROM raw.{feed.name}__ledger").result_rows[0][0]
        except Exception:  # noqa: BLE001 - not created yet
            return -1

    # one message creates the table; merges are then stopped so that a duplicate row could
    # not be hidden by ReplacingMergeTree: every (partition, offset) stays countable
    feed.send("ledger", {"id": 0}, event("c", 1, after={"id": 0, "name": "0"}, table="ledger"))
    feed.flush()
    proc = start()
    try:
        wait_for(lambda: count() == 1)
        client.command(f"SYSTEM STOP MERGES raw.{feed.name}__ledger")
        total = 500_000  # the acceptance size
        for i in range(1, total):
            feed.send("ledger", {"id": i}, event("c", i + 1, after={"id": i, "name": str(i)},
                                                 table="ledger"))
        feed.flush()
        rng = random.Random(9)
        for _ in range(20):  # the 20 kills during the load
            time.sleep(rng.uniform(0.3, 2.0))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc = start()
        wait_for(lambda: count() >= total, timeout=300,
                 explain=lambda: f"({count()} of {total} rows landed); loaders' log:\n"
                 + log_path.read_text()[-3000:])
        time.sleep(1)  # anything landing twice would show up now
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
    stats = client.query(f"SELECT count(), uniqExact(_kafka_partition, _kafka_offset) "
                         f"FROM raw.{feed.name}__ledger").result_rows[0]
    assert stats == (total, total), "a message was lost or landed twice"
    rows = dict(client.query(f"SELECT id, name FROM raw.{feed.name}__ledger FINAL").result_rows)
    assert rows == {i: str(i) for i in range(total)}


def test_a_new_incarnation_of_a_topic_is_read_from_its_start() -> None:
    """The embedded broker keeps messages in memory: restarted, its topics start again at
    offset 0. A loader (re)started then must not resume at the old log's position — the new
    log already longer than it would lose its first messages — nor may a running loader
    that lost its connection go on from there."""
    with private_stack("kafka", "clickhouse") as stack:
        name = f"inc{uuid.uuid4().hex[:8]}"
        env = stack.env | {"CONTOUR_CDC_SOURCES": name}
        config = Config.from_env(env)

        def incarnation(first: int, count: int) -> None:
            feed = Feed(name, env, config, Producer({"bootstrap.servers": config.kafka_bootstrap}))
            with contextlib.suppress(KafkaException):  # (a loader's metadata request may have
                feed.create("ledger", partitions=1)   # made it already)
            for i in range(first, first + count):
                feed.send("ledger", {"id": i}, event("c", i + 1, after={"id": i, "v": 1},
                                                     table="ledger"))
            feed.flush()

        def ids_landed(first: int, count: int) -> int:
            return int(clickhouse_client(config).query(
                f"SELECT count() FROM raw.{name}__ledger FINAL WHERE id >= {first} AND "
                f"id < {first + count}").result_rows[0][0])

        def run_loader() -> tuple[Loader, threading.Event, threading.Thread]:
            loader = Loader(config, group_id=f"g-{name}", batch_seconds=0.2)
            stop = threading.Event()
            thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
            thread.start()
            return loader, stop, thread

        incarnation(0, 100)
        loader, stop, thread = run_loader()
        wait_for(lambda: loader.loaded_rows == 100)
        stop.set()
        thread.join(timeout=30)

        # restarted while the loader is down; the new log grows past the old position
        stack.contour("down", "kafka")
        stack.contour("up", "kafka")
        incarnation(1000, 250)
        loader, stop, thread = run_loader()
        try:
            wait_for(lambda: ids_landed(1000, 250) == 250, timeout=120,
                     explain=lambda: f"{ids_landed(1000, 250)} of 250 landed")
            assert loader.incarnations == 1

            # restarted under a running loader
            stack.contour("down", "kafka")
            stack.contour("up", "kafka")
            incarnation(5000, 600)
            wait_for(lambda: ids_landed(5000, 600) == 600, timeout=120,
                     explain=lambda: f"{ids_landed(5000, 600)} of 600 landed")
        finally:
            stop.set()
            thread.join(timeout=30)
        assert ids_landed(0, 100) == 100 and ids_landed(1000, 250) == 250
