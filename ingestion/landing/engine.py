"""Landing, second mode: ClickHouse pulls the CDC topics (``contour loader run --mode engine``).

The classic industrial set-up: for every CDC topic a Kafka engine table, and materialized
views that parse its messages into the same ``raw.*`` tables the loader fills, with the same
SQL form of the loader's parse (:mod:`ingestion.landing.sql_parse`). This process only
*controls* it — ClickHouse's own consumers read the broker and insert:

- ``kafka_queues.<name>``: the Kafka engine table of one topic (format RawBLOB: one row per
  message, with the virtual ``_topic``, ``_partition``, ``_offset`` and ``_key``), consumer
  group ``contour-engine.<topic>`` (one group per topic: a new topic never makes the others
  rebalance). The database has the Memory engine: the embedded ClickHouse cannot reopen a data
  folder that holds a Kafka table (PLATFORM.md), so these are never persisted and the
  controller creates them again whenever they are missing (a restarted ClickHouse resumes
  from the groups' committed offsets).
- ``<name>__dead`` → ``raw._dead_letters``: messages that are no Debezium change.
- ``<name>__rows_<g>`` → ``raw.<name>``: changes of the columns the table has, converted.
- ``<name>__held_<g>`` → ``raw._kafka_pending``: changes the table is not ready for (no table
  yet, a new column) or whose values do not fit it.

Tables follow the events, as with the loader: every second the controller takes the held
messages older than ``SETTLE_S`` (so every insert that stamped them has committed), creates
the table or adds the columns they show (:class:`ingestion.landing.catalog.Catalog`, types
from the first message carrying the column), replaces the topic's views with a new
generation ``g`` (the new ones are created before the old are dropped, so every message
meets a view; one that meets both lands twice with the same key, version and offset, which
the ReplacingMergeTree tables fold), parses the held messages with the same SQL into
``raw.<name>`` (or ``raw._dead_letters``) and deletes them from the holding table.

Delivery: the Kafka engine commits a block's offsets after its views' inserts; a crash
between the two delivers the block again — rows equal to the landed ones (same key,
``_version``, partition and offset), folded by the raw tables' ReplacingMergeTree (``FINAL``
reads them once). Differences from the loader: an empty message is taken for a tombstone
(the engine does not tell null from empty); ``raw._landing_metrics`` rows come from the raw
tables every 5 s (:meth:`EngineLanding.write_metrics`), not per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from contour.config import Config
from ingestion.landing import sql_parse
from ingestion.landing.catalog import Catalog
from ingestion.landing.loader import clickhouse_client
from ingestion.landing.tables import (
    RawTable,
    connect_payload,
    insert_landing_metrics,
    quote,
    table_name,
)
from ingestion.source_catalog import SourceCatalogs
from ingestion.status import write_status

log = logging.getLogger(__name__)

QUEUES = "kafka_queues"
PENDING = "raw._kafka_pending"
PENDING_DDL = f"""
CREATE TABLE IF NOT EXISTS {PENDING} (
    _topic String, _partition UInt64, _offset UInt64, _key String, value String,
    _landed_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY (_topic, _partition, _offset)
"""
#: held messages are taken once they are this old: every insert that stamped an older
#: time has committed by then
SETTLE_S = 3.0
#: chdb reports this for every CREATE … ENGINE = Kafka, yet creates the table (PLATFORM.md)
CHDB_KAFKA_CREATE_ERROR = "Shutdown was called"


class EngineLanding:
    def __init__(self, config: Config, *, poll_seconds: float = 1.0,
                 flush_interval_ms: int = 500) -> None:
        self.config = config
        self.poll_seconds = poll_seconds
        self.flush_interval_ms = flush_interval_ms
        self.client = clickhouse_client(config)
        # (a column whose first values are nulls takes its source column's type)
        self.catalog = Catalog(self.client, SourceCatalogs(config).connect_type)
        #: topic → generation of its row and holding views
        self.generations: dict[str, int] = {}
        self.held_parsed = 0
        self._last_discovery = 0.0
        self._last_metrics = 0.0
        self._metrics_since: Any = None
        self._metadata: Consumer | None = None

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> None:
        self.catalog.prepare()
        self.client.command(PENDING_DDL)
        self.client.command(f"CREATE DATABASE IF NOT EXISTS {QUEUES} ENGINE = Memory")
        self.generations.clear()

    def topics(self) -> list[str]:
        prefixes = tuple(f"{s}." for s in self.config.cdc_source_names)
        admin = AdminClient({"bootstrap.servers": self.config.kafka_bootstrap})
        return sorted(t for t, meta in admin.list_topics(timeout=10).topics.items()
                      if t.startswith(prefixes) and meta.error is None)

    def _queue_tables(self) -> set[str]:
        return {r[0] for r in self.client.query(
            "SELECT name FROM system.tables WHERE database = {d:String}",
            parameters={"d": QUEUES}).result_rows}

    def ensure_queues(self, every: float = 5.0) -> None:
        """A Kafka table and views for every topic that has none (a new topic, or all of them
        after ClickHouse restarted)."""
        if time.monotonic() - self._last_discovery < every:
            return
        self._last_discovery = time.monotonic()
        present = self._queue_tables()
        for topic in self.topics():
            name = table_name(topic)
            if f"{name}__feed" in present and topic in self.generations:
                continue
            self._create_queue(topic, name, present)

    def _create_queue(self, topic: str, name: str, present: set[str]) -> None:
        """The topic's Kafka table, feeding a Null table that the parsing views hang off; the
        feed is attached last, since a Kafka table streams as soon as it has one view, and
        every message must then meet all of them."""
        self.generations.pop(topic, None)
        # the feed first: nothing streams while the views it feeds go
        for view in sorted((v for v in present if v.startswith(f"{name}__")),
                           key=lambda v: (not v.endswith("__feed"), v)):
            self.client.command(f"DROP TABLE IF EXISTS {QUEUES}.{quote(view)}")
        self.client.command(f"DROP TABLE IF EXISTS {QUEUES}.{quote(name)}")
        settings = {
            "kafka_broker_list": self.config.kafka_bootstrap, "kafka_topic_list": topic,
            "kafka_group_name": f"contour-engine.{topic}", "kafka_format": "RawBLOB",
            "kafka_num_consumers": 1, "kafka_flush_interval_ms": self.flush_interval_ms,
        }
        ddl = (f"CREATE TABLE {QUEUES}.{quote(name)} (value String) ENGINE = Kafka SETTINGS "
               + ", ".join(f"{k} = {sql_parse.literal(str(v)) if isinstance(v, str) else v}"
                           for k, v in settings.items()))
        try:
            self.client.command(ddl)
        except Exception as exc:
            if CHDB_KAFKA_CREATE_ERROR not in str(exc) or name not in self._queue_tables():
                raise
        stream = self._stream(name)
        self.client.command(f"CREATE TABLE {stream} (_topic String, _partition UInt64, "
                            "_offset UInt64, _key String, value String) ENGINE = Null")
        self.client.command(f"CREATE MATERIALIZED VIEW {QUEUES}.{quote(name + '__dead')} "
                            f"TO raw._dead_letters AS "
                            f"{sql_parse.dead_letters_select(stream, None)}")
        self._switch_views(topic)
        self.client.command(f"CREATE MATERIALIZED VIEW {QUEUES}.{quote(name + '__feed')} "
                            f"TO {stream} AS SELECT _topic, _partition, _offset, _key, value "
                            f"FROM {QUEUES}.{quote(name)}")
        log.info("%s: read by the Kafka engine table %s.%s (group contour-engine.%s)", topic,
                 QUEUES, quote(name), topic)

    @staticmethod
    def _stream(name: str) -> str:
        return f"{QUEUES}.{quote(name + '__stream')}"

    def _switch_views(self, topic: str) -> None:
        """Replace the topic's row and holding views by ones made from its table as the
        catalog has it now (new ones first, then the old: see the module's docstring)."""
        name = table_name(topic)
        table = self.catalog.tables.get(name)
        old = self.generations.get(topic)
        new = 0 if old is None else old + 1
        queue = self._stream(name)
        if table is not None:
            self.client.command(
                f"CREATE MATERIALIZED VIEW {QUEUES}.{quote(f'{name}__rows_{new}')} TO "
                f"{table.qualified} AS {sql_parse.rows_select(table, queue)}")
        self.client.command(
            f"CREATE MATERIALIZED VIEW {QUEUES}.{quote(f'{name}__held_{new}')} TO {PENDING} "
            f"AS {sql_parse.pending_select(queue, table)}")
        self.generations[topic] = new
        if old is not None:
            for kind in ("held", "rows"):
                self.client.command(
                    f"DROP VIEW IF EXISTS {QUEUES}.{quote(f'{name}__{kind}_{old}')}")

    # ------------------------------------------------------------------ held messages
    def take_held(self) -> int:
        """Evolve the tables for the held messages, parse them, delete them; returns how many
        were taken."""
        settled = self.client.query(f"SELECT now64(3, 'UTC') - INTERVAL "
                                    f"{int(SETTLE_S * 1000)} MILLISECOND").result_rows[0][0]
        counts = self.client.query(
            f"SELECT _topic, count() FROM {PENDING} FINAL WHERE _landed_at <= "
            "{t:DateTime64(3)} GROUP BY _topic ORDER BY _topic",
            parameters={"t": settled}).result_rows
        taken = 0
        for topic, count in counts:
            self._take_topic(topic, settled, count)
            taken += count
            self.held_parsed += count  # (per topic: its rows are in its table already)
        return taken

    def _take_topic(self, topic: str, settled: Any, count: int) -> None:
        name = table_name(topic)
        where = f"_topic = {sql_parse.literal(topic)} AND _landed_at <= {{t:DateTime64(3)}}"
        relation = f"(SELECT * FROM {PENDING} FINAL WHERE {where})"
        params = {"t": settled}
        # the first message of each set of columns and of non-null columns, in landing
        # order, shows the types (and types a column that held only nulls so far)
        samples = self.client.query(
            f"SELECT _key, p FROM ({sql_parse.envelope(relation)}) WHERE problem = '' "
            "AND op != 't' ORDER BY _partition, _offset "
            "LIMIT 1 BY arraySort(JSONExtractKeys(row)), "
            "arraySort(arrayFilter(k -> JSONType(row, k) != 'Null', JSONExtractKeys(row)))",
            parameters=params).result_rows
        before = self._shape(name)
        for key_text, payload_text in samples:
            payload = orjson.loads(payload_text)
            key = connect_payload(orjson.loads(key_text)) if key_text else None
            row = payload["before" if payload["op"] == "d" else "after"]
            self.catalog.table_for(name, key if isinstance(key, dict) else None, row)
        table = self.catalog.tables.get(name)
        if table is None:
            return  # (only truncates held: nothing to land)
        if topic in self.generations and self._shape(name) != before:
            self._switch_views(topic)  # (a topic without views yet gets them from the catalog)
        self.client.command(sql_parse.rows_insert(table, relation), parameters=params)
        self.client.command(sql_parse.dead_letters_insert(relation, table), parameters=params)
        self.client.command(f"DELETE FROM {PENDING} WHERE {where}", parameters=params)
        log.info("%s: %d held messages parsed into %s (or dead letters)", topic, count,
                 table.qualified)

    def _shape(self, name: str) -> tuple[object, ...] | None:
        """What the topic's views are made of: the table's columns, their types and which of
        them are untyped."""
        table: RawTable | None = self.catalog.tables.get(name)
        return None if table is None else (*table.columns.items(), *sorted(table.untyped))

    # ------------------------------------------------------------------ loop
    def write_metrics(self, every: float = 5.0) -> None:
        """``raw._landing_metrics`` as the loader writes it, per partition that landed rows
        since the last time: its highest landed offset and source LSN (from the raw tables:
        positions, not the consumer group's offsets), the broker's high watermark and the lag
        between them, and the rows landed per second. (The watermark comes from ListOffsets,
        which the embedded broker answers with the last batch's start: lag may read low.)"""
        if time.monotonic() - self._last_metrics < every:
            return
        self._last_metrics = time.monotonic()
        now = self.client.query("SELECT now64(3, 'UTC')").result_rows[0][0]
        since, self._metrics_since = self._metrics_since, now
        if since is None:
            return
        elapsed = max((now - since).total_seconds(), 1e-3)
        rows = []
        for topic in sorted(self.generations):
            table = self.catalog.tables.get(table_name(topic))
            if table is None:
                continue
            for partition, top, lsn, count, top_lsn in self.client.query(
                    f"SELECT _kafka_partition, max(_kafka_offset), max(_lsn), count(), "
                    f"argMax(_lsn, _kafka_offset) FROM "
                    f"{table.qualified} WHERE _ingested_at > {{t:DateTime64(3)}} GROUP BY 1 "
                    "ORDER BY 1", parameters={"t": since}).result_rows:
                _, high = self._watermarks().get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=5)
                high = high if high is not None and high >= 0 else top + 1
                rows.append([now, topic, partition, top, high, max(0, high - top - 1), lsn,
                             count / elapsed, top, top_lsn])
        if rows:
            insert_landing_metrics(self.client, rows)

    def _watermarks(self) -> Consumer:
        if self._metadata is None:
            self._metadata = Consumer({
                "bootstrap.servers": self.config.kafka_bootstrap,
                "group.id": "contour-engine.metrics", "enable.auto.commit": False,
                "logger": logging.getLogger("librdkafka")})
        return self._metadata

    def _write_status(self) -> None:
        """The landing service's status file (its liveness), as the loader writes it."""
        write_status(self.config.state_dir / "landing" / "loader.status.json", {
            "mode": "engine", "topics": len(self.generations), "tables": len(self.catalog.tables),
            "held_parsed": self.held_parsed, "updated_at": time.time()})

    def run_once(self, stop: threading.Event) -> None:
        self.prepare()
        while not stop.is_set():
            self.ensure_queues()
            self.take_held()
            self.write_metrics()
            self._write_status()
            stop.wait(self.poll_seconds)

    def run(self, stop: threading.Event, retry_delay: float = 2.0) -> None:
        """Control until ``stop``; after a failure (ClickHouse or the broker away) start over,
        which re-creates whatever ClickHouse lost."""
        while not stop.is_set():
            try:
                self.run_once(stop)
            except Exception as exc:  # noqa: BLE001 - log, wait, start over
                if stop.is_set():
                    break
                log.warning("landing (Kafka engine): %s; starting over in %.0fs", exc,
                            retry_delay)
                stop.wait(retry_delay)
