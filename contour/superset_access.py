"""The read-only PostgreSQL role Superset's marts connection logs in as.

``superset_marts`` may connect to the warehouse database and read the ``marts`` schema (and
``ops``, for the freshness log) — nothing else: no write privilege anywhere, every transaction
read-only by default, a statement timeout. On the embedded server the source databases
(``dialer``, ``crm``) are closed to every role but their owner (CONNECT revoked from PUBLIC;
Contour's own processes use the superuser), so the role cannot even connect to them; on an
external server it holds no privilege on their tables either way.

Idempotent: run on every Superset start and before every ``contour superset sync``. The
password is generated once and kept in the state folder's secrets file.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from contour.config import Config
from contour.errors import ContourError
from contour.warehouse import ensure_ops

#: the read-only PostgreSQL role the marts connection uses
MARTS_ROLE = "superset_marts"
READABLE_SCHEMAS = ("marts", "ops")
SOURCE_DATABASES = ("dialer", "crm")


class AccessError(ContourError):
    """The role could not be created or granted (the message says what to do)."""


def ensure_marts_role(config: Config) -> None:
    password = config.secrets.get("superset_marts_password")
    role = sql.Identifier(MARTS_ROLE)
    try:
        with psycopg.connect(config.pg_dsn("warehouse"), autocommit=True,
                             connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (MARTS_ROLE,)).fetchone()
            verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
            conn.execute(sql.SQL("{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                 "PASSWORD {}").format(verb, role, sql.Literal(password)))
            for setting, value in (("default_transaction_read_only", "on"),
                                   ("statement_timeout", "60s")):
                conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    role, sql.Identifier(setting), sql.Literal(value)))
            ensure_ops(conn)  # the freshness log the pipeline dashboard reads
            database = conn.info.dbname
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), role))
            for schema in READABLE_SCHEMAS:
                ident = sql.Identifier(schema)
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, role))
                conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}")
                             .format(ident, role))
                # tables dbt (re)creates later, as the same owner, are readable too
                conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON "
                                     "TABLES TO {}").format(ident, role))
            if config.is_managed("postgres"):
                present = {r[0] for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname = ANY(%s)",
                    (list(SOURCE_DATABASES),))}
                for source in sorted(present):
                    conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC")
                                 .format(sql.Identifier(source)))
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AccessError(
            f"cannot set up the read-only role {MARTS_ROLE} in the warehouse database "
            f"({reason}); check `contour status` (postgres must be up), then run "
            "`contour superset sync`") from None
