"""`contour dbt`: passthrough, generated profile, clear error without the dbt environment.
No service needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from contour import dbt
from contour.config import Config

ROOT = Path(__file__).resolve().parents[2]
DSN = "postgresql://reporter:s3cret%21@db.example:6543/wh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTOUR_")}
    env.update(CONTOUR_STATE_DIR=str(tmp_path / "state"), CONTOUR_PG_WAREHOUSE_DSN=DSN, **extra)
    return env


def _contour(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "contour", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_profile_from_config_keeps_the_password_out_of_the_file(tmp_path: Path) -> None:
    config = Config.from_env(_env(tmp_path))
    env = dbt.dbt_env(config)
    text = (tmp_path / "state" / "dbt" / "profiles.yml").read_text()
    assert "s3cret" not in text
    output = yaml.safe_load(text)["contour"]["outputs"]["warehouse"]
    assert (output["host"], output["port"], output["user"], output["dbname"]) == \
        ("db.example", 6543, "reporter", "wh")
    assert env[dbt.PASSWORD_VAR] == "s3cret!"
    assert env["DBT_TARGET_PATH"] == str(tmp_path / "state" / "dbt" / "target")
    assert env["DBT_LOG_PATH"] == str(tmp_path / "state" / "dbt" / "logs")


def test_help(tmp_path: Path) -> None:
    result = _contour(_env(tmp_path), "dbt", "--help")
    assert result.returncode == 0
    assert "contour dbt build --select tag:realtime" in " ".join(result.stdout.split())


def test_missing_dbt_environment_says_how_to_install_it(tmp_path: Path) -> None:
    result = _contour(_env(tmp_path, CONTOUR_VENVS_DIR=str(tmp_path / "none")), "dbt", "debug")
    assert result.returncode == 1
    assert "run python3 bootstrap.py" in result.stderr
    assert result.stderr.startswith("contour: error: dbt is not installed")


def test_arguments_reach_dbt_with_the_generated_profile(tmp_path: Path) -> None:
    result = _contour(_env(tmp_path), "dbt", "debug", "--config-dir")
    assert result.returncode == 0, result.stderr
    assert "Running with dbt=1.11." in result.stdout
    assert str(tmp_path / "state" / "dbt") in result.stdout   # DBT_PROFILES_DIR
