"""Benchmark: loader rows/s Kafka → ClickHouse next to the raw consume rate, and landing delay.

    .venvs/core/bin/python bench/bench_landing.py [--messages 1000000] [--rate 5000]
                                                  [--seconds 30]

Starts its own broker and ClickHouse (`contour up kafka clickhouse`, private state folder, free
ports), produces --messages Debezium change events (6 columns, 3 partitions), then:

1. raw consume: the same client library (librdkafka) reads every message, doing nothing else;
2. loader: the default-mode loader lands all of them (parse, type, one block per table per
   batch, offsets in the rows) — rows/s from its start to the last insert;
3. delay: events produced at --rate/s for --seconds; the loader records, per message, broker
   timestamp → its block inserted (queryable).

Only the loader mode (the default) is measured; the ClickHouse Kafka-engine mode is not built
yet. Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from contour.config import Config  # noqa: E402
from ingestion.landing.loader import Loader  # noqa: E402
from tests.conftest import stack_env  # noqa: E402


def envelope(i: int) -> bytes:
    return orjson.dumps({
        "before": None, "op": "c", "ts_ms": 0, "transaction": None,
        "after": {"id": i, "campaign": i % 7, "phone": f"+7900{i}", "status": "answered",
                  "started_at": "2026-11-22T00:35:09.123456Z", "duration": "12.50"},
        "source": {"version": "bench", "connector": "postgresql", "name": "bench", "db": "b",
                   "schema": "public", "table": "calls", "txId": i, "lsn": i + 1,
                   "ts_ms": 1_700_000_000_000, "ts_us": 1_700_000_000_000_000,
                   "snapshot": "false", "sequence": None, "xmin": None}})


def produce(config: Config, topic: str, first: int, count: int, rate: float | None) -> None:
    producer = Producer({"bootstrap.servers": config.kafka_bootstrap, "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000})
    started = time.monotonic()
    for i in range(first, first + count):
        while True:
            try:
                producer.produce(topic, key=b'{"id":%d}' % i, value=envelope(i))
                break
            except BufferError:
                producer.poll(0.05)
        if rate:
            time.sleep(max(0.0, started + (i - first) / rate - time.monotonic()))
        if i % 5000 == 0:
            producer.poll(0)
    producer.flush(60)


def raw_consume_rate(config: Config, topic: str, count: int) -> float:
    consumer = Consumer({"bootstrap.servers": config.kafka_bootstrap, "group.id": "bench-raw",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < count:
        messages = consumer.consume(10_000, timeout=1)
        if messages and started is None:
            started = time.monotonic()
        seen += sum(1 for m in messages if not m.error())
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="contour-bench-landing-") as tmp:
        env = stack_env(Path(tmp) / "state") | {"CONTOUR_CDC_SOURCES": "bench"}
        subprocess.run([sys.executable, "-m", "contour", "up", "kafka", "clickhouse"], env=env,
                       cwd=ROOT, check=True, capture_output=True)
        try:
            config = Config.from_env(env)
            topic = "bench.public.calls"
            admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
            admin.create_topics([NewTopic(topic, num_partitions=3,
                                          replication_factor=1)])[topic].result()
            started = time.monotonic()
            produce(config, topic, 0, args.messages, None)
            print(f"produced {args.messages:,} messages in {time.monotonic() - started:.1f}s",
                  flush=True)
            raw = raw_consume_rate(config, topic, args.messages)
            print(f"raw consume: {raw:,.0f} messages/s", flush=True)

            loader = Loader(config, group_id="bench-loader")
            stop = threading.Event()
            thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
            started = time.monotonic()
            thread.start()
            while loader.loaded_rows < args.messages:
                time.sleep(0.05)
            load_rate = args.messages / (time.monotonic() - started)
            print(f"loader: {load_rate:,.0f} rows/s", flush=True)

            loader.landing_delays.clear()
            produce(config, topic, args.messages, int(args.rate * args.seconds), args.rate)
            time.sleep(2)
            delays = sorted(loader.landing_delays)
            stop.set()
            thread.join()
        finally:
            subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                           capture_output=True)

    def q(p: float) -> float:
        return delays[min(len(delays) - 1, int(p * len(delays)))] * 1000

    print()
    print(f"landing, {args.messages:,} Debezium messages, 3 partitions, one table")
    print(f"  raw consume (librdkafka, same client)   {raw:>10,.0f} messages/s")
    print(f"  loader Kafka → ClickHouse               {load_rate:>10,.0f} rows/s")
    print(f"  ratio loader / raw consume              {load_rate / raw:>10.1%}")
    print(f"live load {args.rate:,} rows/s for {args.seconds:.0f}s, {len(delays):,} rows:")
    print(f"  delay broker → queryable  p50 {q(0.5):,.0f} ms  p95 {q(0.95):,.0f} ms  "
          f"max {q(1.0):,.0f} ms")


if __name__ == "__main__":
    main()
