"""Benchmark: landing rows/s Kafka → ClickHouse in both modes, next to the raw consume rate.

    .venvs/core/bin/python bench/bench_landing.py [--messages 1000000] [--rate 5000]
                                                  [--seconds 30] [--modes loader,engine]

Starts its own broker and ClickHouse (`contour up kafka clickhouse`, private state folder, free
ports), produces --messages Debezium change events (6 columns, 3 partitions), then:

1. raw consume: the same client library (librdkafka) reads every message, doing nothing else;
2. loader: the default-mode loader lands all of them (parse, type, one block per table per
   batch, offsets in the rows) — rows/s from its start to the last insert;
3. delay: events produced at --rate/s for --seconds; the loader records, per message, broker
   timestamp → its block inserted (queryable);
4. engine: the raw table emptied (TRUNCATE: it keeps its columns, so rows go through the
   views), the Kafka-engine mode lands the same messages — rows/s from the first row landed
   to the last (its consumers' start-up, ~25 s of partition assignment, is printed apart);
5. its delay at --rate/s: each event's source.ts_us is its produce time, so
   ``_ingested_at - _source_ts`` (stamped in the insert) is produce → inserted.

Prints a table; not a test.
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
from ingestion.landing.engine import EngineLanding  # noqa: E402
from ingestion.landing.loader import Loader, clickhouse_client  # noqa: E402
from ingestion.landing.tables import table_name  # noqa: E402
from tests.conftest import stack_env  # noqa: E402


def envelope(i: int, ts_us: int = 1_700_000_000_000_000) -> bytes:
    return orjson.dumps({
        "before": None, "op": "c", "ts_ms": 0, "transaction": None,
        "after": {"id": i, "campaign": i % 7, "phone": f"+7900{i}", "status": "answered",
                  "started_at": "2026-11-22T00:35:09.123456Z", "duration": "12.50"},
        "source": {"version": "bench", "connector": "postgresql", "name": "bench", "db": "b",
                   "schema": "public", "table": "calls", "txId": i, "lsn": i + 1,
                   "ts_ms": ts_us // 1000, "ts_us": ts_us,
                   "snapshot": "false", "sequence": None, "xmin": None}})


def produce(config: Config, topic: str, first: int, count: int, rate: float | None) -> None:
    producer = Producer({"bootstrap.servers": config.kafka_bootstrap, "linger.ms": 5,
                         "queue.buffering.max.messages": 1_000_000})
    started = time.monotonic()
    for i in range(first, first + count):
        while True:
            try:
                value = envelope(i, time.time_ns() // 1000) if rate else envelope(i)
                producer.produce(topic, key=b'{"id":%d}' % i, value=value)
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


def measure_loader(config: Config, topic: str, messages: int, rate: int, seconds: float
                   ) -> dict[str, float]:
    loader = Loader(config, group_id="bench-loader")
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    while loader.loaded_rows < messages:
        time.sleep(0.05)
    load_rate = messages / (time.monotonic() - started)
    print(f"loader: {load_rate:,.0f} rows/s", flush=True)
    loader.landing_delays.clear()
    produce(config, topic, messages, int(rate * seconds), rate)
    time.sleep(2)
    delays = sorted(loader.landing_delays)
    stop.set()
    thread.join()
    return {"rate": load_rate, **quantiles(delays)}


def measure_engine(config: Config, topic: str, messages: int, rate: int, seconds: float
                   ) -> dict[str, float]:
    """The Kafka-engine mode over the same topic (its own consumer group, from the start),
    into the emptied raw table (without one — no loader run before — every message is held
    until the controller creates it, so the held path is what is measured)."""
    client = clickhouse_client(config)
    table = table_name(topic)
    for database in ("raw", "history"):
        client.command(f"TRUNCATE TABLE IF EXISTS {database}.{table}")

    def landed() -> int:
        try:
            return int(client.query(f"SELECT count() FROM raw.{table}").result_rows[0][0])
        except Exception:  # noqa: BLE001 - not created yet
            return 0

    engine = EngineLanding(config)
    stop = threading.Event()
    thread = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    while (count := landed()) == 0:
        time.sleep(0.2)
    first_at, first_count = time.monotonic(), count
    print(f"engine: first rows after {first_at - started:.1f}s", flush=True)
    while (count := landed()) < messages:
        time.sleep(0.2)
    engine_rate = (count - first_count) / (time.monotonic() - first_at)
    print(f"engine: {engine_rate:,.0f} rows/s", flush=True)
    produce(config, topic, messages, int(rate * seconds), rate)
    while landed() < messages + int(rate * seconds):
        time.sleep(0.2)
    delays = [r[0] / 1000 for r in client.query(
        f"SELECT dateDiff('millisecond', _source_ts, _ingested_at) FROM raw.{table} "
        "WHERE id >= {first:Int64}", parameters={"first": messages}).result_rows]
    stop.set()
    thread.join()
    return {"rate": engine_rate, "start_s": first_at - started, **quantiles(sorted(delays))}


def quantiles(delays: list[float]) -> dict[str, float]:
    def q(p: float) -> float:
        return delays[min(len(delays) - 1, int(p * len(delays)))] * 1000 if delays else 0.0
    return {"p50": q(0.5), "p95": q(0.95), "max": q(1.0), "n": float(len(delays))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--modes", default="loader,engine",
                        help="landing modes to measure, in this order (the engine mode needs "
                             "the raw table the loader creates)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[str, dict[str, float]] = {}
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
            if "loader" in modes:
                results["loader"] = measure_loader(config, topic, args.messages, args.rate,
                                                   args.seconds)
            if "engine" in modes:
                live = int(args.rate * args.seconds) if "loader" in modes else 0
                results["engine"] = measure_engine(config, topic, args.messages + live,
                                                   args.rate, args.seconds)
        finally:
            subprocess.run([sys.executable, "-m", "contour", "down"], env=env, cwd=ROOT,
                           capture_output=True)

    print()
    print(f"landing, {args.messages:,} Debezium messages, 3 partitions, one table")
    print(f"  raw consume (librdkafka, same client)   {raw:>10,.0f} messages/s")
    for mode, r in results.items():
        what = "loader Kafka → ClickHouse" if mode == "loader" else \
            "Kafka engine tables + views"
        print(f"  {what:<39} {r['rate']:>10,.0f} rows/s  ({r['rate'] / raw:.1%} of raw consume)"
              + (f"; first rows after {r['start_s']:.1f}s" if "start_s" in r else ""))
    for mode, r in results.items():
        how = "broker → queryable" if mode == "loader" else "produce → inserted"
        print(f"  {mode}: live load {args.rate:,} rows/s for {args.seconds:.0f}s, "
              f"{r['n']:,.0f} rows: delay {how} p50 {r['p50']:,.0f} ms  "
              f"p95 {r['p95']:,.0f} ms  max {r['max']:,.0f} ms")


if __name__ == "__main__":
    main()
