"""Unit tests of the configuration object: defaults, overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from contour.config import (
    DEFAULT_CLICKHOUSE_PORT,
    DEFAULT_KAFKA_PORT,
    DEFAULT_PG_PORT,
    ENV_VARS,
    INFRASTRUCTURE,
    SERVICES,
    Config,
)
from contour.errors import ConfigError


def test_defaults_are_loopback_and_every_service_is_managed(tmp_path: Path) -> None:
    config = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)})
    assert config.managed_services == SERVICES
    for service in INFRASTRUCTURE:
        assert config.endpoint(service).is_loopback
    assert config.pg_endpoint.port == DEFAULT_PG_PORT
    assert config.kafka_endpoints[0].port == DEFAULT_KAFKA_PORT
    assert config.clickhouse_endpoint.port == DEFAULT_CLICKHOUSE_PORT
    assert config.state_dir == tmp_path


def test_embedded_dsn_carries_the_generated_password(tmp_path: Path) -> None:
    config = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)})
    dsn = config.pg_dsn("dialer")
    password = config.secrets.get("pg_password")
    assert dsn == f"postgresql://contour:{password}@127.0.0.1:{DEFAULT_PG_PORT}/dialer"
    assert config.sqlalchemy_url("crm") == dsn.replace("postgresql://", "postgresql+psycopg2://"
                                                       ).replace("/dialer", "/crm")
    # generated once, stored 0600, read back later
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    again = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)})
    assert again.pg_dsn("dialer") == dsn
    assert again.admin_password() == config.admin_password() != "admin"


def test_overrides_for_external_services(tmp_path: Path) -> None:
    config = Config.from_env({
        "CONTOUR_STATE_DIR": str(tmp_path),
        "CONTOUR_MANAGED_SERVICES": "none",
        "CONTOUR_PG_DSN": "postgresql://etl:secret@db.internal:5432/postgres",
        "CONTOUR_PG_CRM_DSN": "postgresql://crm:pw@crm-db:5432/crm",
        "CONTOUR_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "CONTOUR_CLICKHOUSE_URL": "https://ch.internal:8443/",
    })
    assert config.managed_services == ()
    assert config.pg_dsn("warehouse") == "postgresql://etl:secret@db.internal:5432/warehouse"
    assert config.pg_dsn("crm") == "postgresql://crm:pw@crm-db:5432/crm"
    assert [e.host for e in config.kafka_endpoints] == ["k1", "k2"]
    assert config.clickhouse_url == "https://ch.internal:8443"
    assert not config.clickhouse_endpoint.is_loopback


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("CONTOUR_KAFKA_BOOTSTRAP", "localhost", "is not host:port"),
    ("CONTOUR_KAFKA_BOOTSTRAP", "localhost:99999", "port '99999' is not a number"),
    ("CONTOUR_CLICKHOUSE_URL", "ftp://x:1", "is not a URL like http://"),
    ("CONTOUR_AIRFLOW_URL", "http://127.0.0.1:notaport", "port is not a number"),
    ("CONTOUR_PG_DSN", "mysql://x@y/z", "is not a URL like postgresql://"),
    ("CONTOUR_MANAGED_SERVICES", "postgres,redis", "unknown service(s) redis"),
    ("CONTOUR_AIRFLOW_PARALLELISM", "many", "is not a whole number"),
    ("CONTOUR_START_TIMEOUT", "-5", "is not a positive number"),
])
def test_wrong_values_name_the_variable_and_the_fix(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path), name: value})
    message = str(info.value)
    assert message.startswith(f"{name}=")
    assert expected in message
    assert "\n" not in message


def test_every_variable_read_is_documented() -> None:
    import re

    import contour.config as module

    documented = re.findall(r"``(CONTOUR_[A-Z_<>]+)``", module.__doc__ or "")
    patterns = [re.compile(re.sub(r"<[A-Z]+>", "[A-Z]+", name) + "$") for name in documented]
    for name in ENV_VARS:
        assert any(p.match(name) for p in patterns), f"{name} is not documented in config.py"


def test_demo_speed_drives_the_workload_services(tmp_path: Path) -> None:
    from contour.services.pipeline import Crm, Dialer

    default = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path)})
    assert default.demo_speed == 10
    fast = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path), "CONTOUR_DEMO_SPEED": "60"})
    for service in (Dialer(fast), Crm(fast)):
        argv = service.processes()[0].argv
        assert argv[argv.index("--speed") + 1] == "60"
    for wrong in ("fast", "0", "-1"):
        with pytest.raises(ConfigError, match=f"CONTOUR_DEMO_SPEED={wrong!r}"):
            _ = Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path),
                                 "CONTOUR_DEMO_SPEED": wrong}).demo_speed


def test_landing_mode_is_loader_or_engine(tmp_path: Path) -> None:
    base = {"CONTOUR_STATE_DIR": str(tmp_path)}
    assert Config.from_env(base).landing_mode == "loader"
    assert Config.from_env({**base, "CONTOUR_LANDING_MODE": "engine"}).landing_mode == "engine"
    with pytest.raises(ConfigError, match=r"^CONTOUR_LANDING_MODE='kafka': choose from "
                                          r"loader, engine$"):
        _ = Config.from_env({**base, "CONTOUR_LANDING_MODE": "kafka"}).landing_mode
