"""Simultaneous appeals of one customer (several channels at once) open exactly one case."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from dialer_core.crm import appeals

from .conftest import rows, utc

pytestmark = pytest.mark.integration

T0 = utc(2026, 11, 16, 7)
CHANNELS = [("call", "+79125550000"), ("whatsapp", "+79125550000"), ("viber", "89125550000"),
            ("telegram", "@same"), ("chat", "chat-same"), ("email", "same@example.com"),
            ("web", "web-same"), ("call", "8 912 555 00 00")]


def test_simultaneous_repeats_link_to_a_single_first_appeal(crm_dsn: str) -> None:
    barrier = threading.Barrier(len(CHANNELS))
    errors: list[BaseException] = []

    def contact(n: int) -> None:
        channel, address = CHANNELS[n]
        try:
            with psycopg.connect(crm_dsn, autocommit=True) as conn:
                barrier.wait()
                appeals.create(conn, channel=channel, address=address, phone="+79125550000",
                               topic_id=2, queue_id=2, at=T0 + timedelta(seconds=n))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=contact, args=(n,)) for n in range(len(CHANNELS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with psycopg.connect(crm_dsn) as conn:
        assert rows(conn, "SELECT count(*) FROM customers") == [(1,)]
        assert rows(conn, "SELECT status, count(*) FROM appeals GROUP BY 1 ORDER BY 1") == [
            ("linked", 7), ("open", 1)]
        assert rows(conn, "SELECT count(DISTINCT linked_appeal_id) FROM appeals") == [(1,)]
