"""A stack with Superset, the pipeline and marts built from a short real workload.

Once per test run: PostgreSQL, Kafka, ClickHouse, Superset, CDC and the loader come up with
``contour up`` (which provisions the dashboards); a small dialer (20 operators, 5,000 leads)
and the CRM run for a few simulated hours; the exporter copies ClickHouse to staging once and
dbt builds the marts. The dialer is stopped before the tests so that live numbers hold still.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from contour.superset_api import SupersetClient
from contour.superset_assets import client_for
from tests.conftest import ROOT, Stack

SERVICES = ("postgres", "kafka", "clickhouse", "superset", "cdc", "loader")


@dataclass
class SupersetStack:
    stack: Stack

    def client(self) -> SupersetClient:
        return client_for(self.stack.config).login()


def _wait_landed(stack: Stack, timeout: float = 120) -> None:
    """Until the loader has no backlog (the newest report of every partition has lag 0)."""
    from ingestion.landing.loader import clickhouse_client

    client = clickhouse_client(stack.config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # only this stack's sources: other tests' loaders report their own topics here
        rows = client.query(
            "SELECT sum(lag) FROM (SELECT argMax(lag, at) AS lag FROM raw._landing_metrics "
            "WHERE has({s:Array(String)}, splitByChar('.', topic)[1]) "
            "GROUP BY topic, partition)",
            parameters={"s": list(stack.config.cdc_source_names)}).result_rows
        if rows and rows[0][0] == 0:
            return
        time.sleep(2)
    raise AssertionError("the loader did not catch up within 120 s")


@pytest.fixture(scope="session")
def superset_stack(services: Stack) -> Iterator[SupersetStack]:
    stack = services.require(*SERVICES)
    stack.contour("dialer", "seed", "--operators", "20", "--leads", "5000", "--campaigns", "2",
                  "--replace")
    started = time.monotonic()
    dialer = subprocess.Popen([sys.executable, "-m", "contour", "dialer", "run", "--speed",
                               "60"], env=stack.env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack.contour("crm", "run", "--speed", "3600", "--hours", "3", "--appeals-per-day",
                      "20000", timeout=300)
        time.sleep(max(0.0, started + 45 - time.monotonic()))  # 45 simulated minutes or more
    finally:
        dialer.send_signal(signal.SIGTERM)
        dialer.wait(timeout=60)
    _wait_landed(stack)
    stack.contour("export", "once", timeout=600)
    # a model that fails to build (the dbt project is still changing) fails only the charts
    # that read it, with the database's error; the others are still checked
    built = stack.contour("dbt", "run", timeout=900, check=False)
    if built.returncode != 0:
        sys.stderr.write("contour dbt run failed for some models:\n" + built.stdout[-3000:])
    yield SupersetStack(stack)
