"""contour_realtime: every minute, the warehouse catches up with the sources.

check CDC and landing health → export ClickHouse increments to staging → mark the newest
source commit exported → one ``dbt run`` of the realtime models → record freshness per mart.
A failed health check alerts but does not stop the refresh (the data already landed is still
worth publishing); runs never overlap and missed minutes are not caught up.

The realtime models' data tests run hourly (``contour_hourly``), not here: under ``dbt build``
one failing test (a single bad source row) skipped every downstream KPI table each minute,
so the dashboards stopped updating until the row was fixed, and the ~320 tests took more
than half of each cycle. A failing test now alerts from the hourly run while the marts stay
current.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from contour_tasks import START_DATE, contour, default_args

with DAG(
    dag_id="contour_realtime",
    description="every minute: export increments, dbt run tag:realtime, freshness",
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
    build = contour("dbt_run_realtime", "dbt", "run", "--select", "tag:realtime")
    record = contour("record_freshness", "warehouse", "freshness", "record", "--run-id",
                     "{{ run_id }}")
    check >> export >> mark >> build >> record
