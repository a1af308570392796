"""What the landing tests share: a feed of hand-made Debezium events into fresh topics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contour.config import Config
from ingestion.landing.loader import clickhouse_client
from tests.conftest import Stack


@dataclass
class Feed:
    name: str
    env: dict[str, str]
    config: Config
    producer: Producer

    def topic(self, table: str) -> str:
        return f"{self.name}.public.{table}"

    def create(self, table: str, partitions: int = 2) -> None:
        admin = AdminClient({"bootstrap.servers": self.config.kafka_bootstrap})
        admin.create_topics([NewTopic(self.topic(table), num_partitions=partitions,
                                      replication_factor=1)])[self.topic(table)].result()

    def send(self, table: str, key: dict | None, value: dict | bytes | None,
             partition: int | None = None) -> None:
        raw = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
        kwargs = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(self.topic(table),
                                      key=json.dumps(key).encode() if key else None,
                                      value=raw, **kwargs)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.1)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


def event(op: str, lsn: int, before: dict | None = None, after: dict | None = None,
          table: str = "leads") -> dict:
    return {"before": before, "after": after, "op": op, "ts_ms": 0, "transaction": None,
            "source": {"version": "t", "connector": "postgresql", "name": "x", "db": "x",
                       "schema": "public", "table": table, "txId": lsn, "lsn": lsn,
                       "ts_ms": 1_700_000_000_000, "ts_us": 1_700_000_000_000_000,
                       "snapshot": "false", "sequence": None, "xmin": None}}


@pytest.fixture
def feed(services: Stack) -> Iterator[Feed]:
    stack = services.require("kafka", "clickhouse")
    name = f"land{uuid.uuid4().hex[:8]}"
    env = stack.env | {"CONTOUR_CDC_SOURCES": name}
    config = Config.from_env(env)
    yield Feed(name, env, config, Producer({"bootstrap.servers": config.kafka_bootstrap}))


def final(feed: Feed, table: str, columns: str = "id, name") -> list[tuple]:
    client = clickhouse_client(feed.config)
    try:
        return client.query(f"SELECT {columns} FROM raw.{feed.name}__{table} FINAL "
                            "ORDER BY id").result_rows
    except Exception:  # noqa: BLE001 - the table may not exist yet
        return []
