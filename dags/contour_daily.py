"""contour_daily: full rebuild of the daily models, storage maintenance, dbt docs.

The daily models are rebuilt from staging (``--full-refresh``); ClickHouse merges the raw
tables and drops history past the retention; PostgreSQL staging, marts and ops tables are
vacuumed and analysed; Airflow's metadata older than ``CONTOUR_AIRFLOW_RETENTION_DAYS`` is
deleted (``airflow db clean``: the every-minute DAG adds ~1,400 runs a day); the dbt
documentation site is regenerated.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from contour_tasks import START_DATE, contour, default_args

with DAG(
    dag_id="contour_daily",
    description="dbt build tag:daily --full-refresh, maintenance, dbt docs generate",
    schedule="30 2 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=default_args(retries=1, execution_timeout=timedelta(hours=3)),
    tags=["contour", "daily"],
    doc_md=__doc__,
) as dag:
    rebuild = contour("dbt_build_daily", "dbt", "++lane", "daily", "build", "--select",
                      "tag:daily",
                      "--full-refresh")
    maintain = contour("maintain_storage", "warehouse", "maintain")
    docs = contour("dbt_docs_generate", "dbt", "++lane", "daily", "docs", "generate")
    rebuild >> [maintain, docs]
