"""Fixtures for CDC tests: a fresh source database per test, a relay, a consumer."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from contour.config import Config
from ingestion.cdc.durability import LandedPositions
from ingestion.cdc.relay import Relay
from tests.conftest import ROOT, Stack


@dataclass
class Event:
    topic: str
    partition: int
    offset: int
    key: dict | None
    value: dict | None  # None: tombstone


@dataclass
class Source:
    stack: Stack
    name: str
    env: dict[str, str]
    config: Config
    threads: list[tuple[threading.Thread, threading.Event]] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return self.config.pg_dsn(self.name)

    def sql(self, *statements: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def relay_in_thread(self, landed: bool = False, **settings: str) -> Relay:
        """A relay in a thread; ``settings``: environment variables over the source's.
        ``landed``: confirm what ClickHouse holds (the service's default) instead of what the
        broker acknowledged (these tests' consumers stand in for a durable Kafka)."""
        config = Config.from_env(self.env | settings) if settings else self.config
        relay = Relay(config.cdc_source(self.name), config.kafka_bootstrap,
                      flush_interval=0.05, landed=LandedPositions(config) if landed else None)
        stop = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop, 0.5), daemon=True)
        thread.start()
        self.threads.append((thread, stop))
        return relay

    def wait_streaming(self) -> None:
        """Block until the relay streams (its first heartbeat is published)."""
        self.events(lambda ev: bool(ev), topic_filter=lambda t: "heartbeat" in t)

    def relay_process(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "contour", "cdc", "run", "--source",
                                 self.name], env=self.env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(proc)
        return proc

    def stop_relays(self) -> None:
        for thread, stop in self.threads:
            stop.set()
            thread.join(timeout=30)
        self.threads.clear()
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        self.processes.clear()

    def events(self, until: Callable[[list[Event]], bool], timeout: float = 60.0,
               topic_filter: Callable[[str], bool] | None = None) -> list[Event]:
        """Read every event of this source's topics from the start until ``until`` holds."""
        wanted = topic_filter or (lambda t: not t.startswith(f"{self.name}.contour_cdc."))
        consumer = KafkaConsumer(bootstrap_servers=self.config.kafka_bootstrap,
                                 enable_auto_commit=False, consumer_timeout_ms=500)
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        assigned: set[TopicPartition] = set()
        try:
            while time.monotonic() < deadline:
                topics = {t for t in consumer.topics() if t.startswith(f"{self.name}.")
                          and wanted(t)}
                parts = {TopicPartition(t, p) for t in topics
                         for p in (consumer.partitions_for_topic(t) or ())}
                if parts != assigned:
                    consumer.assign(sorted(parts))
                    for tp in parts - assigned:
                        consumer.seek(tp, 0)
                    for tp in assigned & parts:
                        consumer.seek(tp, sum(1 for e in events if (e.topic, e.partition)
                                              == (tp.topic, tp.partition)))
                    assigned = parts
                for batch in consumer.poll(timeout_ms=300).values():
                    for r in batch:
                        events.append(Event(r.topic, r.partition, r.offset,
                                            json.loads(r.key) if r.key else None,
                                            json.loads(r.value) if r.value else None))
                if until(events):
                    return events
        finally:
            consumer.close()
        raise AssertionError(f"condition not met after {timeout}s; {len(events)} events read")


@contextmanager
def fresh_source(pg_kafka: Stack, **settings: str) -> Iterator[Source]:
    """A new source database (and its relay's slot) for one test; dropped afterwards."""
    name = f"cdc_{uuid.uuid4().hex[:8]}"
    env = pg_kafka.env | {"CONTOUR_CDC_SOURCES": name, "CONTOUR_CDC_HEARTBEAT_SECONDS": "1",
                          "CONTOUR_CDC_PARTITIONS": "2", **settings}
    config = Config.from_env(env)
    with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    src = Source(pg_kafka, name, env, config)
    try:
        yield src
    finally:
        src.stop_relays()
        with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s AND NOT active", (f"contour_{name}",))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def source(pg_kafka: Stack) -> Iterator[Source]:
    with fresh_source(pg_kafka) as src:
        yield src


def changes(events: list[Event], table: str) -> list[tuple[str, dict | None, dict | None]]:
    """(op, before, after) of a table's non-tombstone events, in partition order."""
    return [(e.value["op"], e.value["before"], e.value["after"]) for e in events
            if e.value is not None and e.topic.endswith(f".{table}")]
