"""A killed service leaves nothing locked or half-open after the next start."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from dialer_core.dialer.callbacks import create_callback
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
