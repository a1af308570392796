# syntax=docker/dockerfile:1
# Apache Airflow 3.3.2 for Contour: airflow-init, airflow-api-server, airflow-scheduler,
# airflow-dag-processor (LocalExecutor; configuration comes from docker-compose.yml).
#
# Build context: the repository root; deploy/airflow.Dockerfile.dockerignore limits it.
#   * Airflow's own environment gets the extras of requirements/airflow.in, at the versions
#     of requirements/airflow.lock, with apache-airflow held at the image's version.
#   * dbt gets a separate virtual environment from requirements/dbt.lock at /opt/dbt-venv
#     (its pins clash with Airflow's; DAG tasks call it as a subprocess). It is also reachable
#     as CONTOUR_VENVS_DIR/dbt (= /opt/contour-venvs/dbt), where contour.config looks for it.
#   * Contour's own environment (requirements/core.lock + the contour package, editable at
#     /opt/contour) is CONTOUR_VENVS_DIR/core: the DAG tasks run `python -m contour …` there,
#     exactly as on the embedded stack. The DAG files import only Airflow and
#     dags/contour_tasks.py; the DAG folder /opt/contour/dags is replaced by the ./dags bind
#     mount at run time.
FROM apache/airflow:3.3.2-python3.11

USER root
COPY requirements/dbt.lock requirements/core.lock /tmp/requirements/
# PIP_USER=false: the image sets PIP_USER=true, which a virtual environment refuses.
RUN python -m venv /opt/dbt-venv \
 && PIP_USER=false /opt/dbt-venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        -r /tmp/requirements/dbt.lock \
 && /opt/dbt-venv/bin/python -c "import dbt.adapters.postgres, dbt.version" \
 && mkdir -p /opt/contour-venvs \
 && ln -s /opt/dbt-venv /opt/contour-venvs/dbt \
 && python -m venv /opt/contour-venvs/core \
 && PIP_USER=false /opt/contour-venvs/core/bin/pip install --no-cache-dir \
        --disable-pip-version-check -r /tmp/requirements/core.lock \
 && mkdir -p /opt/contour /opt/airflow/contour-state \
 && chown airflow:root /opt/contour /opt/airflow/contour-state \
 && chown -R airflow:root /opt/contour-venvs/core \
 && rm -rf /tmp/requirements

USER airflow
COPY requirements/airflow.lock /tmp/requirements/airflow.lock
RUN grep -E '^(apache-airflow-providers-postgres|apache-airflow-providers-common-sql|psycopg|psycopg-binary|psycopg2-binary|kafka-python|clickhouse-connect|pyyaml)==' \
        /tmp/requirements/airflow.lock > /tmp/airflow-extras.txt \
 && test "$(wc -l < /tmp/airflow-extras.txt)" -eq 8 \
 && pip install --no-cache-dir "apache-airflow==3.3.2" -r /tmp/airflow-extras.txt \
 && rm -f /tmp/airflow-extras.txt

# the project: what airflow.Dockerfile.dockerignore lets through (pyproject.toml, the
# packages, dags, dbt_project); owned by airflow so that dbt can write target/ and logs/
COPY --chown=airflow:root . /opt/contour
RUN PIP_USER=false /opt/contour-venvs/core/bin/pip install --no-cache-dir --no-deps \
        -e /opt/contour \
 && /opt/contour-venvs/core/bin/python -m contour --help > /dev/null

ENV CONTOUR_VENVS_DIR=/opt/contour-venvs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    DBT_VERSION_CHECK=False \
    DO_NOT_TRACK=1 \
    SCARF_ANALYTICS=false
