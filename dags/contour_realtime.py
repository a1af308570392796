"""contour_realtime: the warehouse catches up with the sources, one run right after another.

Two tasks in parallel: ``check_pipeline`` (CDC and landing health; alerts, never blocks) and
``refresh_marts`` — ``contour warehouse refresh``: export ClickHouse increments to staging →
mark the newest source commit exported → one ``dbt run`` of the realtime models → record
freshness per mart. One task for the four steps because each Airflow task costs a task process
and a ``contour`` interpreter (5–6 s each under load): as four tasks they were a fifth of a cycle.

Scheduled ``@continuous`` with one active run: a run starts as soon as the previous one ends, so
the marts are at most one cycle behind (the DESIGN's "at most a minute old"). With a one-minute
cron a change waited up to a minute for the next run to start before the run even began, which
alone put the 95th percentile of freshness near 60 s. Runs never overlap and nothing is caught
up (catchup off).

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
    description="continuously: export increments, dbt run tag:realtime, freshness",
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    default_args=default_args(retries=2, execution_timeout=timedelta(minutes=5)),
    tags=["contour", "realtime"],
    doc_md=__doc__,
) as dag:
    check = contour("check_pipeline", "warehouse", "check", retries=0)
    refresh = contour("refresh_marts", "warehouse", "refresh", "--run-id", "{{ run_id }}")
