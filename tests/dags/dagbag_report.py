"""Run in Airflow's environment: load the DAG folder (argv[1], also AIRFLOW__CORE__DAGS_FOLDER)
and write what a test needs to argv[2] as JSON (Airflow logs to stdout)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import airflow.sdk  # noqa: F401 - warm the imports every DAG file shares, so that
from airflow.dag_processing.dagbag import BundleDagBag  # the timings below are the files' own
from airflow.providers.standard.operators.bash import BashOperator  # noqa: F401

# as the dag-processor parses the default bundle (its folder on sys.path); a cycle or a bad
# schedule shows up as an import error
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "fileloc": dag.fileloc,
        "schedule": str(dag.schedule),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "params": sorted(dag.params.keys()),
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries,
                              "has_failure_callback": bool(t.on_failure_callback),
                              "upstream": sorted(t.upstream_task_ids),
                              "command": getattr(t, "bash_command", None)}
                  for t in dag.tasks},
    }
Path(sys.argv[2]).write_text(json.dumps({
    "import_errors": bag.import_errors,
    "file_seconds": {s.file: s.duration.total_seconds() if hasattr(s.duration, "total_seconds")
                     else float(s.duration) for s in bag.dagbag_stats},
    "dags": dags,
}), encoding="utf-8")
