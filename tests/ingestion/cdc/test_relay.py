"""The CDC relay against the real PostgreSQL and the real Kafka-protocol broker."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import psycopg
import pytest
from kafka import KafkaConsumer

from contour.config import Config
from ingestion.cdc import pgoutput
from ingestion.cdc.fast_encoder import FastEncoder
from ingestion.cdc.relay import Relay, SlotLostError
from ingestion.cdc.typemap import UNAVAILABLE
from ingestion.landing.loader import Loader, clickhouse_client
from tests.conftest import private_stack, wait_for
from tests.ingestion.cdc.conftest import Event, Source, changes, fresh_source

pytestmark = pytest.mark.integration


def _count(table: str, n: int):  # noqa: ANN202
    return lambda events: len([e for e in events if e.topic.endswith(f".{table}")]) >= n


def test_every_op_type_with_tombstones_and_replica_identity(source: Source) -> None:
    source.sql(
        "CREATE TABLE dflt (id int PRIMARY KEY, name text, n int)",
        "CREATE TABLE fullr (id int PRIMARY KEY, name text)",
        "ALTER TABLE fullr REPLICA IDENTITY FULL",
        "INSERT INTO dflt VALUES (1, 'snap', 0)",
    )
    source.relay_in_thread()
    source.events(_count("dflt", 1))  # snapshot published
    source.sql(
        "INSERT INTO dflt VALUES (2, 'two', 1)",
        "UPDATE dflt SET n = 2 WHERE id = 2",
        "UPDATE dflt SET id = 3 WHERE id = 2",  # key change
        "DELETE FROM dflt WHERE id = 3",
        "INSERT INTO fullr VALUES (1, 'a')",
        "UPDATE fullr SET name = 'b' WHERE id = 1",
        "DELETE FROM fullr WHERE id = 1",
        "TRUNCATE dflt",
    )
    events = source.events(_count("fullr", 4))
    events = source.events(lambda ev: any(e.value and e.value["op"] == "t" for e in ev))
    dflt = [e for e in events if e.topic == f"{source.name}.public.dflt"]
    by_key: dict[str, list[tuple[str | None, dict | None, dict | None]]] = defaultdict(list)
    for e in dflt:
        by_key[json.dumps(e.key)].append(
            (e.value["op"], e.value["before"], e.value["after"]) if e.value else
            (None, None, None))
    assert by_key['{"id": 1}'] == [("r", None, {"id": 1, "name": "snap", "n": 0})]
    assert by_key['{"id": 2}'] == [
        ("c", None, {"id": 2, "name": "two", "n": 1}),
        ("u", None, {"id": 2, "name": "two", "n": 2}),  # DEFAULT identity: no before
        ("d", {"id": 2, "name": None, "n": None}, None),  # key change = delete ...
        (None, None, None),  # ... + tombstone
    ]
    assert by_key['{"id": 3}'] == [
        ("c", None, {"id": 3, "name": "two", "n": 2}),  # ... + create
        ("d", {"id": 3, "name": None, "n": None}, None),  # DEFAULT: key only in before
        (None, None, None),
    ]
    truncates = [e for e in dflt if e.key is None]
    assert len(truncates) == 1 and truncates[0].value["op"] == "t"
    assert changes(events, "fullr") == [
        ("c", None, {"id": 1, "name": "a"}),
        ("u", {"id": 1, "name": "a"}, {"id": 1, "name": "b"}),  # FULL: whole old row
        ("d", {"id": 1, "name": "b"}, None),
    ]
    source_block = dflt[0].value["source"]
    assert source_block["connector"] == "postgresql"
    assert source_block["name"] == source.name and source_block["db"] == source.name
    assert (source_block["schema"], source_block["table"]) == ("public", "dflt")
    assert source_block["snapshot"] in ("first", "last", "true")
    streamed = next(e for e in dflt if e.value and e.value["op"] == "c")
    assert streamed.value["source"]["snapshot"] == "false"
    assert isinstance(streamed.value["source"]["txId"], int)
    assert isinstance(streamed.value["source"]["lsn"], int)


def _encoder(relay: Relay, table: str) -> FastEncoder:
    """The fast path's encoder of ``table`` (there is one once a change of it was seen)."""
    (encoder,) = (e for e in relay.fast.values() if e.shape.relation.table == table)
    return encoder


