"""Kafka side of the relay: topics, an idempotent acks=all producer, and delivery checks."""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    pass


class Publisher:
    def __init__(self, bootstrap: str, partitions: int, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all",
            enable_idempotence=True, linger_ms=5, batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
        self._topics: set[str] = set()
        self._error: BaseException | None = None
        self.sent = 0

    def ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        try:
            self.admin.create_topics([NewTopic(topic, num_partitions=self.partitions,
                                               replication_factor=1)])
            log.info("created topic %s (%d partitions)", topic, self.partitions)
        except TopicAlreadyExistsError:
            pass
        self._topics.add(topic)

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.ensure_topic(topic)
        self.producer.send(topic, key=key, value=value).add_errback(self._failed)
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the broker acknowledged everything sent; raise if anything failed."""
        try:
            self.producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise DeliveryError(f"broker did not acknowledge in {timeout:.0f}s: {exc}") from exc
        if self._error is not None:
            error, self._error = self._error, None
            raise DeliveryError(f"broker refused a change event: {error}")

    def close(self) -> None:
        for closer in (lambda: self.producer.close(timeout=5), self.admin.close):
            with contextlib.suppress(Exception):  # closing after a failure must not raise
                closer()
