"""Kafka side of the relay: topics, an idempotent acks=all producer, and delivery checks.

librdkafka (confluent-kafka) rather than kafka-python here: on this machine kafka-python
produced ≈ 3k messages/s to the embedded broker and librdkafka ≈ 130k/s (bench/bench_cdc.py).
The partitioner is ``murmur2_random``, the Java client's, so that a key lands on the same
partition as with a real Debezium connector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ingestion.broker_probe import checksum

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    pass


class Publisher:
    def __init__(self, bootstrap: str, partitions: int, client_id: str) -> None:
        self.partitions = partitions
        self._error: str | None = None
        #: highest acknowledged offset per (topic, partition) in this run, and since the last
        #: take_offsets(); the last acknowledged message
        self._highs: dict[tuple[str, int], int] = {}
        self._batch: dict[tuple[str, int], int] = {}
        self._last: Message | None = None
        # librdkafka's own log lines (broker down, reconnects) go to Python logging
        common = {"bootstrap.servers": bootstrap, "client.id": client_id,
                  "logger": logging.getLogger("librdkafka")}
        # linger.ms: the relay flushes every flush_interval (0.2 s) anyway; a long linger
        # makes one batch per partition per flush instead of one per 5 ms. The embedded
        # broker stores every batch as an object and each fetch walks a partition's batches
        # from its start: at 5 ms, 5,000 changes/s made ~70k batches per partition in six
        # minutes and the loader's fetches came back empty (BENCHMARKS.md, sustained).
        self.producer = Producer({
            **common, "acks": "all", "enable.idempotence": True, "linger.ms": 100,
            "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000,
            "message.max.bytes": 8 * 1024 * 1024, "partitioner": "murmur2_random",
            "message.timeout.ms": 60_000, "on_delivery": self._acknowledged,
            # topics are created with CONTOUR_CDC_PARTITIONS (ensure_topic); a broker that
            # restarted without its log must not get them back with its own default count
            "allow.auto.create.topics": False,
        })
        self.admin = AdminClient(common)
        self._topics: set[str] = set()
        self.sent = 0
        #: the hot path's produce, called positionally as (topic, value, key) for an event
        #: the warehouse stores, to a topic ensure_topic made: no Python frame in between.
        #: BufferError when the local queue is full: then send() waits for room. The caller
        #: calls poll() now and then, which runs the delivery reports.
        self.produce = self.producer.produce

    def _delivered_unlanded(self, err: KafkaError | None, msg: Message) -> None:
        self._acknowledged(err, msg, landed=False)

    def _acknowledged(self, err: KafkaError | None, msg: Message, landed: bool = True) -> None:
        """The delivery report of every event (librdkafka calls it from poll and flush)."""
        if err is not None:
            if self._error is None:
                self._error = f"broker refused a change event: {err}"
            return
        tp = (msg.topic(), msg.partition())
        offset = msg.offset()
        if offset <= self._highs.get(tp, -1) and self._error is None:
            self._error = (f"the broker's log of {tp[0]}[{tp[1]}] went back from offset "
                           f"{self._highs[tp]} to {offset}: it restarted without its log")
        self._highs[tp] = offset
        if landed:  # (what take_offsets reports: the offsets a batch waits to see landed)
            self._batch[tp] = offset
        self._last = msg

    def take_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the last offset acknowledged since the previous call."""
        batch, self._batch = self._batch, {}
        return batch

    def last_acked(self) -> list[object] | None:
        """[topic, partition, offset, checksum] of the last acknowledged event."""
        msg = self._last
        if msg is None:
            return None
        return [msg.topic(), msg.partition(), msg.offset(), checksum(msg.value())]

    def ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        futures = self.admin.create_topics([NewTopic(topic, num_partitions=self.partitions,
                                                     replication_factor=1)])
        try:
            futures[topic].result(timeout=30)
            log.info("created topic %s (%d partitions)", topic, self.partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise DeliveryError(f"cannot create topic {topic}: {exc}") from exc
        self._topics.add(topic)

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             landed: bool = True) -> None:
        """Produce one event; ``landed=False`` for an event the warehouse does not store (a
        truncate): its offset never holds a batch's confirmation (take_offsets)."""
        if topic not in self._topics:
            self.ensure_topic(topic)
        while True:
            try:
                if landed:  # (the hot path: positional arguments, the default callback)
                    self.producer.produce(topic, value, key)
                else:
                    self.producer.produce(topic, value, key,
                                          on_delivery=self._delivered_unlanded)
                break
            except BufferError:  # local queue full: let librdkafka drain it
                self.producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self.producer.poll(0)

    def poll(self) -> None:
        """Run the delivery reports of what the broker acknowledged so far (non-blocking)."""
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0,
              abort: Callable[[], str | None] | None = None) -> None:
        """Wait until the broker acknowledged everything sent; raise if anything failed, or
        as soon as ``abort`` gives a reason to stop waiting."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
            if not left or time.monotonic() >= deadline:
                break
            reason = abort() if abort is not None else None
            if reason:
                raise DeliveryError(f"{reason} ({left} events not acknowledged)")
        if left:
            raise DeliveryError(f"broker did not acknowledge {left} events in {timeout:.0f}s")
        if self._error is not None:
            error, self._error = self._error, None
            raise DeliveryError(error)

    def close(self) -> None:
        self.producer.flush(5)
