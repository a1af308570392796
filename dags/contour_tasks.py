"""What the Contour DAGs share: tasks that run ``contour …`` commands, and the failure alert.

The DAG files import only Airflow and this module, so they parse in well under a second; the
work runs in Contour's own environment (``$CONTOUR_VENVS_DIR/core``) as a subprocess, with the
same ``CONTOUR_*`` configuration as every other process (no connection or secret in a DAG file).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = "contour-data"


def contour_python() -> str:
    venvs = Path(os.environ.get("CONTOUR_VENVS_DIR") or PROJECT_ROOT / ".venvs")
    return os.environ.get("CONTOUR_PYTHON") or str(venvs / "core" / "bin" / "python")


def contour(task_id: str, *args: str, **kwargs: Any) -> BashOperator:
    """A task running ``contour ARGS`` (Jinja in ARGS is rendered, e.g. ``{{ run_id }}``)."""
    argv = [contour_python(), "-m", "contour", *args]
    return BashOperator(task_id=task_id, bash_command=" ".join(shlex.quote(a) for a in argv),
                        cwd=str(PROJECT_ROOT), append_env=True, **kwargs)


def run_contour(*args: str, timeout: float | None = None) -> None:
    """Run ``contour ARGS`` from Python (tasks whose arguments come from DAG params), with its
    output in the task log; a non-zero exit fails the task."""
    argv = [contour_python(), "-m", "contour", *args]
    print("+ " + " ".join(shlex.quote(a) for a in argv), flush=True)
    result = subprocess.run(argv, cwd=PROJECT_ROOT, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`contour {' '.join(args)}` exited {result.returncode}")


def alert_on_failure(context: dict[str, Any]) -> None:
    """Failure callback: ``contour warehouse alert`` records the failure in ops.alerts, logs
    it and runs CONTOUR_ALERT_COMMAND when one is configured."""
    ti = context["ti"]
    error = str(context.get("exception") or "task failed")
    try:
        run_contour("warehouse", "alert", error, "--dag", ti.dag_id, "--task", ti.task_id,
                    "--run", str(context["run_id"]), "--try-number", str(ti.try_number),
                    timeout=60)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"the alert could not be recorded: {exc}", flush=True)


def default_args(retries: int = 2, **extra: Any) -> dict[str, Any]:
    """Owner, retries with exponential backoff, and the alert on the final failure."""
    return {"owner": OWNER, "retries": retries, "retry_delay": timedelta(seconds=5),
            "retry_exponential_backoff": 2.0, "max_retry_delay": timedelta(minutes=5),
            "on_failure_callback": alert_on_failure, **extra}
