"""Tunable CRM behaviour, in one immutable object passed to the functions that need it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

CHANNELS = ("call", "chat", "email", "whatsapp", "telegram", "viber", "web")
# channels whose address is a phone number, hence the customer's identity
PHONE_CHANNELS = frozenset({"call", "whatsapp", "viber"})
TICKET_TYPES = ("task", "claim")


@dataclass(frozen=True)
class CrmSettings:
    # a repeat appeal (same customer, same topic, any channel) opened within this time after the
    # first appeal of the case is linked to it instead of opening a new case; 7 days matches the
    # "repeat-contact rate within 7 days" KPI
    repeat_window: timedelta = timedelta(days=7)
    # a repeat on a case already resolved means it was not: reopen it (a closed case stays closed)
    reopen_resolved_on_repeat: bool = True
    # calendar for tickets whose region is unknown
    default_calendar_code: str = "default"
    # where dialer calls land when the caller gives no queue/topic
    call_queue_code: str = "calls"
    call_topic_code: str = "general"


DEFAULT_SETTINGS = CrmSettings()