def test_every_mapped_type(source: Source) -> None:
    source.sql(
        "CREATE TYPE mood AS ENUM ('calm', 'angry')",
        "CREATE TABLE typed (id bigint PRIMARY KEY, s smallint, i int, b boolean, "
        "num numeric(12,3), f double precision, t text, vc varchar(10), "
        "ts timestamp, ts3 timestamp(3), tstz timestamptz, d date, tm time, u uuid, "
        "j jsonb, arr int[], tarr text[], m mood, marr mood[], iv interval, by bytea)",
    )
    relay = source.relay_in_thread()
    source.wait_streaming()
    source.sql(
        "INSERT INTO typed VALUES (1, -2, 3, true, 1234.5, 0.25, 'tè', 'v', "
        "'2024-03-31 01:30:00.25', '2024-03-31 01:30:00.125', '2024-10-27 01:30:00+02', "
        "'2024-02-29', '23:59:59.5', '00000000-0000-0000-0000-000000000001', "
        """'{"k": [1, 2]}', '{1,NULL,3}', '{"a b",c}', 'angry', '{calm,angry}', """
        "'1 day 2 hours', '\\x0102')")
    (op, _, after), = changes(source.events(_count("typed", 1)), "typed")
    assert op == "c"
    assert after == {
        "id": 1, "s": -2, "i": 3, "b": True, "num": "1234.500", "f": 0.25, "t": "tè", "vc": "v",
        "ts": 1_711_848_600_250_000, "ts3": 1_711_848_600_125,
        "tstz": "2024-10-26T23:30:00Z", "d": 19782, "tm": 86_399_500_000,
        "u": "00000000-0000-0000-0000-000000000001", "j": '{"k": [1, 2]}',
        "arr": [1, None, 3], "tarr": ["a b", "c"], "m": "angry", "marr": ["calm", "angry"],
        "iv": 93_600_000_000, "by": "AQI=",
    }
    # the insert took the fast path (its bytes equal the reference's: test_fast_encoder.py)
    assert _encoder(relay, "typed").fallbacks == 0


def test_unchanged_toast_is_marked_unavailable(source: Source) -> None:
    big = "".join(random.Random(1).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20000))
    source.sql("CREATE TABLE docs (id int PRIMARY KEY, body text, n int)",
               "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL")
    relay = source.relay_in_thread()
    source.wait_streaming()
    source.sql(f"INSERT INTO docs VALUES (1, '{big}', 0)", "UPDATE docs SET n = 1 WHERE id = 1")
    inserted, updated = changes(source.events(_count("docs", 2)), "docs")
    assert inserted[2]["body"] == big
    assert updated[2] == {"id": 1, "body": UNAVAILABLE, "n": 1}
    # the insert took the fast path; the update, with its TOAST value, the reference path
    assert _encoder(relay, "docs").fallbacks == 1


def test_transactions_keep_commit_order_per_key(source: Source) -> None:
    source.sql("CREATE TABLE a (id int PRIMARY KEY, v int)",
               "CREATE TABLE b (id int PRIMARY KEY, v int)")
    source.relay_in_thread()
    source.wait_streaming()
    with psycopg.connect(source.dsn) as conn:
        for v in range(1, 21):
            conn.execute("INSERT INTO a VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET v = "
                         "excluded.v", (v,))
            conn.execute("INSERT INTO b VALUES (%s, %s)", (v, v))
            conn.commit()
    events = source.events(lambda ev: len(changes(ev, "a")) >= 20 and len(changes(ev, "b")) >= 20)
    assert [after["v"] for _, _, after in changes(events, "a")] == list(range(1, 21))
    tx_of = {}
    for e in events:
        if e.value and e.topic.endswith((".a", ".b")):
            tx_of.setdefault(e.value["source"]["txId"], set()).add(e.topic.rsplit(".", 1)[1])
    assert len(tx_of) == 20 and all(tables == {"a", "b"} for tables in tx_of.values())


