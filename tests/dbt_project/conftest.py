"""A fresh warehouse database with the staging tables of the contract, and dbt run on it
through contour.dbt (the real `dbt` of .venvs/dbt) with a private state folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contour import dbt
from contour.config import Config
from tests.conftest import Stack
from tests.dbt_project.fixture_day import apply_late_update, load_day
from tests.dbt_project.staging import create_staging
from tests.dbt_project.tables import CALL_COLUMNS, read


@dataclass
class Warehouse:
    config: Config
    dsn: str

    def dbt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = dbt.run(self.config, list(args), capture=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"dbt {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-8000:]}\n{result.stderr[-3000:]}")
        return result

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(query).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="package")
def warehouse(pg: Stack) -> Iterator[Warehouse]:
    """An empty database with every staging table (dropped afterwards)."""
    name = f"dbt_{uuid.uuid4().hex[:10]}"
    admin = pg.config.pg_dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    dsn = pg.config.pg_dsn(name)
    state = Path(tempfile.mkdtemp(prefix="contour-dbt-test-"))
    env = {**pg.env, "CONTOUR_STATE_DIR": str(state), "CONTOUR_PG_WAREHOUSE_DSN": dsn}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_staging(conn)
        yield Warehouse(Config.from_env(env), dsn)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class Built:
    warehouse: Warehouse
    calls_before_late_update: dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="package")
def built(warehouse: Warehouse) -> Built:
    """The fixture day built: `dbt build` on the day as first exported (attempt 10 still in
    conversation), then attempt 10's late update and `dbt build --select tag:realtime`."""
    with warehouse.connect() as conn:
        load_day(conn)
    warehouse.dbt("build")
    before = {grain: read(warehouse, f"kpi_calls_{grain}", CALL_COLUMNS)
              for grain in ("15m", "hourly", "daily")}
    with warehouse.connect() as conn:
        apply_late_update(conn)
    warehouse.dbt("build", "--select", "tag:realtime")
    return Built(warehouse, before)
