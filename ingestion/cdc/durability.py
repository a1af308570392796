"""Confirmation "landed": the slot is confirmed only up to what is stored downstream.

A Debezium connector confirms a position to PostgreSQL once Kafka acknowledged its events,
because Kafka's log is durable. The embedded broker keeps its log in memory: restarted, it has
lost every event nobody had read yet, and a slot confirmed on its acknowledgement can no longer
give them back. So with ``CONTOUR_CDC_CONFIRM=landed`` (the default) the durable point is the
ClickHouse landing, and ``broker`` keeps Debezium's behaviour for a Kafka with durable logs:

- Every flush of the relay is a batch: the position of its last complete transaction and, per
  topic partition, the offset of its last event (from the broker's delivery reports).
- A thread reads the landing metrics every 2 s (``raw._landing_metrics``: per partition the
  offset landed and the offset and LSN of the newest landed row). A partition's landed offset
  is trusted once the broker's message at that row's offset carries that row's LSN — the
  metrics may describe an older log of the topic — checked once per partition and relay run.
- Oldest first, a batch whose every partition is landed at or past its offsets is durable:
  the relay stores that position in its offsets file and confirms it to the slot.
- The relay checks that the broker still holds its last acknowledged event (by offset and
  checksum): on start and every 5 s. If the log is gone, it goes back to the durable position
  and publishes again from there: the events between the durable and the acknowledged positions
  reach the broker twice (the contract allows it; ``(source.lsn, key)`` removes them) and none
  is lost. If the initial snapshot was not stored downstream yet, it is taken again.

The price: on a source whose loader is down, WAL is kept until the loader lands again, as it is
for a Debezium connector whose Kafka is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from contour.config import Config
from ingestion.broker_probe import broker_messages, checksum, message_lsn
from ingestion.cdc.offsets import Offsets

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
#: topics that are not landed (Debezium's heartbeat topic): their events never hold a batch
UNLANDED_PREFIX = "__"
SINCE_MARGIN_S = 300.0


class LandedPositions:
    """Per partition, from the newest ``raw._landing_metrics`` row: (landed offset, offset of
    the newest landed row, its source LSN)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._client: Any = None

    def read(self, topics: Iterable[str], since: float
             ) -> dict[TopicPartition, tuple[int, int, int]]:
        if self._client is None:
            from ingestion.landing.loader import clickhouse_client

            self._client = clickhouse_client(self.config)
        rows = self._client.query(
            "SELECT topic, partition, argMax(landed_offset, at), argMax(probe_offset, at), "
            "argMax(probe_lsn, at) FROM raw._landing_metrics WHERE topic IN {t:Array(String)} "
            "AND at >= {s:DateTime64(3, 'UTC')} GROUP BY topic, partition",
            parameters={"t": sorted(set(topics)),
                        "s": datetime.fromtimestamp(since, UTC)}).result_rows
        return {(t, p): (int(landed), int(offset), int(lsn))
                for t, p, landed, offset, lsn in rows}