def test_snapshot_and_stream_under_concurrent_writes(source: Source) -> None:
    source.sql("CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL)",
               "INSERT INTO counters SELECT g, 0 FROM generate_series(1, 2000) g")
    stop = threading.Event()
    written: dict[int, int] = {}

    def writer() -> None:
        rng = random.Random(7)
        with psycopg.connect(source.dsn, autocommit=True) as conn:
            while not stop.is_set():
                key = rng.randint(1, 2000)
                row = conn.execute("UPDATE counters SET v = v + 1 WHERE id = %s RETURNING v",
                                   (key,)).fetchone()
                written[key] = row[0]

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    source.relay_in_thread()
    time.sleep(2)
    stop.set()
    thread.join()
    final = dict(psycopg.connect(source.dsn).execute("SELECT id, v FROM counters").fetchall())
    events = source.events(lambda ev: _latest_of(ev, "counters") == final, timeout=90)
    seen: dict[int, list[int]] = defaultdict(list)
    for _, _, after in changes(events, "counters"):
        seen[after["id"]].append(after["v"])
    for key, values in seen.items():
        # snapshot value first, then every later value exactly once, in order: no gap, no overlap
        assert values == list(range(values[0], final[key] + 1)), key
    assert set(seen) == set(range(1, 2000 + 1))


def test_new_column_and_new_table_flow_without_restart(source: Source) -> None:
    source.sql("CREATE TABLE leads (id int PRIMARY KEY, name text)")
    source.relay_in_thread()
    source.wait_streaming()
    source.sql("INSERT INTO leads VALUES (1, 'a')")
    source.events(_count("leads", 1))
    source.sql("ALTER TABLE leads ADD COLUMN phone text",
               "INSERT INTO leads VALUES (2, 'b', '+100')",
               "CREATE TABLE fresh (id int PRIMARY KEY, x int)",
               "INSERT INTO fresh VALUES (1, 10)")
    events = source.events(lambda ev: _count("leads", 2)(ev) and _count("fresh", 1)(ev))
    assert changes(events, "leads")[-1][2] == {"id": 2, "name": "b", "phone": "+100"}
    assert changes(events, "fresh") == [("c", None, {"id": 1, "x": 10})]


def test_a_table_captured_later_is_snapshotted_once_then_streamed(source: Source) -> None:
    """A table the exclude list kept out, then let in: at the relay's next start its rows are
    published as a snapshot (op r) whose LSN orders it after every change it contains and
    before every change after it; a further restart does not snapshot it again."""
    exclude = {f"CONTOUR_CDC_{source.name.upper()}_EXCLUDE": r"public\.later"}
    source.sql("CREATE TABLE kept (id int PRIMARY KEY, v int NOT NULL)",
               "CREATE TABLE later (id int PRIMARY KEY, v int NOT NULL)",
               "INSERT INTO later SELECT g, 0 FROM generate_series(1, 100) g")
    source.relay_in_thread(**exclude)
    source.wait_streaming()
    source.sql("UPDATE later SET v = 1 WHERE id <= 10", "INSERT INTO kept VALUES (1, 1)")
    source.events(_count("kept", 1))
    source.stop_relays()
    consumer = KafkaConsumer(bootstrap_servers=source.config.kafka_bootstrap)
    try:
        assert f"{source.name}.public.later" not in consumer.topics()  # nothing published
    finally:
        consumer.close()
    source.sql("UPDATE later SET v = 2 WHERE id = 5")  # while no relay runs

    source.relay_in_thread()  # the default lists: `later` is captured now
    source.events(_count("later", 100))
    source.sql("UPDATE later SET v = 3 WHERE id = 7")
    events = source.events(lambda ev: _latest_of(ev, "later").get(7) == 3)
    later = [e for e in events if e.topic.endswith(".later") and e.value is not None]
    snapshot = [e for e in later if e.value["op"] == "r"]
    assert sorted(e.value["after"]["id"] for e in snapshot) == list(range(1, 101))
    final = dict(psycopg.connect(source.dsn).execute("SELECT id, v FROM later").fetchall())
    newest: dict[int, tuple[int, int]] = {}  # per key the event with the highest LSN
    for e in later:
        lsn, row = e.value["source"]["lsn"], e.value["after"]
        if row["id"] not in newest or lsn >= newest[row["id"]][0]:
            newest[row["id"]] = (lsn, row["v"])
    assert {key: v for key, (_, v) in newest.items()} == final
    (position,) = {e.value["source"]["lsn"] for e in snapshot}
    for e in later:  # a change after the snapshot is ordered after it, one before it before
        if e.value["op"] == "u" and e.value["after"]["v"] == 3:
            assert e.value["source"]["lsn"] > position
        elif e.value["op"] == "u":
            assert e.value["source"]["lsn"] < position

    source.stop_relays()
    source.relay_in_thread()
    source.wait_streaming()
    source.sql("UPDATE later SET v = 4 WHERE id = 8")
    again = source.events(lambda ev: _latest_of(ev, "later").get(8) == 4)
    assert sum(1 for e in again if e.topic.endswith(".later") and e.value is not None
               and e.value["op"] == "r") == 100


