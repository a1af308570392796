"""The DAGs on the real embedded Airflow, with live dialer and CRM traffic.

One private stack (the test kills its scheduler): the scheduler runs ``contour_realtime``
one after another while the dialer and CRM write; runs never overlap; each run records mart
freshness; the scheduler is killed with SIGKILL during a run and ``contour up`` repairs it; the
next run completes; after the workload stops, the marts hold exactly the source's call attempts
and appeals; a ``contour_backfill`` of the last hour leaves the marts as they were.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contour.airflow_api import AirflowApi
from tests.conftest import ROOT, Stack, private_stack

pytestmark = pytest.mark.integration
REALTIME = "contour_realtime"


def wait_for(what: str, check: Callable[[], bool], timeout: float,
             explain: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s. {explain()}")


def parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None


def succeeded(api: AirflowApi, dag_id: str = REALTIME) -> list[dict]:
    return [r for r in api.runs(dag_id) if r["state"] == "success"]


def scheduler_pid(stack: Stack) -> int:
    # exit status 1 while a workload service is idle: the JSON is still complete
    status = json.loads(stack.contour("status", "--json", check=False).stdout)
    airflow = next(s for s in status if s["service"] == "airflow")
    return next(p["pid"] for p in airflow["processes"] if p["name"] == "airflow-scheduler")


def explain_runs(stack: Stack, api: AirflowApi, dag_id: str = REALTIME) -> Callable[[], str]:
    """The runs' states, and the end of the log of each failed task of the latest runs."""
    def explain() -> str:
        runs = api.runs(dag_id)
        lines = [f"runs: {[(r['dag_run_id'], r['state']) for r in runs]}"]
        for run in runs[-3:]:
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                lines.append(f"  {run['dag_run_id']} {ti['task_id']}: {ti['state']}")
        logs = sorted((stack.config.data_dir("airflow") / "logs").rglob("*.log"),
                      key=lambda p: p.stat().st_mtime)
        for log in logs[-3:]:
            lines.append(f"--- {log}\n" + "\n".join(log_events(log)[-40:]))
        return "\n".join(lines)
    return explain


def log_events(log: Path) -> list[str]:
    """A task log's messages without Airflow's JSON framing (the command's own output is
    what says why a task failed)."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            events.append(line[:400])
            continue
        if isinstance(record, dict) and record.get("event"):
            events.append(f"{record.get('level', '')}: {str(record['event'])[:400]}")
    return events


def count(stack: Stack, database: str, sql: str) -> int:
    with psycopg.connect(stack.config.pg_dsn(database)) as conn:
        return conn.execute(sql).fetchone()[0]  # type: ignore[index]


def marts_rows(stack: Stack) -> dict[str, set[str]]:
    """Every marts table's rows as text, leaving out columns that record build times and the
    pipeline marts (CDC heartbeats change them every 10 s, workload or not)."""
    with psycopg.connect(stack.config.pg_dsn("warehouse")) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "AND table_type = 'BASE TABLE' AND table_name NOT LIKE '%%pipeline%%' ORDER BY 1")]
        prints: dict[str, set[str]] = {}
        for table in tables:
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE "
                "table_schema = 'marts' AND table_name = %s AND column_name NOT LIKE '\\_%%' "
                "AND column_name NOT IN ('built_at', 'updated_at_dbt', 'freshness_s', "
                "'age_s', 'measured_at') ORDER BY ordinal_position", (table,)).fetchall()
            # float sums depend on the order rows are added (parallel aggregation): compare
            # numbers to 6 decimals, not to the last bit
            cols = ", ".join(f'round("{c}"::numeric, 6)' if kind in (
                "double precision", "real", "numeric") else f'"{c}"' for c, kind in columns)
            prints[table] = {r[0] for r in conn.execute(
                f'SELECT r::text FROM (SELECT {cols} FROM marts."{table}") r')}
        return prints


def differing_rows(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, Any]:
    """Per table that changed: a few rows only before, a few only after."""
    return {t: (sorted(before.get(t, set()) - after.get(t, set()))[:3],
                sorted(after.get(t, set()) - before.get(t, set()))[:3])
            for t in sorted(set(before) | set(after)) if before.get(t) != after.get(t)}


def next_successful_run(stack: Stack, api: AirflowApi) -> None:
    """Until a realtime run that was not yet successful when called has succeeded."""
    seen = {r["dag_run_id"] for r in succeeded(api)}
    wait_for("the next successful realtime run",
             lambda: bool({r["dag_run_id"] for r in succeeded(api)} - seen), 300,
             explain_runs(stack, api))


def settled_marts(stack: Stack, api: AirflowApi, attempts: int = 6) -> dict[str, set[str]]:
    """The marts' rows once two successive successful realtime runs leave them unchanged."""
    previous: dict[str, set[str]] | None = None
    for _ in range(attempts):
        next_successful_run(stack, api)
        rows = marts_rows(stack)
        if rows == previous:
            return rows
        previous = rows
    raise AssertionError(f"the marts still change after {attempts} realtime runs with no "
                         f"workload: {differing_rows(previous or {}, marts_rows(stack))}")