class Durability:
    """The relay's batches waiting to be landed, and the newest durable position."""

    REFRESH_S = 2.0
    BROKER_CHECK_S = 5.0

    def __init__(self, source: str, landed: LandedPositions, bootstrap: str) -> None:
        self.source = source
        self.landed = landed
        self.bootstrap = bootstrap
        self.group_id = f"contour-cdc-{source}.probe"
        self._pending: deque[tuple[Offsets, dict[TopicPartition, int], float]] = deque()
        self._lock = threading.Lock()
        #: partition → landed offset whose log was checked to be the broker's current one
        self._verified: dict[TopicPartition, int] = {}
        #: newest position stored downstream (set by the thread, taken by the relay)
        self.durable: Offsets | None = None
        #: [topic, partition, offset, checksum] of the last acknowledged event
        self.last_acked: list[Any] | None = None
        self.broker_lost: str | None = None
        self._last_warning = 0.0

    # ------------------------------------------------------------------ relay side
    def acked(self, position: Offsets, offsets: dict[TopicPartition, int]) -> None:
        """A flush the broker acknowledged: ``position`` is durable once every partition in
        ``offsets`` is landed at or past its offset."""
        held = {tp: o for tp, o in offsets.items() if not tp[0].startswith(UNLANDED_PREFIX)}
        with self._lock:
            if not held and not self._pending:
                self.durable = position  # nothing of it goes downstream
            else:
                self._pending.append((position, held, time.time()))
            if position.probe:
                self.last_acked = position.probe

    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ thread side
    def run(self, stop: threading.Event) -> None:
        """Refresh every REFRESH_S and check the broker's log every BROKER_CHECK_S."""
        last_check = time.monotonic()
        while not stop.wait(self.REFRESH_S):
            try:
                self.refresh()
                if time.monotonic() - last_check >= self.BROKER_CHECK_S:
                    last_check = time.monotonic()
                    self.check_broker()
            except Exception as exc:  # noqa: BLE001 - ClickHouse or broker away: retry
                if time.monotonic() - self._last_warning > 60:
                    self._last_warning = time.monotonic()
                    log.warning("cdc %s: cannot tell what is landed downstream (%s); the slot "
                                "is not confirmed meanwhile (%d batches waiting)", self.source,
                                exc, self.pending())

    def check_broker(self) -> None:
        """Set ``broker_lost`` if the broker no longer holds the last acknowledged event."""
        probe = self.last_acked
        if probe is not None and not self.broker_holds(probe):
            self.broker_lost = (f"the broker no longer holds the event it acknowledged at "
                                f"{probe[0]}[{probe[1]}] offset {probe[2]}")

    def broker_holds(self, probe: list[Any]) -> bool:
        """Whether the broker's message at the probe's offset is the one acknowledged there.
        Raises if the broker does not answer (not a proof either way)."""
        topic, partition, offset, crc = probe
        found = broker_messages(self.bootstrap, self.group_id, {(topic, partition): offset})
        if (topic, partition) not in found:
            raise ConnectionError(f"the broker did not return {topic}[{partition}]@{offset}")
        value = found[(topic, partition)]
        return value is not None and checksum(value) == crc

    def refresh(self) -> Offsets | None:
        """Move ``durable`` past every batch landed downstream; returns it if it moved."""
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return None
        topics = {t for _, offsets, _ in pending for t, _ in offsets}
        # rows older than the oldest waiting batch cannot show it landed, except one written
        # just before its acknowledgement arrived (the loader may read an event before the
        # relay hears the broker's ack): a generous margin, the filter only bounds the scan
        rows = self.landed.read(topics, since=pending[0][2] - SINCE_MARGIN_S)
        self._verify(rows)
        landed = {tp: row[0] for tp, row in rows.items()
                  if tp in self._verified and row[0] >= self._verified[tp]}
        durable = None
        for position, offsets, _ in pending:
            if any(landed.get(tp, -1) < offset for tp, offset in offsets.items()):
                break
            durable = position
        if durable is None:
            return None
        with self._lock:
            while self._pending and self._pending[0][0] is not durable:
                self._pending.popleft()
            self._pending.popleft()
            self.durable = durable
        return durable

    def _verify(self, rows: dict[TopicPartition, tuple[int, int, int]]) -> None:
        """Trust a partition's landed offsets once its newest landed row is the broker's
        message at that offset (again if the landed offset went back: the loader re-read)."""
        check = {tp: probe_offset for tp, (landed, probe_offset, _) in rows.items()
                 if probe_offset >= 0 and landed < self._verified.get(tp, 1 << 62)}
        if not check:
            return
        found = broker_messages(self.bootstrap, self.group_id, check)
        for tp, value in found.items():
            if value is not None and message_lsn(value) == rows[tp][2]:
                self._verified[tp] = rows[tp][0]
            else:
                self._verified.pop(tp, None)
