"""Confirmation "landed": which acknowledged batches count as stored downstream (unit tests;
the broker and ClickHouse are stand-ins here, the relay test runs them for real)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingestion.cdc import durability as durability_module
from ingestion.cdc.durability import Durability
from ingestion.cdc.offsets import Offsets

T = "src.public.ledger"


class FakeLanded:
    """What raw._landing_metrics says: (topic, partition) → (landed, probe offset, probe lsn)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[int, int, int]] = {}
        self.asked: list[set[str]] = []

    def read(self, topics: Any, since: float) -> dict[tuple[str, int], tuple[int, int, int]]:
        self.asked.append(set(topics))
        return {tp: row for tp, row in self.rows.items() if tp[0] in self.asked[-1]}


def _value(lsn: int) -> bytes:
    return orjson.dumps({"op": "c", "after": {"id": 1}, "source": {"lsn": lsn}})


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, int, int], bytes]:
    """The broker's log: (topic, partition, offset) → value."""
    messages: dict[tuple[str, int, int], bytes] = {}

    def broker_messages(_bootstrap: str, _group: str, offsets: dict[tuple[str, int], int],
                        timeout: float = 10.0) -> dict[tuple[str, int], bytes | None]:
        return {tp: messages.get((*tp, o)) for tp, o in offsets.items()}

    monkeypatch.setattr(durability_module, "broker_messages", broker_messages)
    return messages


def _position(end: int) -> Offsets:
    return Offsets(slot="s", snapshot_done=True, commit_lsn=end - 1, end_lsn=end)


def test_a_batch_is_durable_once_every_partition_landed_past_it(log: dict) -> None:
    landed = FakeLanded()
    d = Durability("src", landed, "broker:9092")  # type: ignore[arg-type]
    first, second = _position(100), _position(200)
    d.acked(first, {(T, 0): 4, (T, 1): 2})
    d.acked(second, {(T, 0): 9})
    log[(T, 0, 4)], log[(T, 1, 2)], log[(T, 0, 9)] = _value(40), _value(20), _value(90)

    assert d.refresh() is None  # nothing landed yet
    landed.rows = {(T, 0): (9, 9, 90)}  # partition 0 landed past both batches, 1 not at all
    assert d.refresh() is None and d.pending() == 2
    landed.rows[(T, 1)] = (2, 2, 20)
    assert d.refresh() is second  # both batches at once: the newest position
    assert d.durable is second and d.pending() == 0
    assert landed.asked[-1] == {T}


def test_landed_offsets_of_another_log_are_not_trusted(log: dict) -> None:
    """The metrics may describe the topic's previous incarnation (the broker restarted):
    the newest landed row must be the broker's message at its offset."""
    landed = FakeLanded()
    d = Durability("src", landed, "broker:9092")  # type: ignore[arg-type]
    batch = _position(100)
    d.acked(batch, {(T, 0): 3})
    log[(T, 0, 3)] = _value(33)
    landed.rows = {(T, 0): (500, 500, 77)}  # the old log: no message 500 in this one
    assert d.refresh() is None
    log[(T, 0, 500)] = _value(78)  # a message 500 exists now, but another one
    assert d.refresh() is None
    landed.rows = {(T, 0): (3, 3, 33)}  # the loader re-read the new log
    assert d.refresh() is batch


def test_a_landed_offset_going_back_is_checked_again(log: dict) -> None:
    landed = FakeLanded()
    d = Durability("src", landed, "broker:9092")  # type: ignore[arg-type]
    log[(T, 0, 5)] = _value(50)
    first = _position(100)
    d.acked(first, {(T, 0): 5})
    landed.rows = {(T, 0): (5, 5, 50)}
    assert d.refresh() is first
    log.clear()  # the broker lost its log; the loader starts the partition over
    log[(T, 0, 1)] = _value(60)
    second = _position(200)
    d.acked(second, {(T, 0): 2})
    landed.rows = {(T, 0): (1, 1, 999)}  # below the verified offset, and not that message
    assert d.refresh() is None
    landed.rows = {(T, 0): (2, 1, 60)}  # the newest row is the broker's message 1
    assert d.refresh() is second


def test_events_that_are_never_landed_do_not_hold_a_batch(log: dict) -> None:
    landed = FakeLanded()
    d = Durability("src", landed, "broker:9092")  # type: ignore[arg-type]
    heartbeat_only = _position(100)
    d.acked(heartbeat_only, {("__debezium-heartbeat.src", 0): 7})
    assert d.durable is heartbeat_only and d.pending() == 0
    held = _position(200)
    d.acked(held, {(T, 0): 1})
    after = _position(300)
    d.acked(after, {("__debezium-heartbeat.src", 0): 8})
    assert d.pending() == 2  # behind a batch that waits, it waits too
    log[(T, 0, 1)] = _value(10)
    landed.rows = {(T, 0): (1, 1, 10)}
    assert d.refresh() is after


def test_a_broker_without_the_last_acknowledged_event_is_reported(log: dict) -> None:
    d = Durability("src", FakeLanded(), "broker:9092")  # type: ignore[arg-type]
    value = _value(10)
    from ingestion.broker_probe import checksum

    position = _position(100)
    position.probe = [T, 0, 3, checksum(value)]
    d.acked(position, {(T, 0): 3})
    log[(T, 0, 3)] = value
    d.check_broker()
    assert d.broker_lost is None
    log[(T, 0, 3)] = _value(11)  # another message at that offset: a new log
    d.check_broker()
    assert d.broker_lost is not None and f"{T}[0] offset 3" in d.broker_lost
