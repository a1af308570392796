"""The loader: CDC topics → ClickHouse raw tables, exactly once.

- The loader reads every partition of every topic of the captured sources; it assigns them
  itself (no group rebalance to wait for after a crash) and looks for new topics and
  partitions every few seconds. Messages are batched (size and time bounded) and each batch is
  inserted as one block per table. Run one loader per deployment: it is supervised and
  restarted, not scaled out.
- Exactly once: every row carries its Kafka partition and offset, and a block insert is atomic.
  On start the loader seeks each partition to one past the highest offset its table holds, so a
  crash at any point neither loses nor duplicates a row. The consumer group's committed offsets
  are written too, but only so that the usual lag tools can read them.
- A topic that started again (the embedded broker keeps messages in memory: restarted, its
  topics begin again at offset 0) is detected by its content: a position is used only if the
  broker's message at the highest landed offset is the one landed there, otherwise the
  partition is read from its start (rows landed before fold with their copies). A running
  loader that loses its broker connection starts over the same way, so no position of the
  old log is applied to the new one.
- Bad input: a message that is not JSON, not a Debezium envelope, or does not fit its table goes
  to ``raw._dead_letters`` with the reason; the loader goes on. Dead letters are written after
  the rows of their batch and deduplicated by (topic, partition, offset), so a crash between the
  two inserts re-creates the same dead letter, never a second one. Tombstones carry no row and
  are skipped; truncate events are counted and skipped (the raw tables keep history).
- A new column in the events is added to the table (ALTER TABLE ADD COLUMN) on the fly, and
  to its history table and current-state view (see :mod:`ingestion.landing.tables`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from contour.config import Config
from ingestion.broker_probe import broker_messages, message_lsn
from ingestion.landing.catalog import Catalog
from ingestion.landing.tables import (
    DEAD_LETTER_COLUMNS,
    META_COLUMNS,
    DoesNotFit,
    RawTable,
    connect_payload,
    insert_landing_metrics,
    table_name,
)
from ingestion.source_catalog import SourceCatalogs
from ingestion.status import RollingRate, write_status

log = logging.getLogger(__name__)
META_NAMES = list(META_COLUMNS)


class Poison(ValueError):
    """A message that cannot become a row."""


class BrokerConnectionLost(ConnectionError):
    """The consumer lost the broker: the loop starts over from verified positions."""


def clickhouse_client(config: Config) -> Any:
    url = urlsplit(config.clickhouse_url)
    return clickhouse_connect.get_client(
        host=url.hostname, port=url.port or (8443 if url.scheme == "https" else 8123),
        username=url.username or "default", password=url.password or "",
        secure=url.scheme == "https")


@dataclass
class Batch:
    #: per table, rows as lists: the table's columns in order, then META_NAMES but the last
    rows: dict[str, list[list[object]]] = field(default_factory=lambda: defaultdict(list))
    dead: list[list[object]] = field(default_factory=list)
    messages: int = 0
    broker_ts_ms: list[int] = field(default_factory=list)  # when the broker stored each message
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # highest per partition
    #: per partition, (offset, source LSN) of its newest message that lands no raw row but
    #: has a source LSN (a truncate, or a dead letter): a position the relay can check in the
    #: broker's log like a row's (a partition may hold nothing else)
    rowless: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)


class Loader:
    def __init__(self, config: Config, *, group_id: str = "contour-landing",
                 batch_size: int = 20_000, batch_seconds: float = 0.5) -> None:
        self.config = config
        self.group_id = group_id
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.client = clickhouse_client(config)
        self.insert_client = clickhouse_client(config)  # the flusher thread's
        # (a column whose first values are nulls takes its source column's type)
        self.catalog = Catalog(self.client, SourceCatalogs(config).connect_type)
        self.loaded_rows = 0
        self.dead_letters = 0
        self.truncates = 0
        #: partitions found to be a new incarnation of their topic, read again from the start
        self.incarnations = 0
        #: set by the consumer's error callback when the broker connection went down: the
        #: broker may have restarted with new, empty logs (see resume_offsets)
        self._broker_lost = threading.Event()
        self._last_ts_us = -1
        self._last_ts = datetime.fromtimestamp(0, UTC)
        self.status_path = config.state_dir / "landing" / "loader.status.json"
        self._rate = RollingRate()
        self.assigned: set[tuple[str, int]] = set()
        self._last_discovery = 0.0
        #: (topic, partition) → (highest offset landed or skipped, highest source LSN landed)
        self.positions: dict[tuple[str, int], tuple[int, int]] = {}
        self._positions_changed: set[tuple[str, int]] = set()
        #: (topic, partition) → (offset, source LSN) of the newest row landed
        self.probes: dict[tuple[str, int], tuple[int, int]] = {}
        #: (topic, partition) → (offset, time) of its previous metrics row, for its own rate
        self._reported: dict[tuple[str, int], tuple[int, float]] = {}
        self._last_metrics = 0.0
        #: seconds from the broker storing a message to its row being queryable
        self.landing_delays: deque[float] = deque(maxlen=100_000)

    # ------------------------------------------------------------------ tables
    @property
    def tables(self) -> dict[str, RawTable]:
        return self.catalog.tables

    def prepare(self) -> None:
        self.catalog.prepare()

    def landed_positions(self, partitions: list[tuple[str, int]]
                         ) -> dict[tuple[str, int], tuple[int, int] | None]:
        """Per partition the highest offset stored in ClickHouse and that row's source LSN
        (``None``: nothing). One query per table: the tables are ordered by key, so each
        query reads the whole table — once per partition made a restart slow."""
        out: dict[tuple[str, int], tuple[int, int] | None] = dict.fromkeys(partitions)
        topics: dict[str, list[int]] = defaultdict(list)
        for topic, partition in partitions:
            topics[topic].append(partition)
        for topic, wanted in topics.items():
            name = table_name(topic)
            if name not in self.tables:
                continue
            for partition, top, lsn in self.client.query(
                    f"SELECT _kafka_partition, max(_kafka_offset), argMax(_lsn, _kafka_offset) "
                    f"FROM {self.tables[name].qualified} WHERE _kafka_partition IN "
                    "{p:Array(UInt32)} GROUP BY _kafka_partition",
                    parameters={"p": wanted}).result_rows:
                out[(topic, int(partition))] = (int(top), int(lsn))
        return out

    def resume_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where to read each partition from: one past the highest offset ClickHouse holds for
        it — if the broker's message at that offset is the one landed there. Otherwise the
        topic is a new incarnation (the embedded broker keeps messages in memory: after a
        restart its topics start again from offset 0, and a position of the old log would
        skip the new one's first messages), and the partition is read from its beginning:
        rows landed before fold with their copies (same key, version, partition, offset)."""
        landed = self.landed_positions(partitions)
        seen = self._broker_messages({tp: pos[0] for tp, pos in landed.items() if pos})
        out: dict[tuple[str, int], int] = {}
        for tp, pos in landed.items():
            if pos is None:
                out[tp] = OFFSET_BEGINNING
            elif seen.get(tp) is not None and message_lsn(seen[tp]) == pos[1]:
                out[tp] = pos[0] + 1
            else:
                log.warning("%s[%d]: the broker's message at offset %d is not the one landed "
                            "there (%s): a new incarnation of the topic; reading the partition "
                            "from its beginning", tp[0], tp[1], pos[0],
                            "none there" if seen.get(tp) is None else "another one")
                self.incarnations += 1
                out[tp] = OFFSET_BEGINNING
        return out

    def _broker_messages(self, offsets: dict[tuple[str, int], int]
                         ) -> dict[tuple[str, int], bytes | None]:
        return broker_messages(self.config.kafka_bootstrap, f"{self.group_id}.probe", offsets)

    # ------------------------------------------------------------------ messages
    def _row(self, batch: Batch, topic: str, partition: int, offset: int,
             key_bytes: bytes | None, value: bytes) -> None:
        try:
            envelope = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise Poison(f"not JSON: {exc}") from None
        if not isinstance(envelope, dict):
            raise Poison("not a Debezium envelope: not a JSON object")
        payload = connect_payload(envelope)
        if not isinstance(payload, dict):
            raise Poison("not a Debezium envelope: payload is not an object")
        op = payload.get("op")
        source = payload.get("source")
        if op not in ("c", "u", "d", "r", "t") or not isinstance(source, dict):
            raise Poison("not a Debezium envelope: no op/source")
        lsn = source.get("lsn")
        if op == "t":
            self.truncates += 1
            if isinstance(lsn, int):
                batch.rowless[(topic, partition)] = (offset, lsn)
            return
        row = payload.get("before" if op == "d" else "after")
        ts_us = source.get("ts_us") or (source.get("ts_ms") or 0) * 1000
        if not isinstance(row, dict) or not isinstance(lsn, int):
            raise Poison(f"not a Debezium envelope: op {op!r} without a row or source.lsn")
        key = None
        if key_bytes is not None:
            try:
                key = orjson.loads(key_bytes)
            except orjson.JSONDecodeError:
                raise Poison("key is not JSON") from None
            key = connect_payload(key)
        table = self.catalog.table_for(table_name(topic), key, row)
        out: list[object] = []
        try:
            for column, convert in table.coercers():
                out.append(convert(row.get(column)))  # type: ignore[operator]
        except DoesNotFit as exc:
            raise Poison(f"column {column}: {exc}") from None
        if ts_us != self._last_ts_us:  # transactions share their commit time
            self._last_ts_us, self._last_ts = ts_us, datetime.fromtimestamp(ts_us / 1e6, UTC)
        out += [op, 1 if op == "d" else 0, lsn, self._last_ts, source.get("txId"), lsn,
                partition, offset]
        batch.rows[table.name].append(out)

    def add(self, batch: Batch, topic: str, partition: int, offset: int,
            key: bytes | None, value: bytes | None) -> None:
        batch.messages += 1
        batch.offsets[(topic, partition)] = offset
        if value is None:
            return  # tombstone: the delete before it carries the row
        try:
            self._row(batch, topic, partition, offset, key, value)
        except Poison as exc:
            batch.dead.append([topic, partition, offset,
                               key.decode(errors="replace") if key is not None else None,
                               value.decode(errors="replace"), str(exc), datetime.now(UTC)])
            lsn = message_lsn(value)
            if lsn is not None:  # stored in raw._dead_letters: it can be a probe too
                batch.rowless[(topic, partition)] = (offset, lsn)

    def flush(self, batch: Batch) -> None:
        """Insert the batch, then advance the positions (what the loop does, in one call)."""
        self.insert(batch)
        self.advance(batch)

    def insert(self, batch: Batch) -> float:
        """One block per table, then the dead letters. Runs in the flusher thread while the
        next batch is parsed, on a client of its own; it reads the table's columns once (a
        column is in ``columns`` only once its ALTER is done, so the snapshot is safe)."""
        ingested_at = datetime.now(UTC)
        for name, rows in batch.rows.items():
            table = self.tables[name]
            columns = list(table.columns)
            width = len(columns) + len(META_NAMES) - 1
            for row in rows:  # rows made before a new column appeared get it as null
                if len(row) < width:
                    row[-8:-8] = [None] * (width - len(row))
                row.append(ingested_at)
            self.insert_client.insert(
                table.qualified, rows, column_names=[*columns, *META_NAMES],
                column_type_names=[*table.columns.values(), *META_COLUMNS.values()])
        if batch.dead:
            self.insert_client.insert("raw._dead_letters", batch.dead,
                                      column_names=list(DEAD_LETTER_COLUMNS),
                                      column_type_names=list(DEAD_LETTER_COLUMNS.values()))
        return time.time()  # from now on the rows are queryable

    def advance(self, batch: Batch) -> None:
        """After the batch is stored: counters and per-partition positions (loop thread)."""
        self.loaded_rows += sum(len(rows) for rows in batch.rows.values())
        for tp, offset in batch.offsets.items():
            _, lsn = self.positions.get(tp, (-1, 0))
            self.positions[tp] = (offset, lsn)
            self._positions_changed.add(tp)
        for name, rows in batch.rows.items():
            topic = next(t for t, _ in batch.offsets if table_name(t) == name)
            for row in rows:
                tp = (topic, row[-3])  # rows end with … _lsn, partition, offset, ingested_at
                offset, lsn = self.positions[tp]
                if row[-4] > lsn:
                    self.positions[tp] = (offset, row[-4])
                self.probes[tp] = (row[-2], row[-4])  # rows are in offset order
        for tp, (offset, lsn) in batch.rowless.items():
            if offset > self.probes.get(tp, (-1, 0))[0]:
                self.probes[tp] = (offset, lsn)
        if batch.dead:
            self.dead_letters += len(batch.dead)
            log.warning("%d dead letters (last: %s)", len(batch.dead), batch.dead[-1][5])

    def write_metrics(self, consumer: Consumer, every: float = 5.0) -> None:
        """Landing metrics per partition, from the loader's own positions: what it landed and
        the high watermark the broker reported with the last fetch (not ListOffsets, which
        Tansu answers wrongly). ``rows_per_s`` is the partition's own rate (messages landed
        since its previous row), so summing it over partitions gives the loader's rate."""
        now = time.time()
        if now - self._last_metrics < every or not self._positions_changed:
            return
        self._last_metrics = now
        rows = []
        for tp in sorted(self._positions_changed):
            offset, lsn = self.positions[tp]
            _, high = consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
            high = high if high is not None and high >= 0 else offset + 1
            before, then = self._reported.get(tp, (offset, now))
            rate = (offset - before) / (now - then) if now > then else 0.0
            self._reported[tp] = (offset, now)
            probe_offset, probe_lsn = self.probes.get(tp, (-1, 0))
            rows.append([datetime.now(UTC), tp[0], tp[1], offset, high,
                         max(0, high - offset - 1), lsn, rate, probe_offset, probe_lsn])
        self._positions_changed.clear()
        insert_landing_metrics(self.client, rows)

    def _write_status(self) -> None:
        write_status(self.status_path, {
            "loaded_rows": self.loaded_rows, "dead_letters": self.dead_letters,
            "truncates_skipped": self.truncates, "rows_per_s": self._rate(self.loaded_rows),
            "tables": len(self.tables), "updated_at": time.time(),
        })

    # ------------------------------------------------------------------ loop
    def consumer(self) -> Consumer:
        return Consumer({
            "bootstrap.servers": self.config.kafka_bootstrap, "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 5000, "session.timeout.ms": 10_000,
            # (a fetch returns as soon as there is data; the embedded broker walks a
            # partition's stored batches within this wait and answers empty when it runs
            # out, so a short wait starves the loader once partitions hold many batches)
            "fetch.wait.max.ms": 500, "logger": logging.getLogger("librdkafka"),
            "error_cb": self._on_consumer_error,
        })

    def _on_consumer_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            self._broker_lost.set()

    def run(self, stop: threading.Event, retry_delay: float = 2.0) -> None:
        """Load until ``stop``; after any failure (ClickHouse or the broker away, a timeout)
        start over from the positions stored in ClickHouse, which is always safe."""
        while not stop.is_set():
            try:
                self.run_once(stop)
            except Exception as exc:  # noqa: BLE001 - log, wait, resume from ClickHouse
                if stop.is_set():
                    break
                log.warning("loader: %s; resuming from the positions in ClickHouse in %.0fs",
                            exc, retry_delay)
                stop.wait(retry_delay)

    def discover(self, consumer: Consumer, every: float = 5.0) -> None:
        """Assign the partitions of the sources' topics not read yet, each from its position in
        ClickHouse."""
        if time.monotonic() - self._last_discovery < every:
            return
        self._last_discovery = time.monotonic()
        prefixes = tuple(f"{s}." for s in self.config.cdc_source_names)
        found = [(topic, p) for topic, meta in consumer.list_topics(timeout=10).topics.items()
                 if topic.startswith(prefixes) and meta.error is None
                 for p in meta.partitions]
        starts = self.resume_offsets(sorted(tp for tp in found if tp not in self.assigned))
        new = [TopicPartition(t, p, offset) for (t, p), offset in starts.items()]
        if new:
            consumer.incremental_assign(new)
            self.assigned.update((tp.topic, tp.partition) for tp in new)
            log.info("reading %d more partitions (%d in all), each from its position in "
                     "ClickHouse", len(new), len(self.assigned))

    def collect(self, consumer: Consumer) -> Batch:
        """Read and parse up to ``batch_size`` messages or for ``batch_seconds``."""
        batch = Batch()
        deadline = time.monotonic() + self.batch_seconds
        while batch.messages < self.batch_size and time.monotonic() < deadline:
            messages = consumer.consume(min(5000, self.batch_size - batch.messages),
                                        timeout=max(0.0, deadline - time.monotonic()))
            if self._broker_lost.is_set():
                # what came with or after a lost connection may be a new incarnation's log
                # read from the old position: start over, verifying every position first
                raise BrokerConnectionLost("the broker connection was lost (a restart may "
                                           "have emptied its topics); verifying positions")
            for m in messages:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer: %s", m.error())
                    continue
                self.add(batch, m.topic(), m.partition(), m.offset(), m.key(), m.value())
                batch.broker_ts_ms.append(m.timestamp()[1])
        return batch

    def _finish(self, consumer: Consumer, batch: Batch, insert: Future[float]) -> None:
        """Wait for a batch's insert (re-raising its failure), then advance past it."""
        done = insert.result()
        self.landing_delays.extend(done - t / 1000 for t in batch.broker_ts_ms if t > 0)
        self.advance(batch)  # (after the delays: loaded_rows then covers them)
        consumer.commit(offsets=[TopicPartition(t, p, o + 1)  # advisory only
                                 for (t, p), o in batch.offsets.items()], asynchronous=True)

    def run_once(self, stop: threading.Event) -> None:
        """The loop. Batch N+1 is read and parsed while batch N is inserted by the flusher
        thread (the loader's Python work and ClickHouse's insert overlap); inserts stay
        strictly one after the other, and positions only advance once an insert returned."""
        self.assigned.clear()
        self._last_discovery = 0.0
        self._broker_lost.clear()
        self.prepare()
        consumer = self.consumer()
        in_flight: tuple[Batch, Future[float]] | None = None
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flusher") as flusher:
                while not stop.is_set():
                    self.discover(consumer)
                    batch = self.collect(consumer)
                    if in_flight is not None:
                        self._finish(consumer, *in_flight)
                        in_flight = None
                    if batch.messages:
                        in_flight = (batch, flusher.submit(self.insert, batch))
                    self._write_status()
                    self.write_metrics(consumer)
                if in_flight is not None:
                    self._finish(consumer, *in_flight)
        finally:
            consumer.close()
