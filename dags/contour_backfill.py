"""contour_backfill (manual): re-export and rebuild one period, while realtime keeps running.

Trigger with params ``source`` (dialer or crm), ``tables`` (list, empty = all of the source),
``start`` and ``end`` (ISO timestamps; source commit time). The re-export upserts by key and
only where the version is newer, so it never doubles a row and never undoes a newer change that
realtime exported meanwhile; then the realtime, hourly and daily models rebuild the buckets of
the period (dbt vars ``backfill_start`` / ``backfill_end`` widen the incremental window).
"""

from __future__ import annotations

import json
from datetime import timedelta

from airflow.sdk import DAG, Param, task
from contour_tasks import START_DATE, default_args, run_contour

with DAG(
    dag_id="contour_backfill",
    description="manual: re-export a period of one source and rebuild its marts",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, execution_timeout=timedelta(hours=6)),
    tags=["contour", "backfill"],
    params={
        "source": Param("dialer", type="string", enum=["dialer", "crm"]),
        "tables": Param([], type="array", description="<table> names; empty = all"),
        "start": Param(type="string", format="date-time",
                       description="first source commit time to re-export"),
        "end": Param(type="string", format="date-time",
                     description="end of the period (exclusive)"),
    },
    doc_md=__doc__,
) as dag:

    @task
    def reexport(params: dict | None = None) -> None:
        assert params is not None
        tables = [a for t in params["tables"] for a in ("--table", t)]
        run_contour("export", "once", "--source", params["source"], *tables,
                    "--since", params["start"], "--until", params["end"])

    @task
    def rebuild(params: dict | None = None) -> None:
        assert params is not None
        window = json.dumps({"backfill_start": params["start"], "backfill_end": params["end"]})
        run_contour("dbt", "++lane", "backfill", "build", "--select", "tag:realtime",
                    "tag:hourly", "tag:daily",
                    "--vars", window)

    reexport() >> rebuild()
