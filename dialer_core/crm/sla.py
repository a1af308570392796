"""SLA deadlines of tickets: business minutes per ticket type on the region's calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dialer_core.crm.business_calendar import BusinessCalendar
from dialer_core.crm.db import all_rows, one
from dialer_core.crm.errors import ValidationError
from dialer_core.crm.settings import CrmSettings


@dataclass(frozen=True)
class SlaDeadline:
    due_at: datetime
    remind_at: datetime


def load_calendar(conn: psycopg.Connection[Any], region_id: int | None,
                  settings: CrmSettings) -> BusinessCalendar:
    """The calendar of a region (the default calendar when the region is unknown)."""
    if region_id is None:
        row = one(conn, "SELECT * FROM business_calendars WHERE code = %s",
                  (settings.default_calendar_code,))
    else:
        row = one(conn, "SELECT c.* FROM business_calendars c JOIN regions r USING (calendar_id)"
                        " WHERE r.region_id = %s", (region_id,))
    if row is None:
        raise ValidationError(f"no business calendar for region {region_id}", field="region_id")
    holidays = all_rows(conn, "SELECT holiday FROM calendar_holidays WHERE calendar_id = %s",
                        (row["calendar_id"],))
    return BusinessCalendar(
        timezone=row["timezone"], day_start=row["day_start"], day_end=row["day_end"],
        weekend_isodow=frozenset(row["weekend_isodow"]),
        holidays=frozenset(h["holiday"] for h in holidays))


def deadline(conn: psycopg.Connection[Any], ticket_type: str, region_id: int | None,
             start: datetime, settings: CrmSettings) -> SlaDeadline:
    """When a ticket of ``ticket_type`` opened at ``start`` is due, and when to remind.

    The reminder fires when ``remind_before_minutes`` of business time are left, so it never
    lands in a night or a weekend when nobody would read it.
    """
    policy = one(conn, "SELECT resolve_minutes, remind_before_minutes FROM sla_policies "
                       "WHERE ticket_type = %s", (ticket_type,))
    if policy is None:
        raise ValidationError(f"unknown ticket type {ticket_type!r}", field="ticket_type")
    calendar = load_calendar(conn, region_id, settings)
    total = policy["resolve_minutes"]
    remind_after = max(0, total - policy["remind_before_minutes"])
    return SlaDeadline(due_at=calendar.add_business_minutes(start, total),
                       remind_at=calendar.add_business_minutes(start, remind_after))