def test_realtime_dag_keeps_the_marts_current_through_a_scheduler_kill() -> None:
    with private_stack("postgres", "kafka", "clickhouse", "airflow", "cdc", "loader") as stack:
        api = AirflowApi(stack.config)
        for dag_id in (REALTIME, "contour_backfill"):  # test stacks start with DAGs paused
            api.set_paused(dag_id, False)
        stack.contour("dialer", "seed", "--operators", "10", "--leads", "2000",
                      "--campaigns", "2", "--replace")
        workload = [subprocess.Popen([sys.executable, "-m", "contour", *args], env=stack.env,
                                     cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
                    for args in (["dialer", "run", "--speed", "60"],
                                 ["crm", "run", "--speed", "600", "--hours", "1",
                                  "--appeals-per-day", "5000"])]
        try:
            # the scheduler starts run after run; two must succeed with traffic flowing
            wait_for("two successful realtime runs", lambda: len(succeeded(api)) >= 2, 420,
                     explain_runs(stack, api))

            # kill -9 the scheduler while a run is in progress; `contour up` repairs it
            wait_for("a running realtime run",
                     lambda: any(r["state"] == "running" for r in api.runs(REALTIME)), 120)
            before = {r["dag_run_id"] for r in succeeded(api)}
            os.kill(scheduler_pid(stack), signal.SIGKILL)
            time.sleep(3)
            stack.contour("up", "airflow")
            wait_for("a successful run after the scheduler restart",
                     lambda: len({r["dag_run_id"] for r in succeeded(api)} - before) >= 1, 420,
                     explain_runs(stack, api))
        finally:
            for proc in workload:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=60)
        stopped = datetime.now(UTC)

        # runs never overlap
        runs = [r for r in api.runs(REALTIME) if r["start_date"]]
        spans = sorted((parse(r["start_date"]), parse(r["end_date"]) or datetime.now(UTC))
                       for r in runs)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"overlapping realtime runs: {spans}"

        # once the workload stopped, a run that started after everything landed makes the
        # marts equal to the sources
        def marts_match() -> bool:
            return (count(stack, "dialer", "SELECT count(*) FROM call_attempts")
                    == count(stack, "warehouse", "SELECT count(*) FROM marts.fct_call_attempts")
                    and count(stack, "crm", "SELECT count(*) FROM appeals")
                    == count(stack, "warehouse", "SELECT count(*) FROM marts.fct_appeals"))

        wait_for("marts equal to the sources after the workload stopped", marts_match, 300,
                 explain_runs(stack, api))
        assert count(stack, "dialer", "SELECT count(*) FROM call_attempts") > 0
        assert count(stack, "crm", "SELECT count(*) FROM appeals") > 0

        # every successful run recorded freshness per mart
        with psycopg.connect(stack.config.pg_dsn("warehouse")) as conn:
            recorded = {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM ops.freshness")}
        assert {r["dag_run_id"] for r in succeeded(api)} <= recorded

        # a backfill of the last hour while realtime keeps running changes nothing. The
        # "before" is taken once the pipeline has settled (two successive realtime runs leave
        # the marts unchanged): the counts above match before every update has landed — the
        # dialer's shutdown logs its operators out, which moves the data time that open
        # intervals and pending callbacks are measured to.
        before_backfill = settled_marts(stack, api)
        start = (stopped - timedelta(hours=1)).isoformat()
        run = api.trigger("contour_backfill", {"source": "dialer", "tables": [],
                                               "start": start, "end": stopped.isoformat()})
        wait_for("the backfill run", lambda: next(
            r for r in api.runs("contour_backfill") if r["dag_run_id"] == run["dag_run_id"]
        )["state"] in ("success", "failed"), 600)
        assert next(r for r in api.runs("contour_backfill")
                    if r["dag_run_id"] == run["dag_run_id"])["state"] == "success"
        next_successful_run(stack, api)  # realtime runs on top of the backfill, too
        after = marts_rows(stack)
        # tables the backfill created (its build includes the daily models, dim_date, which no
        # daily run has built yet in this stack) are not a change to the marts that existed
        changed = differing_rows(before_backfill, {t: after[t] for t in before_backfill})
        assert not changed, f"the backfill changed the marts: {changed}"

        # parity: every daily KPI recomputed from the source databases in plain SQL (not
        # dbt) equals the marts' numbers, row by row
        parity = stack.contour("parity", "--days", "7", "--json", check=False)
        report = json.loads(parity.stdout)
        assert parity.returncode == 0 and report["matching"], parity.stdout[-4000:]
        compared = {}
        for result in report["results"]:
            compared[result["kpi"]] = compared.get(result["kpi"], 0) + result["rows"]
        assert compared["calls"] > 0 and compared["appeals"] > 0, compared
        # ... and names a number that differs (changed behind dbt's back, no run after it)
        api.set_paused(REALTIME, True)
        wait_for("no realtime run in progress", lambda: not any(
            r["state"] in ("running", "queued") for r in api.runs(REALTIME)), 300)
        with psycopg.connect(stack.config.pg_dsn("warehouse"), autocommit=True) as conn:
            day, direction, campaign, queue, answered = conn.execute(
                "SELECT (bucket_start AT TIME ZONE 'UTC')::date, direction, campaign_id, "
                "queue_id, answered FROM marts.kpi_calls_daily ORDER BY attempts DESC LIMIT 1"
            ).fetchone()
            conn.execute("UPDATE marts.kpi_calls_daily SET answered = answered + 1 WHERE "
                         "(bucket_start AT TIME ZONE 'UTC')::date = %s AND direction = %s AND "
                         "campaign_id IS NOT DISTINCT FROM %s AND queue_id IS NOT DISTINCT "
                         "FROM %s", (day, direction, campaign, queue))
        parity = stack.contour("parity", "--day", day.isoformat(), "--kpi", "calls",
                               check=False)
        assert parity.returncode == 1, parity.stdout
        assert (f"calls {day} [direction={direction}, campaign_id={campaign}, "
                f"queue_id={queue}] answered: {answered} vs {answered + 1}") in parity.stdout
