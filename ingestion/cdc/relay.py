"""The CDC relay of one source: snapshot + pgoutput stream → Debezium events → Kafka.

Delivery (DESIGN.md, "Delivery contract"):

- Events of a transaction are sent in commit order; every ``flush_interval`` the producer is
  flushed (acks=all, idempotent) and only then is the position of the last *complete*
  transaction written to the offsets file and confirmed to the slot.
- On start the relay resumes from its stored position and skips every transaction whose commit
  LSN is at or below it, so a restart of the relay, the broker or PostgreSQL re-publishes
  nothing that was acknowledged before.
- What may be re-published: the events of transactions after the stored position that were sent
  but not yet acknowledged when the relay died. They are identical events (same key, same
  ``source.lsn``), so ``(source.lsn, key)`` removes them downstream.
- The initial snapshot is read from the slot's exported snapshot, so streaming continues from
  the slot's consistent point with no gap and no overlap. An interrupted snapshot is redone
  from scratch with a new slot.
- A table that starts being captured later (the include/exclude lists changed) is snapshotted
  when the relay starts: its rows are read in a REPEATABLE READ transaction begun after
  reading the WAL position L, and published as ``op: "r"`` with ``source.lsn`` L. Its stream
  events from the stored position on follow: those committed before L carry a lower LSN, so
  downstream (ReplacingMergeTree on the LSN, the exporter's version guard) the snapshot row
  wins over them, and every later change wins over it. A table created while the relay runs
  is streamed from its creation and needs no snapshot.
- A slot PostgreSQL invalidated (``wal_status = 'lost'``: it fell more than
  ``max_slot_wal_keep_size`` behind) cannot stream again: the relay logs what was lost, drops
  it and snapshots the source with a new slot (every row again at its current state; rows
  deleted in the gap stay downstream until reconciled). With snapshot mode ``never`` it stops
  with an error saying how to recover instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from contour.config import CdcSource
from contour.errors import ContourError
from ingestion.cdc import pgoutput, rowcodec
from ingestion.cdc.durability import Durability, LandedPositions
from ingestion.cdc.envelope import EnvelopeBuilder, SourcePosition, TableShape
from ingestion.cdc.fast_encoder import FAST_KINDS, FastEncoder, read_u32
from ingestion.cdc.offsets import Offsets, OffsetStore
from ingestion.cdc.pgoutput import Column, Relation
from ingestion.cdc.publisher import DeliveryError, Publisher
from ingestion.cdc.replication import ReplicationStream, connect
from ingestion.cdc.typemap import CatalogType
from ingestion.status import RollingRate, write_status

log = logging.getLogger(__name__)

HEARTBEAT_SCHEMA = "contour_cdc"
HEARTBEAT_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {HEARTBEAT_SCHEMA};
CREATE TABLE IF NOT EXISTS {HEARTBEAT_SCHEMA}.heartbeat (
    source text PRIMARY KEY,
    ts timestamptz NOT NULL,
    seq bigint NOT NULL
);
-- the relay's own metrics ride on each heartbeat, so CDC lag and rates flow through the
-- pipeline (ClickHouse history, staging, marts) like any other change
ALTER TABLE {HEARTBEAT_SCHEMA}.heartbeat
    ADD COLUMN IF NOT EXISTS lag_bytes bigint,
    ADD COLUMN IF NOT EXISTS lag_seconds double precision,
    ADD COLUMN IF NOT EXISTS events_total bigint,
    ADD COLUMN IF NOT EXISTS events_per_s double precision,
    ADD COLUMN IF NOT EXISTS commit_to_ack_p95_s double precision;
"""


