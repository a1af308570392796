"""Overlapping dbt runs: separate target folders per lane; writing runs wait for each other."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg

from contour import dbt
from tests.conftest import ROOT
from tests.dbt_project.conftest import Warehouse


def test_lanes_write_separate_target_folders(warehouse: Warehouse) -> None:
    assert dbt.target_path(warehouse.config) == warehouse.config.state_dir / "dbt" / "target"
    assert dbt.target_path(warehouse.config, "hourly") == \
        warehouse.config.state_dir / "dbt" / "target-hourly"
    assert dbt.dbt_env(warehouse.config, "backfill")["DBT_TARGET_PATH"].endswith(
        "target-backfill")


def test_a_writing_run_waits_for_the_one_holding_the_marts(warehouse: Warehouse) -> None:
    env = dict(warehouse.config.env)
    with psycopg.connect(warehouse.dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (dbt.LOCK_KEY,))
        proc = subprocess.Popen(
            [sys.executable, "-m", "contour", "dbt", "++lane", "backfill", "run", "--select",
             "tag:no_such_tag"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        time.sleep(5)
        assert proc.poll() is None, "the run did not wait for the lock"
    out, err = proc.communicate(timeout=120)  # the holder's connection closed: lock released
    assert proc.returncode == 0, out + err
    assert "another dbt run is writing the marts" in err
