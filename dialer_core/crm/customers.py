"""Customer identity: who is behind an incoming (channel, address).

One person is one customer whatever channel they use. Phone-based channels resolve by the
normalised phone (shared with dialer leads); other channels resolve by their own contact, or by
a phone given alongside (a web form with a phone field). Unknown addresses create the customer
and the contact on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm.db import one
from dialer_core.crm.errors import ValidationError
from dialer_core.crm.phones import normalise_phone
from dialer_core.crm.settings import CHANNELS, PHONE_CHANNELS


@dataclass(frozen=True)
class Identity:
    customer_id: int
    contact_id: int
    address: str


def normalise_address(channel: str, address: str) -> str:
    if channel not in CHANNELS:
        raise ValidationError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}",
                              field="channel")
    if channel in PHONE_CHANNELS:
        return normalise_phone(address)
    text = (address or "").strip()
    if channel == "email":
        text = text.lower()
        if "@" not in text.strip("@"):
            raise ValidationError(f"not an e-mail address: {address!r}", field="address")
    if not text:
        raise ValidationError("address is required", field="address")
    return text


def resolve(conn: psycopg.Connection[Any], channel: str, address: str, at: datetime, *,
            phone: str | None = None, full_name: str = "", store_id: int | None = None,
            ) -> Identity:
    """Find or create the customer and contact behind ``(channel, address)``."""
    address = normalise_address(channel, address)
    if channel in PHONE_CHANNELS:
        phone = address
    elif phone:
        phone = normalise_phone(phone)
    with conn.transaction():
        row = one(conn, "SELECT customer_id, contact_id FROM contacts "
                        "WHERE channel = %s AND address = %s", (channel, address))
        if row:
            return Identity(row["customer_id"], row["contact_id"], address)
        customer_id = _customer_for_phone(conn, phone, at, full_name, store_id)
        conn.execute(
            "INSERT INTO contacts (customer_id, channel, address, created_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (channel, address) DO NOTHING",
            (customer_id, channel, address, at))
        row = one(conn, "SELECT customer_id, contact_id FROM contacts "
                        "WHERE channel = %s AND address = %s", (channel, address))
        assert row is not None
        return Identity(row["customer_id"], row["contact_id"], address)


def _customer_for_phone(conn: psycopg.Connection[Any], phone: str | None, at: datetime,
                        full_name: str, store_id: int | None) -> int:
    if phone:
        # DO NOTHING + re-read rather than DO UPDATE: no spurious update event for CDC
        conn.execute(
            "INSERT INTO customers (phone, full_name, store_id, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (phone) WHERE phone IS NOT NULL DO NOTHING",
            (phone, full_name, store_id, at, at))
        row = one(conn, "SELECT customer_id FROM customers WHERE phone = %s", (phone,))
    else:
        row = one(conn, "INSERT INTO customers (full_name, store_id, created_at, updated_at) "
                        "VALUES (%s, %s, %s, %s) RETURNING customer_id",
                  (full_name, store_id, at, at))
    assert row is not None
    return int(row["customer_id"])
