"""contour_hourly: reconciliation and the hourly models.

Row counts per table in the source databases, ClickHouse and staging must agree (a difference
that persists across retries fails the task, with the tables listed); ``dbt source freshness``
checks the staging sources; the hourly models are built and tested, and the data tests of
the realtime models run (the realtime DAG only runs those models, so that one failing test
does not hold back every mart).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from contour_tasks import START_DATE, contour, default_args

with DAG(
    dag_id="contour_hourly",
    description="reconciliation, dbt source freshness, dbt build tag:hourly, realtime tests",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=50),
    default_args=default_args(retries=1, execution_timeout=timedelta(minutes=30)),
    tags=["contour", "hourly"],
    doc_md=__doc__,
) as dag:
    reconcile = contour("reconcile_layers", "warehouse", "reconcile")
    freshness = contour("dbt_source_freshness", "dbt", "++lane", "hourly", "source", "freshness")
    build = contour("dbt_build_hourly", "dbt", "++lane", "hourly", "build", "--select",
                    "tag:hourly")
    test_realtime = contour("dbt_test_realtime", "dbt", "++lane", "hourly", "test",
                            "--select", "tag:realtime", "--store-failures")
    [reconcile, freshness] >> build >> test_realtime
