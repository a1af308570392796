"""A killed service leaves nothing locked or half-open after the next start."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contour.arguments import iso_moment
from dialer_core.clock import newest_recorded, resumed_clock
from dialer_core.dialer.callbacks import create_callback
from dialer_core.dialer.cli import RECORDED
from dialer_core.dialer.engine import Engine, run_simulation
from dialer_core.dialer.recovery import recover

from .conftest import T0
from .factory import campaign, lead, operator
from .scripted import ScriptedTelephony


def test_recover_releases_what_a_killed_engine_held(db: psycopg.Connection):
    c = campaign(db, window_start="00:00", window_end="23:59:59")
    ann = operator(db, "ann", [c])
    bob = operator(db, "bob", [c])
    x = lead(db, c, T0 + timedelta(days=1))
    y = lead(db, c, T0 - timedelta(minutes=1))
    cb = create_callback(db, x, ann, T0, T0)
    engine = Engine(db, ScriptedTelephony())
    engine.tick(T0)
    engine.operator_action(ann, "login", T0)
    engine.operator_action(bob, "login", T0)
    run_simulation(engine, T0, 20)          # both calls connected at T0+6; then "kill -9"
    later = T0 + timedelta(minutes=5)
    assert recover(db, later) == {"attempts": 2, "leads": 2, "callbacks": 0, "operators": 2}
    assert db.execute("SELECT lead_id, state, disposition, connected_at, closed_at"
                      " FROM call_attempts ORDER BY attempt_id").fetchall() == [
        (x, "closed", "interrupted", T0 + timedelta(seconds=6), later),
        (y, "closed", "interrupted", T0 + timedelta(seconds=6), later)]
    assert db.execute("SELECT count(*) FROM leads WHERE locked_by IS NOT NULL").fetchone() == (0,)
    assert db.execute("SELECT status FROM callbacks WHERE callback_id = %s", (cb,)
                      ).fetchone() == ("kept",)
    assert db.execute("SELECT status FROM operators ORDER BY operator_id").fetchall() == [
        ("ready",), ("ready",)]
    assert recover(db, later) == {"attempts": 0, "leads": 0, "callbacks": 0, "operators": 0}


def test_a_restarted_simulated_clock_resumes_after_the_newest_event(db: psycopg.Connection,
                                                                    dialer_dsn: str):
    """A run at speed 60 writes events hours ahead of the wall clock; the next run must not
    start its clock back at "now" (it would write operator states overlapping the old ones)."""
    assert newest_recorded(dialer_dsn, RECORDED) is None          # nothing recorded yet
    c = campaign(db, window_start="00:00", window_end="23:59:59")
    ann = operator(db, "ann", [c])
    engine = Engine(db, ScriptedTelephony())
    ahead = datetime.now(UTC) + timedelta(hours=5)
    engine.tick(ahead)
    engine.operator_action(ann, "login", ahead)
    engine.operator_action(ann, "logout", ahead + timedelta(minutes=1))
    newest = newest_recorded(dialer_dsn, RECORDED)
    assert newest == ahead + timedelta(minutes=1)
    said: list[str] = []
    clock = resumed_clock(60, None, newest, said.append)
    assert newest <= clock.now() < newest + timedelta(minutes=5)
    assert "resumes" in said[0]
    # a database behind the wall clock (or an explicit start after it) changes nothing
    assert resumed_clock(1, None, T0, said.append).now() > datetime.now(UTC) - timedelta(minutes=1)
    assert len(said) == 1
    # an explicit start (`dialer run --start`) is where the clock begins, unless the database
    # holds later events
    start = iso_moment("2030-01-02T06:00")
    assert start == datetime(2030, 1, 2, 6, tzinfo=UTC)
    assert start <= resumed_clock(60, start, newest, said.append).now() < start + timedelta(
        minutes=5)
    assert resumed_clock(60, newest - timedelta(hours=1), newest, said.append).now() >= newest
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO"):
        iso_moment("tomorrow")


def test_newest_recorded_of_a_database_not_migrated_is_none(pg) -> None:  # type: ignore[no-untyped-def]
    assert newest_recorded(pg.config.pg_dsn("postgres"), RECORDED) is None
