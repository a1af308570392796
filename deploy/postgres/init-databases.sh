#!/usr/bin/env bash
# Contour: first-start initialisation of the PostgreSQL service (docker-compose.yml).
#
# The postgres image runs this once, on an empty data volume, as the superuser
# POSTGRES_USER (contour), against a temporary server that listens on the Unix socket only.
# It creates every database of contour.config.DATABASES:
#   dialer, crm       operational sources (logical replication via pgoutput, one slot each)
#   warehouse         staging + marts built by the exporter and dbt
#   airflow, superset metadata of Airflow and Superset, each owned by its own login role
# and lets the CDC relay (contour-cdc, another container) open replication connections.
#
# Changing a password in .env later does NOT change it here: the volume is initialised
# already. Use ALTER ROLE ... PASSWORD, or remove the postgres-data volume (loses all data).
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?set it in .env}"
: "${SUPERSET_DB_PASSWORD:?set it in .env}"

# psql substitutes :'var' as a quoted literal in statements read from stdin.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_password="$AIRFLOW_DB_PASSWORD" \
     -v superset_password="$SUPERSET_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE ROLE superset LOGIN PASSWORD :'superset_password';

CREATE DATABASE dialer;
CREATE DATABASE crm;
CREATE DATABASE warehouse;
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE superset OWNER superset;
SQL

# Replication connections match only "replication" lines of pg_hba.conf; the image's
# catch-all "host all all all scram-sha-256" does not cover them.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
