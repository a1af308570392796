"""Read single messages back from the broker, to tell whether its log is still the one a
position refers to.

The embedded broker keeps its log in memory: restarted, every topic starts again at offset 0,
and an offset recorded before means nothing in the new log. A position is trusted only if the
broker's message at that offset is the one recorded there — compared by its source LSN (the
loader's and the relay's landed positions) or by a checksum of its bytes (the relay's last
acknowledged event).
"""

from __future__ import annotations

import logging
import time
import zlib

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from ingestion.landing.tables import connect_payload

TopicPartitionKey = tuple[str, int]


def broker_messages(bootstrap: str, group_id: str, offsets: dict[TopicPartitionKey, int],
                    timeout: float = 10.0) -> dict[TopicPartitionKey, bytes | None]:
    """The value of the message at each (topic, partition)'s offset, read by a consumer of
    its own; ``None`` where the log has none there: no such partition, an offset out of
    range, or nothing fetched within ``timeout`` and the log ending before the offset (the
    embedded broker answers a fetch past its end with nothing, not an error). A partition the
    broker did not answer for is left out."""
    found: dict[TopicPartitionKey, bytes | None] = {}
    if not offsets:
        return found
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                      "enable.auto.commit": False, "auto.offset.reset": "error",
                      "enable.partition.eof": True, "logger": logging.getLogger("librdkafka")})
    try:
        topics = probe.list_topics(timeout=timeout).topics  # raises if the broker is away
        for topic, partition in offsets:
            meta = topics.get(topic)
            if meta is None or meta.error is not None or partition not in meta.partitions:
                found[(topic, partition)] = None  # no such partition (any more)
        wanted = {tp: o for tp, o in offsets.items() if tp not in found}
        if wanted:
            probe.assign([TopicPartition(t, p, o) for (t, p), o in wanted.items()])
        deadline = time.monotonic() + timeout
        while len(found) < len(offsets) and time.monotonic() < deadline:
            for m in probe.consume(len(offsets), timeout=0.5):
                tp = (m.topic(), m.partition())
                if tp in found or tp not in offsets:
                    continue
                error = m.error()
                if error is None:
                    found[tp] = m.value() if m.offset() == offsets[tp] else None
                elif error.code() in (KafkaError._PARTITION_EOF, KafkaError._AUTO_OFFSET_RESET,
                                      KafkaError.OFFSET_OUT_OF_RANGE,
                                      KafkaError.UNKNOWN_TOPIC_OR_PART,
                                      KafkaError._UNKNOWN_PARTITION):
                    found[tp] = None
        for (topic, partition), offset in wanted.items():
            if (topic, partition) not in found:  # nothing came: is the offset past the end?
                _, high = probe.get_watermark_offsets(TopicPartition(topic, partition),
                                                      timeout=timeout)
                if high is not None and 0 <= high <= offset:
                    found[(topic, partition)] = None
    finally:
        probe.close()
    return found


def message_lsn(value: bytes | None) -> int | None:
    """``source.lsn`` of a Debezium change event (plain or schemas.enable form), or None."""
    try:
        lsn = connect_payload(orjson.loads(value or b""))["source"]["lsn"]  # type: ignore[index]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return lsn if isinstance(lsn, int) else None


def checksum(value: bytes | None) -> int:
    """A message value's fingerprint (CRC-32; a tombstone's is -1)."""
    return -1 if value is None else zlib.crc32(value)
