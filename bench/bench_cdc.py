"""Benchmark: CDC relay throughput against the raw replication transport, and commit delay.

    .venvs/core/bin/python bench/bench_cdc.py [--changes 1000000] [--tx-size 1000]
                                              [--rate 5000] [--seconds 30]
                                              [--no-python-codec]

Starts its own PostgreSQL and broker (`contour up postgres kafka`, private state folder, free
ports), then:

1. writes --changes row changes in transactions of --tx-size (INSERTs into a 6-column table);
2. transport baseline: reads the same WAL through a second pgoutput slot, counting change
   messages without decoding them — the machine's ceiling for logical replication;
3. relay: publishes the same backlog (decode → Debezium JSON → Kafka, acks=all) and reports
   events/s from the first to the last broker acknowledgement, and the ratio to (2); the
   relay writes rows with the native row codec when it is built (ingestion/cdc/rowcodec.py),
   and then, for comparison, publishes a second backlog of the same size with the
   pure-Python row codec, on a fresh topic and table (--no-python-codec skips it);
4. delay: writes --rate changes/s (50 transactions/s, from another process) for --seconds with
   the relay running; the relay measures each transaction's commit → broker acknowledgement.

For (2) and (3) it also prints the CPU each side used (this process: the reader or the relay
with its producer threads; PostgreSQL, with the walsender; the broker), as a share of one core,
next to the machine's core count: what was left of the machine during the run.

Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from contour.config import Config  # noqa: E402
from ingestion.cdc import pgoutput  # noqa: E402
from ingestion.cdc.relay import Relay  # noqa: E402
from ingestion.cdc.replication import ReplicationStream  # noqa: E402
from tests.conftest import stack_env  # noqa: E402

TABLE = ("CREATE TABLE calls (id bigint PRIMARY KEY, campaign int, phone text, status text, "
         "started_at timestamptz, duration numeric(10,2))")


class CpuMeter:
    """CPU time (user + system) of this process and of the stack's PostgreSQL and broker with
    their children: the live ones, and through their parent's ``children_*`` times those that
    ended (a walsender ends with its connection)."""

    def __init__(self, env: dict[str, str]) -> None:
        # (exits 1 here: only postgres and kafka run)
        status = subprocess.run([sys.executable, "-m", "contour", "status", "--json"], env=env,
                                cwd=ROOT, capture_output=True, text=True)
        self.roots = {"this process": [os.getpid()]} | {
            s["service"]: [p["pid"] for p in s["processes"] if p["running"]]
            for s in json.loads(status.stdout) if s["service"] in ("postgres", "kafka")}
        self._start: dict[str, float] = {}
        self._started = 0.0
        self.shares: dict[str, float] = {}

    def _totals(self) -> dict[str, float]:
        totals = {}
        for group, pids in self.roots.items():
            total = 0.0
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    cpu = root.cpu_times()
                    total += cpu.user + cpu.system
                    if group != "this process":  # (its children are the bench's commands)
                        total += cpu.children_user + cpu.children_system
                        for child in root.children(recursive=True):
                            cpu = child.cpu_times()
                            total += cpu.user + cpu.system
                except psutil.Error:
                    continue
            totals[group] = total
        return totals

    def __enter__(self) -> CpuMeter:
        self._start = self._totals()
        self._started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        elapsed = time.monotonic() - self._started
        time.sleep(1.0)  # the phase's walsender ended with its connection: let it be reaped
        self.shares = {group: (total - self._start.get(group, 0.0)) / elapsed
                       for group, total in self._totals().items()}

    def describe(self) -> str:
        parts = ", ".join(f"{group} {share:.0%}" for group, share in self.shares.items())
        return (f"CPU (of one core): {parts}; total {sum(self.shares.values()):.0%} of "
                f"{psutil.cpu_count() * 100}%")


def contour(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "contour", *args], env=env, cwd=ROOT, check=True,
                   capture_output=True)


def write_backlog(dsn: str, changes: int, tx_size: int) -> float:
    started = time.monotonic()
    with psycopg.connect(dsn) as conn:
        for first in range(0, changes, tx_size):
            conn.execute(
                "INSERT INTO calls SELECT g, g %% 7, '+7900' || g, 'answered', now(), g %% 300 "
                "FROM generate_series(%s::bigint, %s::bigint) g", (first, first + tx_size - 1))
            conn.commit()
    return time.monotonic() - started


def transport_rate(dsn: str, slot: str, publication: str, changes: int) -> float:
    stream = ReplicationStream(dsn)
    seen = 0
    started = None
    stream.start(slot, publication, 0)
    while seen < changes:
        message = stream.read(timeout=5)
        if message is None:
            raise SystemExit(f"transport stalled at {seen} changes")
        if isinstance(message, pgoutput.XLogData):
            started = started or time.monotonic()
            if message.payload[:1] == b"I":
                seen += 1
    elapsed = time.monotonic() - started
    stream.close()
    return changes / elapsed


def relay_rate(config: Config, name: str, changes: int, python_codec: bool = False,
               ) -> tuple[float, Relay]:
    relay = Relay(config.cdc_source(name), config.kafka_bootstrap)
    if python_codec:  # the pure-Python row reader, as on a machine without a C compiler
        relay.row_codec = None
        relay.metrics.row_codec = "python"
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    first_event_at = None
    baseline = relay.metrics.events_total
    while True:
        time.sleep(0.05)
        published = relay.metrics.events_total - baseline
        if published and first_event_at is None:
            first_event_at = time.monotonic()
        stored = relay.offsets_store.load()
        if published >= changes and stored and stored.events >= baseline + changes:
            break
        if time.monotonic() - started > 3600:
            raise SystemExit("relay did not finish in an hour")
    elapsed = time.monotonic() - (first_event_at or started)
    stop.set()
    thread.join()
    return changes / elapsed, relay


def drop_topics(bootstrap: str, *topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics)).values():
        future.result(timeout=30)
    time.sleep(2)


def _write_at_rate(dsn: str, rate: int, seconds: float) -> None:
    """Runs in its own process, so that it does not compete with the relay for the GIL."""
    tx_per_s = 50
    rows = max(1, rate // tx_per_s)
    with psycopg.connect(dsn) as conn:
        next_id = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            conn.execute("INSERT INTO live SELECT g, 1 FROM generate_series(%s::bigint, "
                         "%s::bigint) g", (next_id, next_id + rows - 1))
            conn.commit()
            next_id += rows
            time.sleep(max(0.0, t0 + next_id / rate - time.monotonic()))


def live_delay(config: Config, name: str, rate: int, seconds: float) -> list[float]:
    """Commit → broker acknowledgement of every transaction, as the relay measures it."""
    with psycopg.connect(config.pg_dsn(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS live (id bigint PRIMARY KEY, v int)")
    relay = Relay(config.cdc_source(name), config.kafka_bootstrap)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(3)  # streaming
    relay.metrics.ack_delays.clear()
    writer = multiprocessing.Process(target=_write_at_rate,
                                     args=(config.pg_dsn(name), rate, seconds))
    writer.start()
    writer.join()
    time.sleep(2)
    stop.set()
    thread.join()
    return list(relay.metrics.ack_delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--tx-size", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=5000, help="changes/s for the delay run")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-python-codec", dest="python_codec", action="store_false",
                        help="skip the second relay run with the pure-Python row codec")
    args = parser.parse_args()
    python_rate = None

    with tempfile.TemporaryDirectory(prefix="contour-bench-cdc-") as tmp:
        name = "benchcdc"
        env = stack_env(Path(tmp) / "state") | {"CONTOUR_CDC_SOURCES": name,
                                                "CONTOUR_CDC_HEARTBEAT_SECONDS": "5"}
        contour(env, "up", "postgres", "kafka")
        try:
            config = Config.from_env(env)
            with psycopg.connect(config.pg_dsn("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            dsn = config.pg_dsn(name)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(TABLE)
            # the relay creates its slot on the empty table, then stops
            relay = Relay(config.cdc_source(name), config.kafka_bootstrap)
            stop = threading.Event()
            stop_soon = threading.Timer(5, stop.set)
            stop_soon.start()
            relay.run(stop)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_create_logical_replication_slot('bench_raw', "
                             "'pgoutput')")
            write_s = write_backlog(dsn, args.changes, args.tx_size)
            print(f"wrote {args.changes:,} changes in {args.changes // args.tx_size:,} "
                  f"transactions in {write_s:.1f}s", flush=True)
            with CpuMeter(env) as transport_cpu:
                transport = transport_rate(dsn, "bench_raw", f"contour_{name}", args.changes)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot('bench_raw')")
            print(f"transport baseline: {transport:,.0f} changes/s", flush=True)
            with CpuMeter(env) as relay_cpu:
                rate, relay = relay_rate(config, name, args.changes)
            codec = relay.metrics.row_codec
            print(f"relay ({codec} row codec): {rate:,.0f} events/s", flush=True)
            if args.python_codec and codec != "python":
                # a fresh topic and table: the broker keeps its log in memory, and a second
                # run on top of the first one's million events measured ~20 % slower
                drop_topics(config.kafka_bootstrap, f"{name}.public.calls")
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("TRUNCATE calls")
                write_backlog(dsn, args.changes, args.tx_size)
                python_rate, _ = relay_rate(config, name, args.changes, python_codec=True)
                print(f"relay (python row codec, a fresh topic and backlog of the same size): "
                      f"{python_rate:,.0f} events/s", flush=True)
            delays = live_delay(config, name, args.rate, args.seconds)
        finally:
            contour(env, "down")

    delays.sort()
    p = (lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]) if delays else \
        (lambda q: float("nan"))
    print()
    print(f"CDC relay, {args.changes:,} row changes in transactions of {args.tx_size:,}")
    print(f"  raw replication transport (ceiling)  {transport:>10,.0f} changes/s")
    print(f"  relay: commit → broker ack           {rate:>10,.0f} events/s  ({codec} row codec)")
    print(f"  ratio relay / transport              {rate / transport:>10.1%}")
    if python_rate is not None:
        print(f"  relay, pure-Python row codec         {python_rate:>10,.0f} events/s  "
              f"({python_rate / transport:.1%}; native ×{rate / python_rate:.2f})")
    print(f"  transport phase {transport_cpu.describe()}")
    print(f"  relay phase     {relay_cpu.describe()}")
    print(f"live load {args.rate:,} changes/s for {args.seconds:.0f}s, "
          f"{len(delays):,} transactions:")
    print(f"  delay commit → broker ack  p50 {p(0.5) * 1000:,.0f} ms  "
          f"p95 {p(0.95) * 1000:,.0f} ms  max {delays[-1] * 1000 if delays else 0:,.0f} ms")
    if delays:
        print(f"  mean {statistics.mean(delays) * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
