"""contour_realtime: every minute, the warehouse catches up with the sources.

check CDC and landing health → export ClickHouse increments to staging → mark the newest
source commit exported → one ``dbt build`` of the realtime models → record freshness per mart.
A failed health check alerts but does not stop the refresh (the data already landed is still
worth publishing); runs never overlap and missed minutes are not caught up.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from contour_tasks import START_DATE, contour, default_args

with DAG(
    dag_id="contour_realtime",
    description="every minute: export increments, dbt build tag:realtime, freshness",
    schedule="* * * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    default_args=default_args(retries=2, execution_timeout=timedelta(minutes=5)),
    tags=["contour", "realtime"],
    doc_md=__doc__,
) as dag:
    check = contour("check_pipeline", "warehouse", "check", retries=0)
    export = contour("export_increments", "export", "once", trigger_rule="all_done")
    mark = contour("mark_freshness", "warehouse", "freshness", "mark", "--run-id",
                   "{{ run_id }}")
    build = contour("dbt_build_realtime", "dbt", "build", "--select", "tag:realtime")
    record = contour("record_freshness", "warehouse", "freshness", "record", "--run-id",
                     "{{ run_id }}")
    check >> export >> mark >> build >> record