def test_heartbeats_and_metrics(source: Source) -> None:
    relay = source.relay_in_thread()
    beats = source.events(lambda ev: len(ev) >= 2, topic_filter=lambda t: "heartbeat" in t)
    assert all(e.value["after"]["source"] == source.name for e in beats)
    assert [e.value["after"]["seq"] for e in beats][:2] == [1, 2]
    # the relay's metrics ride on the heartbeat row, so they flow like any other change
    second = beats[1].value["after"]
    assert second["events_total"] >= 1 and second["lag_bytes"] >= 0
    assert {"lag_seconds", "events_per_s", "commit_to_ack_p95_s"} <= second.keys()
    deadline = time.monotonic() + 10
    metrics: dict = {}
    while time.monotonic() < deadline and metrics.get("events_total", 0) < 2:
        time.sleep(0.2)  # written once a second
        metrics = json.loads(relay.metrics_path.read_text())
    assert metrics["source"] == source.name and metrics["snapshot"] == "done"
    assert metrics["events_total"] >= 2 and metrics["transactions_total"] >= 2
    assert metrics["lag_bytes"] >= 0 and "confirmed_lsn" in metrics


def test_kill_9_under_write_load_loses_nothing(source: Source) -> None:
    source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
    source.relay_process()
    # kills come after the initial snapshot: an interrupted snapshot is redone from scratch
    # with a new slot, which keeps the final state but not the history between the two
    source.wait_streaming()
    stop = threading.Event()
    committed: dict[int, int] = {}

    def writer() -> None:
        rng = random.Random(11)
        with psycopg.connect(source.dsn) as conn:
            while not stop.is_set():
                for _ in range(rng.randint(1, 20)):
                    key = rng.randint(1, 300)
                    v = conn.execute(
                        "INSERT INTO ledger VALUES (%s, 1) ON CONFLICT (id) DO UPDATE SET "
                        "v = ledger.v + 1 RETURNING v", (key,)).fetchone()[0]
                    committed[key] = v
                conn.commit()

    thread = threading.Thread(target=writer)
    thread.start()
    rng = random.Random(3)
    for _ in range(4):
        time.sleep(rng.uniform(0.5, 2.0))
        victim = source.processes[-1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        source.relay_process()
    time.sleep(1)
    stop.set()
    thread.join()
    final = dict(committed)
    events = source.events(lambda ev: _latest_of(ev, "ledger") == final, timeout=120)
    print(f"re-published duplicates after 4 kills: {_check_history(events, final)}")


def _latest_of(events: list[Event], table: str) -> dict[int, int]:
    latest: dict[int, int] = {}
    for _, _, after in changes(events, table):
        latest[after["id"]] = after["v"]
    return latest


def _write_batch(source: Source, start: int, keys: int = 50) -> None:
    with psycopg.connect(source.dsn) as conn:
        for i in range(start, start + keys):
            conn.execute("INSERT INTO ledger VALUES (%s, 1) ON CONFLICT (id) DO UPDATE SET "
                         "v = ledger.v + 1", (i % keys,))
            conn.commit()


def _ledger_state(source: Source) -> dict[int, int]:
    with psycopg.connect(source.dsn) as conn:
        return dict(conn.execute("SELECT id, v FROM ledger").fetchall())


def _check_history(events: list[Event], final: dict[int, int]) -> int:
    """Every committed value once per key, in order, after removing (lsn, key) duplicates."""
    per_key: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        if e.value and e.topic.endswith(".ledger"):
            per_key[e.value["after"]["id"]].append((e.value["source"]["lsn"],
                                                    e.value["after"]["v"]))
    duplicates = 0
    for key, seq in per_key.items():
        unique = list(dict.fromkeys(seq))
        duplicates += len(seq) - len(unique)
        assert [v for _, v in unique] == list(range(1, final[key] + 1)), key
    assert set(per_key) == set(final)
    return duplicates


@pytest.fixture
def isolated_source() -> Iterator[Source]:
    """A source on a stack of its own: these tests restart PostgreSQL and the broker."""
    with private_stack("postgres", "kafka") as stack, fresh_source(stack) as src:
        yield src


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_neither_loses_nor_republishes(isolated_source: Source,
                                                        mode: str) -> None:
    source = isolated_source
    source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
    source.relay_in_thread()
    source.wait_streaming()
    _write_batch(source, 0)
    source.events(lambda ev: _latest_of(ev, "ledger") == _ledger_state(source))
    time.sleep(1)  # the relay confirms what the broker acknowledged

    from contour.procs import PidFile

    record = PidFile(source.config.run_dir / "postgres.pid").read()
    assert record is not None
    if mode == "fast":
        source.stack.contour("down", "postgres")
    else:  # immediate: no checkpoint, crash recovery on start
        os.kill(record.pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while record.process() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    source.stack.contour("up", "postgres")
    _write_batch(source, 50)
    final = _ledger_state(source)
    events = source.events(lambda ev: _latest_of(ev, "ledger") == final, timeout=120)
    assert _check_history(events, final) == 0


def test_broker_restart_delivers_every_later_change(isolated_source: Source) -> None:
    """The embedded broker keeps messages in memory: what a consumer had read survives in it,
    the rest of the old broker's log is gone. The relay must recreate its topics and deliver
    everything committed after its acknowledged position."""
    source = isolated_source
    source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
    source.relay_in_thread()
    source.wait_streaming()
    _write_batch(source, 0)
    before = source.events(lambda ev: _latest_of(ev, "ledger") == _ledger_state(source))
    time.sleep(1)
    source.stack.contour("down", "kafka")
    _write_batch(source, 50)  # committed while the broker is down
    source.stack.contour("up", "kafka")
    _write_batch(source, 100)
    final = _ledger_state(source)
    after = source.events(lambda ev: _latest_of(before + ev, "ledger") == final, timeout=180)
    assert _check_history(before + after, final) == 0


@pytest.mark.parametrize("relay_down", [False, True], ids=["relay-running", "relay-restarted"])
def test_broker_restart_loses_no_event_nobody_had_read(relay_down: bool) -> None:
    """Confirmation "landed" (the service's default): events the broker acknowledged but the
    loader had not landed are gone with the restarted broker's memory; the relay publishes
    them again from the position ClickHouse holds, so every committed version of every key
    lands, in order, whether the relay kept running or was restarted meanwhile. (With
    confirmation "broker" this test loses the versions written while the loader was down.)"""
    with private_stack("postgres", "kafka", "clickhouse") as stack, \
            fresh_source(stack) as source:
        source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
        relay = source.relay_in_thread(landed=True)
        source.wait_streaming()
        stop_loader = _loader_in_thread(source)
        _write_batch(source, 0)
        written = _wal_position(source)
        wait_for(lambda: relay.metrics.durable_lsn >= written, timeout=60,
                 explain=lambda: f"relay metrics {relay.metrics.as_dict(False)}")
        stop_loader()

        _write_batch(source, 50)  # acknowledged by the broker, read by nobody
        source.events(lambda ev: _latest_of(ev, "ledger") == _ledger_state(source))
        if relay_down:
            source.stop_relays()
        stack.contour("down", "kafka")
        stack.contour("up", "kafka")
        if relay_down:
            relay = source.relay_in_thread(landed=True)
        _write_batch(source, 100)
        final = _ledger_state(source)

        stop_loader = _loader_in_thread(source)
        history = clickhouse_client(source.config)

        def versions() -> dict[int, list[int]]:
            """Per key its values in LSN order, (LSN, value) duplicates removed."""
            per_key: dict[int, list[int]] = defaultdict(list)
            if not history.command(f"EXISTS TABLE history.{source.name}__ledger"):
                return per_key
            for key, value, _ in history.query(
                    f"SELECT DISTINCT id, v, _lsn FROM history.{source.name}__ledger "
                    "ORDER BY id, _lsn").result_rows:
                per_key[key].append(value)
            return per_key

        try:
            wait_for(lambda: {k: v[-1] for k, v in versions().items()} == final,
                     timeout=120, explain=lambda: f"landed {len(versions())} keys")
        finally:
            stop_loader()
        assert versions() == {key: list(range(1, v + 1)) for key, v in final.items()}
        assert relay.metrics.broker_log_losses >= 1


def _wal_position(source: Source) -> int:
    with psycopg.connect(source.dsn) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return pgoutput.str_to_lsn(row[0])


def _loader_in_thread(source: Source) -> Callable[[], None]:
    """A loader landing the source's topics; returns what stops it."""
    loader = Loader(source.config, group_id=f"g-{source.name}", batch_seconds=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
    thread.start()

    def stop_loader() -> None:
        stop.set()
        thread.join(timeout=60)
    return stop_loader


def _invalidate_slot(source: Source) -> None:
    """Make PostgreSQL drop the WAL the (stopped) relay's slot still needs: keep at most 1 MB
    for slots, write and switch a few WAL segments, checkpoint."""
    with psycopg.connect(source.dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE TABLE IF NOT EXISTS filler (x text)")
        for _ in range(3):
            conn.execute("INSERT INTO filler SELECT repeat('x', 500) FROM generate_series(1, 2000)")
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")
        status = conn.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
                              (f"contour_{source.name}",)).fetchone()
        conn.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        conn.execute("SELECT pg_reload_conf()")
    assert status == ("lost",), f"the slot was not invalidated: {status}"


def test_an_invalidated_slot_is_replaced_by_a_new_snapshot(isolated_source: Source,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    """PostgreSQL removed WAL the slot needed while the relay was down: the relay says so,
    makes a new slot and snapshots the source, so every row reaches the topic again at its
    current state (instead of retrying a dead slot forever)."""
    source = isolated_source
    source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
    source.relay_in_thread()
    source.wait_streaming()
    _write_batch(source, 0)
    source.events(lambda ev: _latest_of(ev, "ledger") == _ledger_state(source))
    time.sleep(1)
    source.stop_relays()
    _write_batch(source, 50)                  # these changes' WAL will be gone
    _invalidate_slot(source)

    relay = source.relay_in_thread()
    final = _ledger_state(source)
    events = source.events(lambda ev: _latest_of(ev, "ledger") == final, timeout=120)
    assert any(e.value and e.value["op"] == "r" for e in events
               if e.topic.endswith(".ledger")), "no snapshot rows after the slot was lost"
    assert relay.metrics.slot_invalidations == 1
    assert "invalidated replication slot" in caplog.text
    assert "Re-snapshotting the source" in caplog.text

    # and it streams again from the new slot
    _write_batch(source, 100)
    final = _ledger_state(source)
    source.events(lambda ev: _latest_of(ev, "ledger") == final, timeout=120)


def test_an_invalidated_slot_stops_the_relay_when_snapshots_are_off(isolated_source: Source
                                                                    ) -> None:
    source = isolated_source
    source.sql("CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)")
    source.relay_in_thread()
    source.wait_streaming()
    source.stop_relays()
    _write_batch(source, 0)
    _invalidate_slot(source)
    relay = Relay(Config.from_env(source.env | {"CONTOUR_CDC_SNAPSHOT_MODE": "never"})
                  .cdc_source(source.name), source.config.kafka_bootstrap)
    with pytest.raises(SlotLostError, match="CONTOUR_CDC_SNAPSHOT_MODE=never") as raised:
        relay.run(threading.Event(), retry_delay=0.1)
    assert "pg_drop_replication_slot" in str(raised.value)


def test_a_truncate_never_holds_a_batch_waiting_to_be_landed(pg_kafka) -> None:  # noqa: ANN001
    """The loader skips truncates, so a truncate's offset must not be one a batch waits to
    see landed (confirmation "landed"): a partition holding only a truncate (``dialer seed
    --replace``) kept the slot unconfirmed until PostgreSQL invalidated it under load."""
    from ingestion.cdc.publisher import Publisher

    config = Config.from_env(pg_kafka.env)
    publisher = Publisher(config.kafka_bootstrap, partitions=1,
                          client_id=f"t-{random.randrange(1 << 30)}")
    topic = f"trunc{random.randrange(1 << 30)}.public.t"
    publisher.send(topic, None, b'{"op": "t"}', landed=False)
    publisher.flush()
    assert publisher.take_offsets() == {}
    publisher.send(topic, b'{"id": 1}', b'{"op": "c"}')
    publisher.flush()
    assert publisher.take_offsets() == {(topic, 0): 1}
    assert publisher.last_acked()[2] == 1
