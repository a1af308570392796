"""The dbt worker's client side: what it serves, where its socket is, no worker → None."""

from __future__ import annotations

from pathlib import Path

from contour import dbt_worker
from contour.config import Config


def test_serves_only_runs_its_cached_manifest_fits() -> None:
    assert dbt_worker.servable(["run", "--select", "tag:realtime", "--exclude", "a", "b"])
    assert dbt_worker.servable(["build", "--select", "tag:realtime"])
    assert not dbt_worker.servable([])
    assert not dbt_worker.servable(["test", "--select", "tag:realtime"])
    assert not dbt_worker.servable(["seed"])
    assert not dbt_worker.servable(["run", "--vars", "{backfill_start: 1}"])
    assert not dbt_worker.servable(["run", "--vars={backfill_start: 1}"])


def test_the_socket_fits_a_unix_address_however_deep_the_state_folder(tmp_path: Path) -> None:
    short = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path / "s")})
    assert dbt_worker.socket_path(short).parent == short.state_dir / "dbt"
    deep = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path / ("x" * 120))})
    path = dbt_worker.socket_path(deep)
    assert len(str(path)) <= 100 and path != dbt_worker.socket_path(short)
    assert dbt_worker.socket_path(deep) == path   # the same for every process


def test_no_worker_listening_means_run_a_process(tmp_path: Path) -> None:
    config = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)})
    assert dbt_worker.run_on_worker(config, ["run", "--select", "tag:realtime"]) is None


def test_the_worker_logs_to_its_file_at_info_unless_told_otherwise(tmp_path: Path) -> None:
    env = {"CONTOUR_STATE_DIR": str(tmp_path), "PATH": "/usr/bin", "UNRELATED": "x"}
    default = dbt_worker.worker_environment(Config.from_env(env))
    assert default["DBT_LOG_LEVEL_FILE"] == "info"
    assert "UNRELATED" not in default and default["PATH"] == "/usr/bin"
    told = dbt_worker.worker_environment(Config.from_env({**env, "DBT_LOG_LEVEL_FILE": "debug"}))
    assert told["DBT_LOG_LEVEL_FILE"] == "debug"
