# syntax=docker/dockerfile:1
# Apache Superset 6.1.0 for Contour: superset-init and superset (gunicorn).
#
# Build context: the repository root; deploy/superset.Dockerfile.dockerignore limits it.
# Adds to the image's /app/.venv the packages of requirements/superset.in that the image does
# not bring, at the versions of requirements/superset.lock (the embedded stack's tested set):
#   clickhouse-connect 1.12.0   the clickhousedb:// SQLAlchemy dialect (wallboard data source)
#   psycopg2-binary             PostgreSQL metadata DB and KPI marts
#   flask-caching 2.3.1         2.5.x breaks SupersetMetastoreCache (ignore_delete_many_errors)
#   rich, cachetools            imported by Superset 6.1.0 but not declared
#   gunicorn 27                 --no-control-socket, as contour/services/superset.py passes
# superset_config.py is not baked in: docker-compose.yml mounts ./superset and points
# SUPERSET_CONFIG_PATH at it.
FROM apache/superset:6.1.0

USER root
COPY requirements/superset.lock /tmp/superset.lock
RUN grep -E '^(clickhouse-connect|psycopg2-binary|flask-caching|rich|cachetools|gunicorn)==' \
        /tmp/superset.lock > /tmp/superset-extras.txt \
 && test "$(wc -l < /tmp/superset-extras.txt)" -eq 6 \
 && grep -qx 'clickhouse-connect==1.12.0' /tmp/superset-extras.txt \
 && grep -qx 'flask-caching==2.3.1' /tmp/superset-extras.txt \
 && (command -v uv > /dev/null || pip install --no-cache-dir uv==0.13.8) \
 && uv pip install --no-cache --python /app/.venv/bin/python -r /tmp/superset-extras.txt \
 && /app/.venv/bin/python -c "import clickhouse_connect, psycopg2, flask_caching, rich, cachetools" \
 && rm -f /tmp/superset.lock /tmp/superset-extras.txt
USER superset

ENV SCARF_ANALYTICS=false \
    DO_NOT_TRACK=1
