"""Running the project: idempotence, interruption, reconciliation, freshness, docs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from contour import dbt, dbt_worker
from contour.refresh import RefreshError, refresh
from contour.services.pipeline import DbtWorker
from ingestion.export import heartbeat_path
from ingestion.status import read_status, write_status
from tests.dbt_project.conftest import Built, Warehouse
from tests.dbt_project.tables import contents

pytestmark = pytest.mark.integration


def test_realtime_build_twice_changes_nothing(built: Built) -> None:
    wh = built.warehouse
    before = contents(wh)
    wh.dbt("build", "--select", "tag:realtime")
    once = contents(wh)
    wh.dbt("build", "--select", "tag:realtime")
    assert contents(wh) == once == before


def test_views_are_replaced_only_when_they_change(built: Built) -> None:
    """The realtime cycle keeps an unchanged view (same relation, not dropped and created
    again); a changed definition, a view dropped behind dbt's back (and its dependents) and
    --full-refresh replace it."""
    wh = built.warehouse
    view = "stg.stg_dialer__call_attempts"
    dependent = "intermediate.int_call_attempts__lifecycle"

    def oids() -> list[tuple[int | None, ...]]:
        return wh.rows(f"SELECT to_regclass('{view}')::oid, to_regclass('{dependent}')::oid")

    wh.dbt("run", "--select", "tag:realtime")
    first = oids()
    assert None not in first[0]
    wh.dbt("run", "--select", "tag:realtime")
    assert oids() == first

    wh.rows(f"UPDATE dbt_state.view_fingerprints SET sql_md5 = 'an older definition' "
            f"WHERE relation = '{view}' RETURNING 1")
    wh.dbt("run", "--select", "tag:realtime")
    replaced = oids()
    assert replaced[0][0] != first[0][0]
    assert None not in replaced[0]

    with wh.connect() as conn:
        conn.execute(f"DROP VIEW {view} CASCADE")  # type: ignore[arg-type]
    assert oids()[0] == (None, None)
    wh.dbt("run", "--select", "tag:realtime")
    recreated = oids()
    assert None not in recreated[0]

    wh.dbt("run", "--select", view.split(".")[1], "--full-refresh")
    assert oids()[0][0] != recreated[0][0]


def test_the_refresh_cycle_skips_views_until_the_project_changes(built: Built) -> None:
    """`contour warehouse refresh` (what contour_realtime runs; no export here: staging is
    loaded directly): the first cycle on a warehouse builds the views; later cycles skip all
    but the view over table models, which the tables' rebuild drops; a changed project
    builds them all again. Every cycle records freshness and changes no mart."""
    wh = built.warehouse
    before = contents(wh)
    said: list[str] = []
    first = refresh(wh.config, "cycle-1", export="never", progress=said.append)
    assert first.with_views

    def views_run() -> set[str]:
        target = dbt.target_path(wh.config)
        nodes = json.loads((target / "manifest.json").read_text())["nodes"]
        results = json.loads((target / "run_results.json").read_text())["results"]
        return {nodes[r["unique_id"]]["name"] for r in results
                if r["unique_id"].startswith("model.")
                and nodes[r["unique_id"]]["config"]["materialized"] == "view"}

    # the exporter service is alive (its heartbeat is fresh): the cycle leaves export to it
    write_status(heartbeat_path(wh.config), {"updated_at": time.time()})
    second = refresh(wh.config, "cycle-2", progress=said.append)
    assert any(line.startswith("export: skipped") for line in said), said
    assert not second.with_views and views_run() == {"pipeline_freshness"}
    assert wh.rows("SELECT to_regclass('marts.pipeline_freshness') IS NOT NULL") == [(True,)]
    assert contents(wh) == before
    assert {r[0] for r in wh.rows("SELECT DISTINCT run_id FROM ops.freshness")} >= {
        "cycle-1", "cycle-2"}
    assert any("refreshed in" in line for line in said)

    wh.rows("UPDATE ops.dbt_deploys SET fingerprint = 'an older project' RETURNING 1")
    assert refresh(wh.config, "cycle-3", export="never", progress=said.append).with_views
    assert views_run() >= {"pipeline_freshness", "stg_dialer__call_attempts"}


def test_killed_run_then_rerun_gives_the_same_marts(built: Built) -> None:
    """kill -9 dbt in the middle of a full rebuild; the next realtime run repairs it."""
    wh = built.warehouse
    expected = contents(wh)
    argv, env = dbt.command(wh.config, ["build", "--select", "tag:realtime", "--full-refresh"])
    proc = subprocess.Popen(argv, cwd=dbt.PROJECT_DIR, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:   # wait until it is rebuilding marts, then kill it
        if "START sql" in line and "model marts." in line:
            time.sleep(1.0)
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    wh.dbt("build", "--select", "tag:realtime")
    assert contents(wh) == expected


def test_reconciliation_fails_with_the_differing_rows(built: Built) -> None:
    wh = built.warehouse
    wh.dbt("build", "--select", "tag:hourly")      # what the hourly job runs
    assert wh.rows("SELECT count(*) FROM audit.reconcile_daily_counts") == [(8,)]
    # lose one call attempt from the mart: the day of call_attempts -> fct_call_attempts differs
    wh.rows("DELETE FROM marts.fct_call_attempts WHERE attempt_id = 4 RETURNING 1")
    result = wh.dbt("build", "--select", "tag:hourly", check=False)
    assert result.returncode == 1
    assert "Got 1 result, configured to fail if != 0" in result.stdout
    failures = wh.rows("SELECT table_name FROM information_schema.tables"
                       " WHERE table_schema = 'audit_failures'")
    assert len(failures) == 1
    assert wh.rows(f"SELECT entity, day::text, staging_rows, marts_rows, rows_difference"
                   f" FROM audit_failures.{failures[0][0]}") == [
        ("call_attempts -> fct_call_attempts", "2026-11-20", 10, 9, -1)]
    # a full refresh of the mart (and what is built on it) repairs it
    wh.dbt("build", "--select", "fct_call_attempts+", "--full-refresh")
    assert wh.rows("SELECT count(*) FROM audit.reconcile_daily_counts WHERE is_matching") \
        == [(8,)]


def test_source_freshness_reports_stale_sources(built: Built) -> None:
    """The fixture day's newest commit (11:58 on 2026-11-20) is far older than the 60-minute
    error threshold of the high-volume tables."""
    result = built.warehouse.dbt("source", "freshness", check=False)
    assert result.returncode == 1
    assert "ERROR STALE freshness of dialer.call_attempts" in result.stdout
    assert "crm.appeals" in result.stdout


def test_docs_generate_documents_every_model_and_column(built: Built) -> None:
    wh = built.warehouse
    wh.dbt("docs", "generate")
    target = dbt.state_dir(wh.config) / "target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    undocumented = []
    models = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    # every model exists in the database (catalog) ...
    assert models <= set(catalog["nodes"]), models - set(catalog["nodes"])
    # ... and every model, source and column is described
    for kind in ("nodes", "sources"):
        for uid, entry in catalog[kind].items():
            if kind == "nodes" and uid not in models:   # stored test failures
                continue
            node = manifest[kind][uid]
            if not node.get("description"):
                undocumented.append(uid)
            documented = {name for name, col in node["columns"].items() if col["description"]}
            undocumented += [f"{uid}.{c}" for c in entry["columns"] if c not in documented]
    assert undocumented == []
    assert len(manifest["exposures"]) == 5


def test_a_test_window_checks_only_the_rows_exported_within_it(built: Built) -> None:
    """`refresh --test-window`: `dbt build` on the worker (the var is served with the cached
    manifest), the data tests reading only rows exported within the window: a bad mart row
    exported long ago passes them, the same row exported now fails the cycle, naming the
    test; the full test run (no window) fails on it either way."""
    wh = built.warehouse
    old = "'2026-11-20 09:00+00'"  # before every incremental watermark: never re-merged
    mart = "UPDATE marts.fct_call_attempts SET outcome = 'bogus', _exported_at = {} " \
        "WHERE attempt_id = 1"
    with wh.connect() as conn:
        conn.execute(f"UPDATE staging.dialer__call_attempts SET _exported_at = {old} "  # type: ignore[arg-type]
                     "WHERE attempt_id = 1")
        conn.execute(mart.format(old))  # type: ignore[arg-type]
    service = DbtWorker(wh.config)
    assert service.start(progress=lambda _: None)
    said: list[str] = []
    try:
        refresh(wh.config, "window-old", export="never", test_window="15 minutes",
                progress=said.append)
        assert any(line.startswith("dbt worker: dbt build --select tag:realtime")
                   for line in said), said[:3]
        assert not any("running dbt as a process" in line for line in said)
        assert wh.rows("SELECT outcome FROM marts.fct_call_attempts WHERE attempt_id = 1") == \
            [("bogus",)]  # (still there: the windowed tests passed over it)
        assert wh.dbt("test", "--select", "fct_call_attempts", check=False).returncode == 1
        with wh.connect() as conn:
            conn.execute(mart.format("now()"))  # type: ignore[arg-type]
        said.clear()
        with pytest.raises(RefreshError, match="dbt build"):
            refresh(wh.config, "window-new", export="never", test_window="15 minutes",
                    progress=said.append)
        assert any("Failure in test accepted_values_fct_call_attempts_outcome" in line
                   for line in said), said[-20:]
    finally:
        service.stop(progress=lambda _: None)
        with wh.connect() as conn:   # exported again: the next run merges the staged row back
            conn.execute("UPDATE staging.dialer__call_attempts SET _exported_at = now() "
                         "WHERE attempt_id = 1")
        wh.dbt("run", "--select", "tag:realtime")
    assert wh.rows("SELECT outcome FROM marts.fct_call_attempts WHERE attempt_id = 1") != \
        [("bogus",)]


def test_incremental_runs_equal_a_full_rebuild_after_changes(built: Built) -> None:
    """Changed and re-exported facts go through the incremental paths (facts merged on key,
    KPI buckets recomputed by time range, operator state buckets from the earliest changed or
    open interval); the marts equal a full rebuild of the same
    staging. Runs last: it changes the fixture day."""
    wh = built.warehouse
    with wh.connect() as conn:
        conn.execute("UPDATE staging.crm__appeals SET first_response_at = opened_at "
                     "+ interval '3 minutes', _exported_at = now() "
                     "WHERE appeal_id = (SELECT min(appeal_id) FROM staging.crm__appeals "
                     "WHERE first_response_at IS NULL)")
        conn.execute("UPDATE staging.crm__appeals SET _exported_at = now() "
                     "WHERE appeal_id % 2 = 0")
        conn.execute("UPDATE staging.dialer__call_attempts SET _exported_at = now() "
                     "WHERE attempt_id % 3 = 0")
        # an operator's last interval is open again (it grows to data time), another one
        # ends later; others are re-exported
        changed = conn.execute(
            "UPDATE staging.dialer__operator_status_log SET ended_at = CASE WHEN log_id = "
            "(SELECT max(log_id) FROM staging.dialer__operator_status_log "
            " WHERE status <> 'offline') THEN NULL ELSE ended_at + interval '7 minutes' END, "
            "_exported_at = now() WHERE log_id IN (SELECT log_id FROM "
            "staging.dialer__operator_status_log WHERE status <> 'offline' "
            "ORDER BY log_id DESC LIMIT 2) RETURNING log_id").fetchall()
        assert len(changed) == 2
        conn.execute("UPDATE staging.dialer__operator_status_log SET _exported_at = now() "
                     "WHERE log_id % 4 = 0")
    wh.dbt("run", "--select", "tag:realtime")
    incremental = contents(wh)
    wh.dbt("run", "--select", "tag:realtime", "--full-refresh")
    assert contents(wh) == incremental


def _sessions(wh: Warehouse) -> int:
    """Sessions opened on the warehouse database so far (its statistics, once flushed)."""
    time.sleep(2)  # backends flush their counts when they end
    return int(wh.rows("SELECT sessions FROM pg_stat_database "
                       "WHERE datname = current_database()")[0][0])


def test_the_dbt_worker_runs_cycles_with_the_project_parsed_once(built: Built) -> None:
    """`contour up dbt`: the realtime cycle's dbt runs go to the worker (dbt loaded once) and
    build the same marts; it parses the project once for many runs; what it cannot serve
    (--vars) goes to a dbt process; a worker killed mid-run fails that run with a clear
    message, and the next cycle (a dbt process) repairs the marts."""
    wh = built.warehouse
    before = contents(wh)
    service = DbtWorker(wh.config)
    assert service.start(progress=lambda _: None)
    try:
        said: list[str] = []
        refresh(wh.config, "worker-1", export="never", progress=said.append)
        target = dbt.target_path(wh.config)
        manifest_written = (target / "manifest.json").stat().st_mtime_ns
        sessions = _sessions(wh)
        refresh(wh.config, "worker-2", export="never", progress=said.append)
        # its runs write no manifest (the parse's holds) but do write run results
        assert (target / "manifest.json").stat().st_mtime_ns == manifest_written
        assert not (target / "graph.gpickle").exists() or \
            (target / "graph.gpickle").stat().st_mtime_ns <= manifest_written
        # dbt reuses its threads' connections from node to node (it would open one per node,
        # ~45 here): a few for the run's threads, the rest the refresh's own
        assert _sessions(wh) - sessions < 15
        assert sum(line.startswith("dbt worker: dbt run --select tag:realtime")
                   for line in said) == 2, said
        assert sum("Completed successfully" in line for line in said) == 2, said
        assert not any("running dbt as a process" in line for line in said)
        status = read_status(dbt_worker.status_path(wh.config))
        assert status is not None and (status["parses"], status["invocations"]) == (1, 2)
        assert contents(wh) == before
        assert {r[0] for r in wh.rows("SELECT DISTINCT run_id FROM ops.freshness")} >= {
            "worker-1", "worker-2"}
        assert dbt_worker.run_on_worker(wh.config, ["run", "--vars", "{day: 1}"]) is None

        # clients that send nothing, or no request, are dropped; the next one is served
        address = str(dbt_worker.socket_path(wh.config))
        with socket.socket(socket.AF_UNIX) as idle, socket.socket(socket.AF_UNIX) as garbage:
            idle.connect(address)
            garbage.connect(address)
            garbage.sendall(b"not a request\n")
            assert dbt_worker.run_on_worker(
                wh.config, ["run", "--select", "pipeline_heartbeats"], progress=said.append) == 0
        results = json.loads((target / "run_results.json").read_text())["results"]
        assert [r["unique_id"] for r in results if not r["unique_id"].startswith(
            "operation.")] == ["model.contour.pipeline_heartbeats"]

        pid = status["pid"]

        def kill_when_building(line: str) -> None:
            said.append(line)
            if "START sql" in line and "model marts." in line:
                os.kill(pid, signal.SIGKILL)

        said.clear()
        code = dbt.run_cycle(wh.config, ["run", "--select", "tag:realtime", "--full-refresh"],
                             progress=kill_when_building)
        assert code != 0
        assert any("without an exit status" in line for line in said), said[-3:]
    finally:
        service.stop(progress=lambda _: None)
    assert dbt_worker.socket_path(wh.config).exists()   # left by the killed worker
    said.clear()
    refresh(wh.config, "after-the-kill", export="never", progress=said.append)
    assert any("running dbt as a process" in line for line in said)
    assert contents(wh) == before