@dataclass
class Metrics:
    source: str
    events_total: int = 0
    transactions_total: int = 0
    last_commit_lsn: int = 0
    last_commit_ts_us: int = 0
    server_wal_end: int = 0
    confirmed_lsn: int = 0
    snapshot: str = "not started"
    conversion_errors: int = 0  # values that could not be mapped and went out as text
    #: inserts and updates the fast path handed to the reference path (unchanged TOAST, old
    #: tuples, odd values); a high count means a slower relay, not a wrong one
    fast_path_fallbacks: int = 0
    #: what writes the fast path's rows: "native" (rowcodec.c, built) or "python"
    row_codec: str = "python"
    slot_invalidations: int = 0  # slots PostgreSQL invalidated (each followed by a snapshot)
    confirm: str = "broker"  # what confirms a position: the broker's ack, or the landing
    durable_lsn: int = 0  # end of the last transaction stored downstream ("landed")
    pending_batches: int = 0  # acknowledged flushes not yet landed ("landed")
    broker_log_losses: int = 0  # times the broker had lost acknowledged events
    started_at: float = field(default_factory=time.time)
    #: seconds from each transaction's commit to the broker's acknowledgement of all its events
    ack_delays: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    _rate: RollingRate = field(default_factory=RollingRate)

    def rate(self) -> float:
        return self._rate(self.events_total)

    def ack_delay_quantile(self, q: float) -> float | None:
        if not self.ack_delays:
            return None
        ordered = sorted(self.ack_delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def as_dict(self, idle: bool) -> dict[str, Any]:
        lag_bytes = max(0, self.server_wal_end - self.confirmed_lsn) if not idle else 0
        lag_s = 0.0
        if not idle and self.last_commit_ts_us:
            lag_s = max(0.0, time.time() - self.last_commit_ts_us / 1e6)
        return {
            "source": self.source, "events_total": self.events_total,
            "transactions_total": self.transactions_total, "events_per_s": round(self.rate(), 1),
            "last_commit_lsn": pgoutput.lsn_to_str(self.last_commit_lsn),
            "last_commit_ts": self.last_commit_ts_us / 1e6 if self.last_commit_ts_us else None,
            "confirmed_lsn": pgoutput.lsn_to_str(self.confirmed_lsn),
            "server_wal_end": pgoutput.lsn_to_str(self.server_wal_end),
            "lag_bytes": lag_bytes, "lag_seconds": round(lag_s, 3), "snapshot": self.snapshot,
            "values_published_as_text": self.conversion_errors,
            "fast_path_fallbacks": self.fast_path_fallbacks, "row_codec": self.row_codec,
            "slot_invalidations": self.slot_invalidations,
            "confirm": self.confirm, "durable_lsn": pgoutput.lsn_to_str(self.durable_lsn),
            "pending_batches": self.pending_batches,
            "broker_log_losses": self.broker_log_losses,
            "commit_to_ack_p50_s": self.ack_delay_quantile(0.5),
            "commit_to_ack_p95_s": self.ack_delay_quantile(0.95),
            "updated_at": time.time(),
        }


class Catalog:
    """Catalog look-ups on a normal connection: primary keys, types, captured tables."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._types: dict[int, CatalogType] = {}

    def primary_key(self, relation_oid: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)", (relation_oid,)).fetchall()
        return [r[0] for r in rows]

    def complete(self, relation: Relation) -> Relation:
        """Add what pgoutput does not send: the primary key and NOT NULL columns."""
        relation.key_columns = self.primary_key(relation.oid)
        not_null = {r[0] for r in self.conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND "
            "attnotnull AND NOT attisdropped", (relation.oid,))}
        defaults = dict(self.conn.execute(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN "
            "pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
            "WHERE d.adrelid = %s", (relation.oid,)).fetchall())
        for column in relation.columns:
            column.not_null = column.name in not_null
            column.default = defaults.get(column.name)
        return relation

    def type_info(self, oid: int) -> CatalogType:
        if oid not in self._types:
            row = self.conn.execute(
                "SELECT t.oid, t.typname, t.typtype, t.typelem, t.typbasetype, "
                "t.typcategory = 'A', coalesce((SELECT array_agg(e.enumlabel ORDER BY "
                "e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}') "
                "FROM pg_type t WHERE t.oid = %s", (oid,)).fetchone()
            if row is None:
                self._types[oid] = CatalogType(oid, "unknown", "b", 0, 0, False)
            else:
                self._types[oid] = CatalogType(row[0], row[1], row[2], row[3], row[4], row[5],
                                               tuple(row[6]))
        return self._types[oid]

    def tables(self, publication: str) -> list[tuple[int, str, str]]:
        return self.conn.execute(
            "SELECT c.oid, p.schemaname, p.tablename FROM pg_publication_tables p "
            "JOIN pg_class c ON c.relname = p.tablename JOIN pg_namespace n ON n.oid = "
            "c.relnamespace AND n.nspname = p.schemaname WHERE p.pubname = %s "
            "ORDER BY 2, 3", (publication,)).fetchall()

    def relation(self, oid: int, schema: str, table: str) -> Relation:
        """A relation as pgoutput would describe it (for snapshot rows)."""
        rows = self.conn.execute(
            "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = %s AND "
            "attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (oid,)).fetchall()
        identity = self.conn.execute("SELECT relreplident FROM pg_class WHERE oid = %s",
                                     (oid,)).fetchone()
        return self.complete(Relation(oid, schema, table, identity[0] if identity else "d",
                                      [Column(r[0], r[1], r[2], False) for r in rows]))


#: messages handled between two checks of the clock (flush, heartbeat, metrics): at most a
#: few milliseconds of work, read only when already received
READ_BURST = 1000
_DURABLE_FIELDS = ("durable_commit_lsn", "durable_end_lsn", "durable_tx_id", "durable_snapshot")


class SlotLostError(ContourError):
    """PostgreSQL invalidated the replication slot and the snapshot mode forbids a new
    snapshot: the relay cannot go on without losing changes. Not retried."""


class Relay:
    """Runs one source until ``stop`` is set; reconnects after failures."""

    def __init__(self, source: CdcSource, bootstrap: str, *, flush_interval: float = 0.2,
                 max_batch: int = 20_000, on_event: Callable[[str], None] | None = None,
                 landed: LandedPositions | None = None) -> None:
        """``landed``: confirm positions once the landing stored them (see
        :mod:`ingestion.cdc.durability`); without it, once the broker acknowledged them."""
        self.source = source
        self.landed = landed
        self._applied: Offsets | None = None  # durable position last confirmed to the slot
        self.bootstrap = bootstrap
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.offsets_store = OffsetStore(source.state_dir / f"{source.name}.offsets.json")
        self.metrics_path = source.state_dir / f"{source.name}.metrics.json"
        self.metrics = Metrics(source.name, confirm="landed" if landed else "broker")
        self.durability: Durability | None = None
        self.envelopes = EnvelopeBuilder(source.name, source.database, source.schemas_enable)
        self.on_event = on_event
        self.shapes: dict[int, TableShape | None] = {}  # None: relation not captured
        self.fast: dict[int, FastEncoder] = {}  # the hot path's encoders, by relation
        #: the native row codec when it is built (rowcodec.py), else the Python reader
        self.row_codec = rowcodec.load()
        self.metrics.row_codec = "native" if self.row_codec is not None else "python"

    # ------------------------------------------------------------------ public
    def run(self, stop: threading.Event, retry_delay: float = 2.0) -> None:
        while not stop.is_set():
            try:
                self.run_once(stop)
            except SlotLostError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: log, wait, resume
                if stop.is_set():
                    break
                log.warning("cdc %s: %s; resuming from the stored position in %.0fs",
                            self.source.name, exc, retry_delay)
                stop.wait(retry_delay)

    def run_once(self, stop: threading.Event) -> None:
        source = self.source
        with connect(source.dsn) as conn:
            self._prepare_source(conn)
            catalog = Catalog(conn)
            publisher = Publisher(self.bootstrap, source.partitions, f"contour-cdc-{source.name}")
            stream = ReplicationStream(source.dsn)
            done = threading.Event()
            if self.landed is not None:
                self.durability = Durability(source.name, self.landed, self.bootstrap)
                threading.Thread(target=self.durability.run, args=(done,), daemon=True,
                                 name=f"cdc-{source.name}-durability").start()
            try:
                offsets = self._ensure_slot(conn, stream, catalog, publisher)
                self._stream(stop, conn, catalog, stream, publisher, offsets)
            finally:
                done.set()
                stream.close()
                publisher.close()

    # ------------------------------------------------------------------ set-up
    def _prepare_source(self, conn: psycopg.Connection) -> None:
        conn.execute(HEARTBEAT_DDL)
        exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s",
                              (self.source.publication,)).fetchone()
        if not exists:
            conn.execute(f"CREATE PUBLICATION {self.source.publication} FOR ALL TABLES")
            log.info("cdc %s: created publication %s", self.source.name,
                     self.source.publication)

    def _slot_exists(self, conn: psycopg.Connection) -> bool:
        return conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                            (self.source.slot,)).fetchone() is not None

    def _slot_invalidation(self, conn: psycopg.Connection) -> str | None:
        """Why PostgreSQL invalidated the slot (its WAL is gone), or None while it is usable.
        (``invalidation_reason`` exists from PostgreSQL 17; ``wal_status`` from 13.)"""
        row = conn.execute("SELECT s.wal_status, to_jsonb(s) ->> 'invalidation_reason' "
                           "FROM pg_replication_slots s WHERE slot_name = %s",
                           (self.source.slot,)).fetchone()
        if row is None or row[0] != "lost":
            return None
        return row[1] or "wal_removed"

    def _drop_lost_slot(self, conn: psycopg.Connection, reason: str) -> None:
        """A lost slot cannot stream again. Unless the snapshot mode is ``never``, drop it:
        the caller makes a new one and snapshots the source, which publishes every row at
        its current state again (rows deleted meanwhile stay downstream until reconciled)."""
        source = self.source
        offsets = self.offsets_store.load()
        since = pgoutput.lsn_to_str(offsets.end_lsn) if offsets else "its last position"
        what = (f"cdc {source.name}: PostgreSQL invalidated replication slot {source.slot} "
                f"({reason}): the WAL after {since} was removed before the relay read it "
                "(the slot was more than max_slot_wal_keep_size behind, e.g. while the relay "
                "was down or a long transaction held WAL back), so those changes can no "
                "longer be streamed")
        if source.snapshot_mode == "never":
            raise SlotLostError(
                f"{what}. With CONTOUR_CDC_SNAPSHOT_MODE=never the relay stops here: set it "
                "to when_needed (or initial) to re-snapshot the source, or drop the slot "
                f"(SELECT pg_drop_replication_slot('{source.slot}')) to stream from now on "
                "and accept the gap")
        log.error("%s. Re-snapshotting the source: every row is published again at its "
                  "current state; rows deleted meanwhile stay in the warehouse until "
                  "reconciled (`contour warehouse reconcile` shows them).", what)
        conn.execute("SELECT pg_drop_replication_slot(%s)", (source.slot,))
        self.metrics.slot_invalidations += 1

    def _ensure_slot(self, conn: psycopg.Connection, stream: ReplicationStream,
                     catalog: Catalog, publisher: Publisher) -> Offsets:
        source = self.source
        reason = self._slot_invalidation(conn)
        if reason is not None:
            self._drop_lost_slot(conn, reason)
        offsets = self.offsets_store.load()
        if offsets is not None and self.durability is not None:
            offsets = self._after_broker_loss(offsets)
        exists = self._slot_exists(conn)
        usable = exists and offsets is not None and offsets.slot == source.slot and (
            offsets.snapshot_done or source.snapshot_mode == "never")
        if usable:
            assert offsets is not None
            self.metrics.snapshot = "done" if offsets.snapshot_done else "skipped"
            self._snapshot_new_tables(catalog, publisher, offsets)
            return offsets
        if exists:
            if offsets is None and source.snapshot_mode == "never":
                return Offsets(slot=source.slot, snapshot_done=False)
            log.warning("cdc %s: slot %s exists but its snapshot did not complete (or the "
                        "offsets file is gone); dropping it and starting over",
                        source.name, source.slot)
            conn.execute("SELECT pg_drop_replication_slot(%s)", (source.slot,))
        take_snapshot = source.snapshot_mode != "never"
        consistent, snapshot = stream.create_slot(source.slot, export_snapshot=take_snapshot)
        captured = self._captured(catalog)
        offsets = Offsets(slot=source.slot, snapshot_lsn=consistent,
                          tables=[name for _, name in captured])
        self.offsets_store.save(offsets)
        if take_snapshot and snapshot:
            self._snapshot(catalog, publisher, captured, consistent, snapshot)
            offsets.snapshot_done = True
        offsets.commit_lsn = offsets.end_lsn = consistent
        self._acknowledged(offsets, publisher)
        return offsets

    def _captured(self, catalog: Catalog) -> list[tuple[tuple[int, str, str], str]]:
        """The published tables this relay captures: ((oid, schema, table), "schema.table")."""
        return [((oid, schema, table), f"{schema}.{table}")
                for oid, schema, table in catalog.tables(self.source.publication)
                if self.source.captures(schema, table)]

    def _snapshot_new_tables(self, catalog: Catalog, publisher: Publisher,
                             offsets: Offsets) -> None:
        """Snapshot the captured tables the stored position does not list (they started
        being captured since); see the module's notes for why no change is lost."""
        source = self.source
        captured = self._captured(catalog)
        if offsets.tables is None:  # a position stored before tables were listed
            offsets.tables = [name for _, name in captured]
            self.offsets_store.save(offsets)
            return
        new = [(table, name) for table, name in captured if name not in offsets.tables]
        if not new:
            return
        names = ", ".join(name for _, name in new)
        if source.snapshot_mode == "never":
            log.warning("cdc %s: now capturing %s: streamed from here on, not snapshotted "
                        "(snapshot mode never)", source.name, names)
        else:
            log.info("cdc %s: now capturing %s: snapshotting them", source.name, names)
            with connect(source.dsn) as conn:
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            self._snapshot(catalog, publisher, new, pgoutput.str_to_lsn(row[0]))
        offsets.tables = [*offsets.tables, *(name for _, name in new)]
        self.offsets_store.save(offsets)

    def _snapshot(self, catalog: Catalog, publisher: Publisher,
                  tables: list[tuple[tuple[int, str, str], str]], position: int,
                  exported: str | None = None) -> None:
        """Publish every row of ``tables`` as ``op: "r"`` at ``position``, read in one
        REPEATABLE READ transaction (on the slot's ``exported`` snapshot when given)."""
        source = self.source
        self.metrics.snapshot = "running"
        started = time.time()
        ts_us = time.time_ns() // 1000
        pending: tuple[str, bytes | None, TableShape, list[object]] | None = None
        first = True
        count = 0
        with connect(source.dsn) as snap:
            snap.autocommit = False
            snap.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if exported:
                snap.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
            for (oid, schema, table), _ in tables:
                relation = catalog.relation(oid, schema, table)
                shape = TableShape.build(relation, source.name, catalog.type_info)
                columns = ", ".join(f'"{c.name}"' for c in relation.columns)
                with snap.cursor().copy(
                        f'COPY (SELECT {columns} FROM "{schema}"."{table}") TO STDOUT') as copy:
                    for row in copy.rows():
                        if pending is not None:
                            self._send_snapshot_row(publisher, pending, position, ts_us,
                                                    "first" if first else "true")
                            first = False
                        pending = (shape.topic, None, shape, list(row))
                        count += 1
                        if count % 10_000 == 0:
                            self._write_metrics(idle=False)  # liveness during long snapshots
                log.info("cdc %s: snapshot of %s.%s read", source.name, schema, table)
            snap.rollback()
        if pending is not None:
            self._send_snapshot_row(publisher, pending, position, ts_us, "last")
        publisher.flush()
        self.metrics.snapshot = "done"
        log.info("cdc %s: snapshot of %d rows published in %.1fs", source.name, count,
                 time.time() - started)

    def _send_snapshot_row(self, publisher: Publisher,
                           pending: tuple[str, bytes | None, TableShape, list[object]],
                           consistent: int, ts_us: int, marker: str) -> None:
        topic, _, shape, values = pending
        pos = SourcePosition(consistent, consistent, consistent, None, ts_us, marker)
        row = shape.row(values)
        key, value = self.envelopes.change(shape, "r", None, row, shape.key(values, row), pos)
        publisher.send(topic, key, value)
        self.metrics.events_total += 1

    # ------------------------------------------------------------------ streaming
    def _stream(self, stop: threading.Event, conn: psycopg.Connection, catalog: Catalog,
                stream: ReplicationStream, publisher: Publisher, offsets: Offsets) -> None:
        source = self.source
        stream.start(source.slot, source.publication, offsets.end_lsn)
        log.info("cdc %s: streaming from %s (row codec: %s)", source.name,
                 pgoutput.lsn_to_str(offsets.end_lsn), self.metrics.row_codec)
        self.metrics.confirmed_lsn = self._confirmable(offsets)
        self.shapes.clear()
        self.fast.clear()
        tx: pgoutput.Begin | None = None
        skipping = False
        last_commit = offsets.commit_lsn
        complete: Offsets | None = None  # last complete transaction not yet confirmed
        unacked_commits: list[int] = []  # commit times (µs) of transactions sent since then
        unflushed = 0
        last_flush = time.monotonic()
        last_heartbeat = 0.0
        last_metrics = 0.0

        def flush_due(now: float) -> bool:
            """Something to confirm, between transactions, and a full batch or the flush
            interval passed."""
            pending = unflushed or complete is not None
            return bool(pending and tx is None and (
                unflushed >= self.max_batch or now - last_flush >= self.flush_interval))

        def confirm() -> None:
            nonlocal complete, unflushed, last_flush
            publisher.flush(abort=self._broker_lost)
            acked_at = time.time()
            self.metrics.ack_delays.extend(acked_at - t / 1e6 for t in unacked_commits)
            unacked_commits.clear()
            if complete is not None:
                for name in _DURABLE_FIELDS:  # the thread may have moved them since
                    setattr(complete, name, getattr(offsets, name))
                self._acknowledged(complete, publisher)
                if self.durability is None:
                    stream.send_status(complete.end_lsn)
                    self.metrics.confirmed_lsn = complete.end_lsn
                offsets.__dict__.update(complete.__dict__)
                complete = None
            unflushed = 0
            last_flush = time.monotonic()

        while not stop.is_set():
            now = time.monotonic()
            idle = tx is None and complete is None and unflushed == 0
            if now - last_heartbeat >= source.heartbeat_seconds:
                self._heartbeat(conn, publisher, idle)
                last_heartbeat = now
            if now - last_metrics >= 1.0:
                if self.durability is not None:  # the thread moves it every 2 s at most
                    self._take_durable(stream, offsets)
                self._write_metrics(idle)
                last_metrics = now
            if flush_due(now):
                confirm()
            messages = stream.read_many(0.05 if unflushed else 0.5, READ_BURST)
            if not messages:
                continue
            # (in stream order: the last one knows the newest end of the server's WAL)
            self.metrics.server_wal_end = max(self.metrics.server_wal_end,
                                              messages[-1].wal_end)
            publisher.poll()  # the delivery reports of what was acknowledged since
            for message in messages:
                if isinstance(message, pgoutput.Keepalive):
                    if tx is None and complete is None and unflushed == 0 and (
                            self._confirmable(offsets) >= offsets.end_lsn):
                        # idle: everything we published is confirmed, so the server may
                        # discard WAL up to its end (keeps WAL from piling up on a quiet
                        # source)
                        stream.send_status(max(message.wal_end, offsets.end_lsn))
                    elif message.reply_requested:
                        stream.send_status(self._confirmable(offsets))
                    continue
                payload = message.payload
                if tx is not None and not skipping and payload[0] in FAST_KINDS:
                    sent = self._publish_fast(payload, tx, message.data_start, last_commit,
                                              publisher)
                    if sent is not None:
                        unflushed += sent
                        continue
                decoded = pgoutput.decode(payload)
                if isinstance(decoded, pgoutput.Begin):
                    tx = decoded
                    skipping = decoded.final_lsn <= offsets.commit_lsn
                elif isinstance(decoded, pgoutput.Commit):
                    if tx is not None and not skipping:
                        complete = replace(offsets, commit_lsn=decoded.commit_lsn,
                                           end_lsn=decoded.end_lsn, tx_id=tx.xid,
                                           events=self.metrics.events_total)
                        last_commit = decoded.commit_lsn
                        unacked_commits.append(decoded.commit_time)
                        self.metrics.transactions_total += 1
                        self.metrics.last_commit_lsn = decoded.commit_lsn
                        self.metrics.last_commit_ts_us = decoded.commit_time
                    tx = None
                    skipping = False
                    if flush_due(time.monotonic()):
                        confirm()  # between transactions: no need to end the burst
                elif isinstance(decoded, pgoutput.Relation):
                    if source.captures(decoded.schema, decoded.table):
                        name = f"{decoded.schema}.{decoded.table}"
                        if offsets.tables is not None and name not in offsets.tables:
                            # created since the start: streamed whole
                            offsets.tables.append(name)
                        catalog.complete(decoded)
                        self.shapes[decoded.oid] = TableShape.build(decoded, source.name,
                                                                    catalog.type_info)
                    else:
                        self.shapes[decoded.oid] = None
                elif isinstance(decoded, (pgoutput.TypeInfo, pgoutput.Origin)) or (
                        decoded is None):
                    continue  # type names come from the catalog; origins are not filtered
                elif tx is not None and not skipping:
                    unflushed += self._publish_change(decoded, tx, message.data_start,
                                                      last_commit, publisher)

    # ------------------------------------------------------------------ durability
    def _acknowledged(self, position: Offsets, publisher: Publisher) -> None:
        """After a flush: store the acknowledged ``position`` (with its last event, to tell
        later whether the broker still holds it); with confirmation "landed", hand it to the
        durability thread with the offsets its events got."""
        position.probe = publisher.last_acked() or position.probe
        self.offsets_store.save(position)
        if self.durability is not None:
            self.durability.acked(replace(position), publisher.take_offsets())

    def _confirmable(self, offsets: Offsets) -> int:
        """How far the slot may be confirmed: what the broker acknowledged, or with
        confirmation "landed" what is stored downstream."""
        if self.durability is None:
            return offsets.end_lsn
        return offsets.durable_end_lsn or offsets.snapshot_lsn

    def _take_durable(self, stream: ReplicationStream, offsets: Offsets) -> None:
        """Store and confirm the newest durable position; start over if the broker lost its
        log (the durability thread found the last acknowledged event gone)."""
        durability = self.durability
        assert durability is not None
        reason = self._broker_lost()
        if reason:
            raise DeliveryError(reason)
        self.metrics.pending_batches = durability.pending()
        durable = durability.durable
        if durable is None or durable is self._applied:
            return
        self._applied = durable
        offsets.durable_commit_lsn = durable.commit_lsn
        offsets.durable_end_lsn = durable.end_lsn
        offsets.durable_tx_id = durable.tx_id
        offsets.durable_snapshot = offsets.durable_snapshot or durable.snapshot_done
        self.offsets_store.save(offsets)
        stream.send_status(durable.end_lsn)
        self.metrics.confirmed_lsn = self.metrics.durable_lsn = durable.end_lsn

    def _broker_lost(self) -> str | None:
        """Why to start over: the broker lost acknowledged events (found by the durability
        thread), or None."""
        if self.durability is None or not self.durability.broker_lost:
            return None
        return (f"{self.durability.broker_lost}: it restarted without its log; starting over "
                "from the position stored downstream")

    def _after_broker_loss(self, offsets: Offsets) -> Offsets:
        """On start with confirmation "landed": if the broker no longer holds the last
        acknowledged event, go back to the position stored downstream (or snapshot again if
        the initial snapshot was not stored yet). Raises if the broker does not answer."""
        durability = self.durability
        assert durability is not None
        if not offsets.probe:
            return offsets
        if durability.broker_holds(offsets.probe):
            durability.last_acked = offsets.probe
            return offsets
        source = self.source
        self.metrics.broker_log_losses += 1
        acked = pgoutput.lsn_to_str(offsets.end_lsn)
        offsets.probe = None
        if (offsets.snapshot_done and not offsets.durable_snapshot
                and source.snapshot_mode != "never"):
            log.warning("cdc %s: the broker lost the events it acknowledged up to %s (it "
                        "restarted without its log) before the initial snapshot was stored "
                        "downstream: taking the snapshot again", source.name, acked)
            offsets.snapshot_done = False
        else:
            offsets.commit_lsn = offsets.durable_commit_lsn or offsets.snapshot_lsn
            offsets.end_lsn = offsets.durable_end_lsn or offsets.snapshot_lsn
            offsets.tx_id = offsets.durable_tx_id
            log.warning("cdc %s: the broker lost the events it acknowledged up to %s (it "
                        "restarted without its log): publishing again from %s, the last "
                        "position stored downstream; the events between reach the broker "
                        "twice (removable by source.lsn and key)", source.name, acked,
                        pgoutput.lsn_to_str(offsets.end_lsn))
        self.offsets_store.save(offsets)
        return offsets

    def _publish_fast(self, payload: bytes, tx: pgoutput.Begin, lsn: int, last_commit: int,
                      publisher: Publisher) -> int | None:
        """An insert or update by the fast path (:mod:`.fast_encoder`); returns how many
        events were sent, or None when the reference path must decode it."""
        oid = read_u32(payload, 1)[0]
        shape = self.shapes.get(oid)
        encoder = self.fast.get(oid)
        if encoder is None or encoder.shape is not shape:
            if shape is None:
                return 0 if oid in self.shapes else None  # not captured, or not described yet
            publisher.ensure_topic(shape.topic)  # (publisher.produce needs it made)
            encoder = self.fast[oid] = FastEncoder(shape, self.envelopes, self.row_codec)
        encoded = encoder.encode(payload, lsn, tx.xid, tx.final_lsn, tx.commit_time,
                                 last_commit)
        if encoded is None:
            return None
        try:
            publisher.produce(encoder.topic, encoded[1], encoded[0])
        except BufferError:  # the local queue is full: send() waits for room
            publisher.send(encoder.topic, encoded[0], encoded[1])
        self.metrics.events_total += 1
        return 1

    def _publish_change(self, change: pgoutput.Message, tx: pgoutput.Begin, lsn: int,
                        last_commit: int, publisher: Publisher) -> int:
        """Send the events of one decoded change; returns how many were sent."""
        pos = SourcePosition(lsn, tx.final_lsn, last_commit, tx.xid, tx.commit_time)
        env = self.envelopes
        if isinstance(change, pgoutput.Truncate):
            sent = 0
            for oid in change.relation_oids:
                shape = self.shapes.get(oid)
                if shape is not None:
                    # (the loader skips truncates: one never waits to be landed)
                    publisher.send(shape.topic, None, env.truncate(shape, pos), landed=False)
                    sent += 1
            self.metrics.events_total += sent
            return sent
        shape = self.shapes.get(change.relation_oid)  # type: ignore[union-attr]
        if shape is None:
            return 0
        sent: list[tuple[bytes | None, bytes | None]] = []
        if isinstance(change, pgoutput.Insert):
            after = shape.row(change.new)
            sent.append(env.change(shape, "c", None, after, shape.key(change.new, after), pos))
        elif isinstance(change, pgoutput.Update):
            after = shape.row(change.new)
            new_key = shape.key(change.new, after)
            before = None
            if change.old is not None and not change.old_is_key:
                before = shape.row(change.old)
            old_key = shape.key(change.old) if change.old is not None else None
            if old_key is not None and new_key != old_key:
                # primary key changed: Debezium emits delete + tombstone + create
                old_row = before or shape.row(change.old)
                sent.append(env.change(shape, "d", old_row, None, old_key, pos))
                sent.append((env.encode_key(shape, old_key), None))
                sent.append(env.change(shape, "c", None, after, new_key, pos))
            else:
                sent.append(env.change(shape, "u", before, after, new_key, pos))
        elif isinstance(change, pgoutput.Delete):
            # REPLICA IDENTITY DEFAULT: the old row holds only the key, the rest is null
            before = shape.row(change.old)
            key = shape.key(change.old)
            sent.append(env.change(shape, "d", before, None, key, pos))
            if key is not None:
                sent.append((env.encode_key(shape, key), None))  # tombstone
        for key_bytes, value in sent:
            publisher.send(shape.topic, key_bytes, value)
        self.metrics.events_total += len(sent)
        return len(sent)

    def _heartbeat(self, conn: psycopg.Connection, publisher: Publisher, idle: bool) -> None:
        """Write the heartbeat row with the relay's metrics (its change flows like any other)
        and a Debezium heartbeat message."""
        m = self.metrics.as_dict(idle)
        conn.execute(
            f"INSERT INTO {HEARTBEAT_SCHEMA}.heartbeat AS h (source, ts, seq, lag_bytes, "
            "lag_seconds, events_total, events_per_s, commit_to_ack_p95_s) "
            "VALUES (%s, now(), 1, %s, %s, %s, %s, %s) ON CONFLICT (source) DO UPDATE SET "
            "ts = now(), seq = h.seq + 1, lag_bytes = EXCLUDED.lag_bytes, "
            "lag_seconds = EXCLUDED.lag_seconds, events_total = EXCLUDED.events_total, "
            "events_per_s = EXCLUDED.events_per_s, "
            "commit_to_ack_p95_s = EXCLUDED.commit_to_ack_p95_s",
            (self.source.name, m["lag_bytes"], m["lag_seconds"], m["events_total"],
             m["events_per_s"], m["commit_to_ack_p95_s"]))
        topic = f"__debezium-heartbeat.{self.source.name}"
        publisher.send(topic, json.dumps({"serverName": self.source.name}).encode(),
                       json.dumps({"ts_ms": int(time.time() * 1000)}).encode())

    def _write_metrics(self, idle: bool) -> None:
        self.metrics.conversion_errors = sum(s.conversion_errors for s in self.shapes.values()
                                             if s is not None)
        self.metrics.fast_path_fallbacks = sum(e.fallbacks for e in self.fast.values())
        write_status(self.metrics_path, self.metrics.as_dict(idle))
