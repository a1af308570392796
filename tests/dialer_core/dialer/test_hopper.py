"""The batcher's one set-based selection and the in-memory hopper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from dialer_core.dialer.callbacks import create_callback
from dialer_core.dialer.hopper import Hopper, select_dialable

from .conftest import T0
from .factory import campaign, lead, operator


def _ids(conn: psycopg.Connection, now: datetime) -> list[int]:
    return [e.lead_id for e in select_dialable(conn, now)]


def test_window_is_evaluated_in_each_leads_own_timezone(db: psycopg.Connection):
    c = campaign(db, window_start="09:00", window_end="21:00")
    utc = lead(db, c, T0 - timedelta(minutes=5), "UTC")                 # 12:00 local
    lead(db, c, T0 - timedelta(minutes=5), "America/New_York")          # 07:00 EST
    lead(db, c, T0 - timedelta(minutes=5), "Asia/Tokyo")                # 21:00, end excluded
    moscow = lead(db, c, T0 - timedelta(minutes=4), "Europe/Moscow")    # 15:00
    assert _ids(db, T0) == [utc, moscow]


def test_dst_start_moves_the_utc_window_by_an_hour(db: psycopg.Connection):
    c = campaign(db, window_start="09:00", window_end="21:00")
    ny = lead(db, c, datetime(2026, 3, 1, tzinfo=UTC), "America/New_York")
    # Saturday 13:00 UTC = 08:00 EST (closed); Sunday after the jump 13:00 UTC = 09:00 EDT (open)
    assert _ids(db, datetime(2026, 3, 7, 13, 0, tzinfo=UTC)) == []
    assert _ids(db, datetime(2026, 3, 8, 13, 0, tzinfo=UTC)) == [ny]
    # the window closes at 21:00 EDT = 01:00 UTC next day, not 02:00
    assert _ids(db, datetime(2026, 3, 9, 0, 59, tzinfo=UTC)) == [ny]
    assert _ids(db, datetime(2026, 3, 9, 1, 0, tzinfo=UTC)) == []
    # and back in autumn: 21:00 EST = 02:00 UTC
    assert _ids(db, datetime(2026, 11, 2, 1, 30, tzinfo=UTC)) == [ny]


def test_window_spanning_midnight(db: psycopg.Connection):
    c = campaign(db, window_start="22:00", window_end="06:00")
    one = lead(db, c, T0 - timedelta(hours=12))
    assert _ids(db, T0.replace(hour=23)) == [one]
    assert _ids(db, T0.replace(hour=5, minute=59)) == [one]
    assert _ids(db, T0) == []


def test_holiday_is_the_leads_local_date(db: psycopg.Connection):
    cal = db.execute("INSERT INTO calendars (name) VALUES ('ru') RETURNING calendar_id"
                     ).fetchone()[0]  # type: ignore[index]
    db.execute("INSERT INTO holidays (calendar_id, day, name) VALUES (%s, '2026-03-03', 'x')",
               (cal,))
    c = campaign(db, window_start="00:00", window_end="23:59:59", calendar_id=cal)
    utc = lead(db, c, T0 - timedelta(hours=1), "UTC")
    lead(db, c, T0 - timedelta(hours=1), "Asia/Tokyo")
    # 2026-03-02 20:00 UTC: still the 2nd in UTC, already the 3rd (a holiday) in Tokyo
    assert _ids(db, T0.replace(hour=20)) == [utc]


def test_only_active_due_unlocked_leads_with_attempts_left(db: psycopg.Connection):
    c = campaign(db, window_start="00:00", window_end="23:59:59", max_attempts=3)
    paused = campaign(db, "paused", window_start="00:00", window_end="23:59:59",
                      status="paused")
    ok = lead(db, c, T0 - timedelta(seconds=1), attempts=2)
    lead(db, c, T0, attempts=3)                              # no attempts left
    lead(db, c, T0 + timedelta(seconds=1))                   # not due yet
    lead(db, c, T0 - timedelta(minutes=1), locked_by=77)     # in a call
    lead(db, c, T0 - timedelta(minutes=1), status="done")
    lead(db, paused, T0 - timedelta(minutes=1))              # campaign not active
    assert _ids(db, T0) == [ok]


def test_callbacks_come_first_and_a_minute_early_to_their_operator(db: psycopg.Connection):
    c = campaign(db, window_start="00:00", window_end="23:59:59")
    op = operator(db, "ann", [c], "ready")
    early = lead(db, c, T0 - timedelta(hours=2))
    cb_lead = lead(db, c, T0 + timedelta(days=1))
    soon = lead(db, c, T0 + timedelta(seconds=30))           # plain lead: not yet
    cb = create_callback(db, cb_lead, op, T0 + timedelta(seconds=30), T0)
    entries = select_dialable(db, T0)
    assert [(e.lead_id, e.callback_id, e.owner_id) for e in entries] == [
        (cb_lead, cb, op), (early, None, None)]
    assert soon not in [e.lead_id for e in entries]

    hopper = Hopper()
    hopper.load(entries)
    assert hopper.depth(c) == 2
    assert hopper.take_personal(op, T0) is None              # due in 30 s, held until then
    assert hopper.has_due_personal(op, T0 + timedelta(seconds=30))
    taken = hopper.take_personal(op, T0 + timedelta(seconds=30))
    assert taken is not None and taken.callback_id == cb
    assert [e.lead_id for e in hopper.take_common(c, 5, T0)] == [early]
    assert hopper.depth(c) == 0


def test_hopper_size_caps_each_campaign_in_next_contact_order(db: psycopg.Connection):
    c = campaign(db, window_start="00:00", window_end="23:59:59", hopper_size=2)
    ids = [lead(db, c, T0 - timedelta(minutes=m)) for m in (1, 3, 2)]
    assert _ids(db, T0) == [ids[1], ids[2]]


def test_a_lead_selected_before_its_window_closes_is_not_dialed_after(db: psycopg.Connection):
    c = campaign(db, window_start="09:00", window_end="21:00")
    x = lead(db, c, T0 - timedelta(hours=1), "UTC")
    y = lead(db, c, T0 - timedelta(hours=1), "UTC")
    tick = T0.replace(hour=20, minute=59, second=30)
    hopper = Hopper()
    hopper.load(select_dialable(db, tick))
    assert [e.dialable_until for e in hopper.pools[c].common] == [T0.replace(hour=21)] * 2
    assert [e.lead_id for e in hopper.take_common(c, 1, tick + timedelta(seconds=29))] == [x]
    assert hopper.take_common(c, 1, T0.replace(hour=21)) == []
    assert hopper.depth(c) == 0 and y


def test_window_left_across_midnight(db: psycopg.Connection):
    c = campaign(db, window_start="22:00", window_end="06:00")
    lead(db, c, T0 - timedelta(hours=12), "Europe/Moscow")      # UTC+3
    tick = T0.replace(hour=20)                                   # 23:00 in Moscow
    [entry] = select_dialable(db, tick)
    assert entry.dialable_until == T0.replace(hour=3) + timedelta(days=1)  # 06:00 Moscow
