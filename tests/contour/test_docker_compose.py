"""Static checks of the production deployment: docker-compose.yml, deploy/ and the Dockerfiles.

There is no Docker engine on the development machines, so nothing here starts a container.
The compose file is parsed with PyYAML, its ``${VAR}`` references are resolved the way
``docker compose`` resolves them (from deploy/.env.example, with a test value for each empty
secret), and the result is checked against the code it has to agree with: the variables and
endpoints of contour.config, the process names and settings of the embedded services
(contour/services/*), the lock files and the Dockerfiles.
"""

from __future__ import annotations

import base64
import re
import shlex
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from contour.config import DATABASES, ENV_VARS, INFRASTRUCTURE, Config
from contour.services.airflow import Airflow
from contour.services.postgres import SERVER_SETTINGS
from contour.services.superset import Superset
from contour.stack import Stack

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / ".env.example"
SUPERSET_CONFIG = REPO / "superset" / "superset_config.py"

#: Contour's own long-running services and their commands. They are built by later issues
#: and not yet known to contour.config, so this is the one list the test has to spell out.
APP_SERVICES = {
    "contour-dialer": ["contour", "dialer", "run"],
    "contour-crm": ["contour", "crm", "run"],
    "contour-cdc": ["contour", "cdc", "run"],
    "contour-loader": ["contour", "loader", "run"],
    "contour-exporter": ["contour", "export", "run"],
}
#: the services of contour.config that Contour's own processes read and write directly
DATA_STORES = ("postgres", "kafka", "clickhouse")
#: contour.config variables every container running Contour code must set: the endpoints of
#: all services, and "every service is external"
ENDPOINT_VARS = (
    "CONTOUR_PG_DSN",
    "CONTOUR_KAFKA_BOOTSTRAP",
    "CONTOUR_CLICKHOUSE_URL",
    "CONTOUR_AIRFLOW_URL",
    "CONTOUR_SUPERSET_URL",
)
#: PostgreSQL settings CDC depends on; values must equal the embedded server's
PG_REPLICATION_SETTINGS = (
    "wal_level", "max_replication_slots", "max_wal_senders", "max_connections",
    "max_slot_wal_keep_size",
)

PINNED_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):"
    r"(?P<tag>v?\d+\.\d+(?:\.\d+)*(?:[-_.][A-Za-z0-9_.-]+)?)"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
CONTOUR_NAME = re.compile(r"\bCONTOUR_[A-Z0-9_]*[A-Z0-9]\b")
_REFERENCE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)
#: names that look secret but hold a path or an address
NOT_A_SECRET = re.compile(r"_(FILE|PATH|DIR|URL)$")
#: user:password@ in a URL or DSN
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]*)@")


# ------------------------------------------------------------------ compose interpolation
def references(text: str) -> Iterator[tuple[str, str | None]]:
    """``(name, operator)`` of every ``$VAR`` / ``${VAR...}`` in a string (``$$`` skipped)."""
    for match in _REFERENCE.finditer(text):
        if match.group(0) == "$$":
            continue
        if match["plain"]:
            yield match["plain"], None
            continue
        braced = _BRACED.match(match["braced"])
        assert braced, f"unparseable interpolation {match.group(0)!r}"
        yield braced["name"], braced["op"]


def interpolate(text: str, env: dict[str, str]) -> str:
    """Resolve a string as `docker compose` does; a missing required variable raises."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match["plain"]:
            return env.get(match["plain"], "")
        braced = _BRACED.match(match["braced"])
        assert braced, f"unparseable interpolation {match.group(0)!r}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise KeyError(f"{name}: {arg}")
        if op == ":-" and not value or op == "-" and value is None:
            return arg
        if op in (":+", "+"):
            return arg if value or (op == "+" and value is not None) else ""
        return value or ""

    return _REFERENCE.sub(substitute, text)


def walk_strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML document, mapping keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {resolve(k, env): resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    assert ENV_EXAMPLE.is_file(), f"{ENV_EXAMPLE} is missing"
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def var_values(raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, str]:
    """A value for every referenced variable: .env.example's, or a distinct test value
    (URL-safe and long enough for Superset's 32-character minimum)."""
    names = {name for text in walk_strings(raw) for name, _ in references(text)}
    return {name: env_example.get(name) or f"test-{name.lower().replace('_', '-')}-{'x' * 32}"
            for name in names}


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], var_values: dict[str, str]) -> dict[str, Any]:
    return resolve(raw, var_values)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config.from_env({"CONTOUR_STATE_DIR": str(tmp_path_factory.mktemp("state"))})


@pytest.fixture(scope="module")
def infrastructure(config: Config) -> dict[str, list[str]]:
    """contour.config service -> compose services: the embedded stack's process names."""
    stack = Stack(config)
    return {name: stack.services[name].process_names() for name in INFRASTRUCTURE}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "")).strip() in ("no", "on-failure")


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """``(source, target, read_only)`` of every volume entry, short or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            assert len(parts) in (2, 3), f"anonymous or malformed volume {entry!r}"
            result.append((parts[0], parts[1], len(parts) == 3 and "ro" in parts[2].split(",")))
        else:
            assert entry.get("source"), f"anonymous volume {entry!r}"
            result.append((entry["source"], entry["target"], bool(entry.get("read_only"))))
    return result


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def dockerfile(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return REPO / build / "Dockerfile"
    return REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def same_build(services: dict[str, dict[str, Any]], name: str) -> list[str]:
    """The compose services built from the same Dockerfile as ``name``."""
    target = dockerfile(services[name])
    assert target is not None, f"{name} is not built from a Dockerfile"
    return [n for n, s in services.items() if dockerfile(s) == target]


def contour_code_services(services: dict[str, dict[str, Any]],
                          infrastructure: dict[str, list[str]]) -> list[str]:
    """Services running Contour code: its own, and Airflow (the DAGs import contour)."""
    return [*APP_SERVICES, *same_build(services, infrastructure["airflow"][0])]


def expected_services(infrastructure: dict[str, list[str]]) -> set[str]:
    return {name for names in infrastructure.values() for name in names} | set(APP_SERVICES)


# ------------------------------------------------------------------ services
def test_every_expected_service_is_defined(services: dict[str, dict[str, Any]],
                                           infrastructure: dict[str, list[str]]) -> None:
    assert set(infrastructure) == set(INFRASTRUCTURE)
    missing = expected_services(infrastructure) - set(services)
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


def test_contour_services_run_their_commands(services: dict[str, dict[str, Any]]) -> None:
    for name, argv in APP_SERVICES.items():
        assert command(services[name]) == argv, name
        assert str(dockerfile(services[name])).endswith("deploy/contour.Dockerfile"), name


def test_every_service_has_a_restart_policy_and_one_shots_are_waited_for(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]]) -> None:
    waited = {dep for s in services.values()
              for dep, spec in (s.get("depends_on") or {}).items()
              if isinstance(spec, dict)
              and spec.get("condition") == "service_completed_successfully"}
    for name, service in services.items():
        assert "restart" in service, f"{name}: no restart policy"
        if is_one_shot(service):
            assert name in waited, f"one-shot {name} is not awaited by any service"
            assert name not in expected_services(infrastructure), \
                f"{name} must run continuously"
        else:
            assert service["restart"] in ("always", "unless-stopped"), name


def test_every_long_running_service_has_a_healthcheck(
        services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if is_one_shot(service):
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        assert test and not check.get("disable"), f"{name}: no healthcheck"
        assert test not in (["NONE"], "NONE"), f"{name}: healthcheck disabled"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"


def test_depends_on_waits_for_health(services: dict[str, dict[str, Any]],
                                     infrastructure: dict[str, list[str]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), \
            f"{name}: depends_on must be a mapping with a condition per service"
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            expected = ("service_completed_successfully" if is_one_shot(services[dep])
                        else "service_healthy")
            assert isinstance(spec, dict) and spec.get("condition") == expected, \
                f"{name} -> {dep}: condition must be {expected}"
    for name in APP_SERVICES:
        stores = {n for store in DATA_STORES for n in infrastructure[store]}
        missing = stores - set(services[name].get("depends_on") or {})
        assert not missing, f"{name} does not wait for {sorted(missing)}"
    for part in ("airflow", "superset"):
        for name in infrastructure[part]:
            depends = services[name].get("depends_on") or {}
            assert set(infrastructure["postgres"]) <= set(depends), \
                f"{name} does not wait for its metadata database"
            assert any(is_one_shot(services[d]) for d in depends), \
                f"{name} does not wait for its init service"


# ------------------------------------------------------------------ variables
def test_every_contour_variable_is_known_to_the_config(
        raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    superset_vars = set(CONTOUR_NAME.findall(SUPERSET_CONFIG.read_text()))
    used = {name for text in walk_strings(raw) for name in CONTOUR_NAME.findall(text)}
    for path in {dockerfile(s) for s in services.values()} - {None}:
        used |= set(CONTOUR_NAME.findall(path.read_text()))
    unknown = used - set(ENV_VARS) - superset_vars
    assert not unknown, f"not in contour.config.ENV_VARS: {sorted(unknown)}"
    # superset_config.py's own variables belong to the Superset containers only
    for name, service in services.items():
        if str(dockerfile(service)).endswith("superset.Dockerfile"):
            continue
        stray = set(environment(service)) & (superset_vars - set(ENV_VARS))
        assert not stray, f"{name} sets Superset-only variables {sorted(stray)}"


def test_contour_services_reach_every_service_by_its_compose_name(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]],
        tmp_path: Path) -> None:
    for name in contour_code_services(services, infrastructure):
        env = environment(services[name])
        for var in ENDPOINT_VARS:
            assert env.get(var), f"{name}: {var} is not set"
        assert env.get("CONTOUR_MANAGED_SERVICES") == "none", \
            f"{name}: CONTOUR_MANAGED_SERVICES must be none (nothing embedded in a container)"
        config = Config.from_env({**env, "CONTOUR_STATE_DIR": str(tmp_path)})
        assert config.managed_services == ()
        for service in INFRASTRUCTURE:
            endpoint = config.endpoint(service)
            assert endpoint.host in infrastructure[service], \
                f"{name}: {service} endpoint host {endpoint.host!r} is not one of " \
                f"{infrastructure[service]}"
            assert str(endpoint.port) in listening_ports(services, service, infrastructure), \
                f"{name}: nothing in {endpoint.host} listens on {endpoint.port}"


def listening_ports(services: dict[str, dict[str, Any]], service: str,
                    infrastructure: dict[str, list[str]]) -> set[str]:
    """Container ports a service listens on, read from its own settings."""
    primary = services[infrastructure[service][0]]
    env = environment(primary)
    if service == "kafka":  # clients are sent to the advertised listener for their host
        advertised = env.get("KAFKA_ADVERTISED_LISTENERS", "").split(",")
        return {port for item in advertised
                for host, port in re.findall(r"^[A-Z_]+://([^:]*):(\d+)$", item.strip())
                if host in infrastructure[service]}
    if service == "airflow":
        return {env.get("AIRFLOW__API__PORT", "")}
    if service == "superset":
        argv = command(primary)
        return {argv[argv.index("--bind") + 1].rsplit(":", 1)[1]} if "--bind" in argv else set()
    # postgres and clickhouse: the port their own health check probes
    return set(re.findall(r"(?:-p |:)(\d+)\b", healthcheck_text(primary)))


def test_credentials_in_contour_urls_match_the_servers(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]]) -> None:
    pg = environment(services[infrastructure["postgres"][0]])
    ch = environment(services[infrastructure["clickhouse"][0]])
    for name in contour_code_services(services, infrastructure):
        env = environment(services[name])
        dsn = urlsplit(env["CONTOUR_PG_DSN"])
        assert (dsn.username, dsn.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"]), \
            name
        url = urlsplit(env["CONTOUR_CLICKHOUSE_URL"])
        assert (url.username, url.password) == (ch.get("CLICKHOUSE_USER", "default"),
                                                ch["CLICKHOUSE_PASSWORD"]), name


def test_secrets_come_from_env_and_never_default(raw: dict[str, Any],
                                                 env_example: dict[str, str]) -> None:
    refs = [(name, op) for text in walk_strings(raw) for name, op in references(text)]
    required = {name for name, op in refs if op in (":?", "?")}
    for name, op in refs:
        if SECRET_NAME.search(name):
            assert op == ":?", f"${{{name}}} must be written ${{{name}:?...}} (no default)"
        if op is None:
            assert name in env_example, f"${{{name}}} has no default and no .env.example entry"
    for name in required:
        assert name in env_example, f"required {name} is missing from {ENV_EXAMPLE}"
        if SECRET_NAME.search(name):
            assert env_example[name] == "", \
                f"{ENV_EXAMPLE}: leave {name} empty so that compose refuses to start unset"
    unused = set(env_example) - {name for name, _ in refs}
    assert not unused, f"{ENV_EXAMPLE} names variables compose never reads: {sorted(unused)}"
    # no literal secret: a secret-like setting, or a password inside a URL, always takes its
    # value from the environment
    for service_name, service in raw["services"].items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not NOT_A_SECRET.search(key):
                assert value.startswith("${"), \
                    f"{service_name}: {key} is a literal, not from .env"
            for match in URL_PASSWORD.finditer(value):
                assert match["password"].startswith("${"), \
                    f"{service_name}: {key} has a literal password"


def test_unset_secrets_stop_compose(raw: dict[str, Any], var_values: dict[str, str]) -> None:
    for secret in [n for n in var_values if SECRET_NAME.search(n)]:
        env = {k: v for k, v in var_values.items() if k != secret}
        with pytest.raises(KeyError):
            resolve(raw, env)


# ------------------------------------------------------------------ images and Dockerfiles
def test_every_image_is_pinned_to_an_exact_version(services: dict[str, dict[str, Any]]
                                                   ) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        image = service.get("image")
        assert image or service.get("build"), f"{name}: neither image nor build"
        if not image:
            continue
        match = PINNED_IMAGE.match(image)
        assert match, f"{name}: image {image!r} is not pinned to an exact version tag"
        assert "latest" not in match["tag"], f"{name}: {image}"
        if service.get("build"):
            assert match["tag"] == version, \
                f"{name}: built image {image} should carry the project version {version}"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined, comments dropped."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
            pending = ""
    return result


def base_images(path: Path) -> list[str]:
    images, stages = [], set()
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
            if words[0] not in stages:
                images.append(words[0])
    return images


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    ignore = path.with_name(path.name + ".dockerignore")
    if not ignore.exists():
        ignore = REPO / ".dockerignore"
    assert ignore.exists(), f"{path}: no {path.name}.dockerignore and no .dockerignore"
    rules = []
    for line in ignore.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token))
        rules.append((negate, re.compile(regex + "$")))
    return rules


def is_ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for negate, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerfiles_exist_are_pinned_and_copy_what_exists(
        services: dict[str, dict[str, Any]]) -> None:
    paths = {dockerfile(s) for s in services.values()} - {None}
    assert paths, "no service is built from a Dockerfile"
    for path in paths:
        assert path.is_file(), f"{path} is missing"
        images = base_images(path)
        assert images, f"{path}: no FROM"
        for image in images:
            assert "$" not in image and PINNED_IMAGE.match(image), \
                f"{path}: FROM {image} is not pinned to an exact version"
        rules = dockerignore_rules(path)
        for secret_or_bulk in (".env", ".venvs/core/bin/python", ".contour/secrets.json",
                               ".git/HEAD"):
            assert is_ignored(secret_or_bulk, rules), \
                f"{path}: the build context would include {secret_or_bulk}"
        for keyword, args in dockerfile_instructions(path):
            if keyword not in ("COPY", "ADD"):
                continue
            words = [w for w in args.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in args.split()):
                continue
            for source in words[:-1]:
                if source == ".":
                    for needed in ("pyproject.toml", "contour/config.py"):
                        assert not is_ignored(needed, rules), f"{path}: {needed} ignored"
                    continue
                assert (REPO / source).exists(), f"{path}: COPY {source}: no such file"
                assert not is_ignored(source, rules), \
                    f"{path}: COPY {source} is excluded by the dockerignore file"


def requirement_names(path: Path) -> dict[str, str]:
    """Package name -> full requirement line of a requirements .in file."""
    names = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names[re.split(r"[\[<>=!~ ;]", line, maxsplit=1)[0].lower()] = line
    return names


def lock_selection(path: Path, lock: Path) -> set[str]:
    """Packages a Dockerfile installs from a lock: the names of its ``grep -E '^(a|b)=='``,
    each of which must be in the lock, as many as its ``wc -l`` guard expects."""
    run = " ".join(args for keyword, args in dockerfile_instructions(path) if keyword == "RUN")
    match = re.search(r"grep -E '\^\(([^)]*)\)=='", run)
    assert match, f"{path}: no grep -E '^(name|...)==' selection from {lock.name}"
    names = set(match[1].split("|"))
    pinned = {line.split("==")[0].lower() for line in lock.read_text().splitlines()
              if "==" in line and not line.startswith((" ", "#"))}
    assert names <= pinned, f"{path}: {sorted(names - pinned)} not in {lock.name}"
    guard = re.search(r'wc -l < \S+\)" -eq (\d+)', run)
    assert guard and int(guard[1]) == len(names), \
        f"{path}: the wc -l guard does not match the {len(names)} selected packages"
    return names


def test_dockerfiles_follow_the_requirement_files(services: dict[str, dict[str, Any]],
                                                  infrastructure: dict[str, list[str]]
                                                  ) -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "requires-python"]
    minimum = tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())
    for part, base_package in (("airflow", "apache-airflow"), ("superset", "apache-superset")):
        path = dockerfile(services[infrastructure[part][0]])
        assert path is not None
        text = path.read_text()
        wanted = requirement_names(REPO / "requirements" / f"{part}.in")
        version = wanted.pop(base_package).split("==")[1]
        (image,) = base_images(path)
        assert image.split(":")[1].split("-")[0] == version, \
            f"{path}: base image {image} is not {base_package} {version} (requirements)"
        python = re.search(r"python(\d+)\.(\d+)", image)
        assert python is None or tuple(map(int, python.groups())) >= minimum, image
        assert f"requirements/{part}.lock" in text, f"{path} does not use {part}.lock"
        selected = lock_selection(path, REPO / "requirements" / f"{part}.lock")
        missing = set(wanted) - selected
        assert not missing, f"{path} does not install {sorted(missing)} ({part}.in)"
    airflow_text = dockerfile(services[infrastructure["airflow"][0]]).read_text()
    assert "requirements/dbt.lock" in airflow_text and "/opt/dbt-venv" in airflow_text
    app = dockerfile(services[next(iter(APP_SERVICES))])
    (image,) = base_images(app)
    assert image.startswith("python:")
    assert tuple(map(int, image.split(":")[1].split("-")[0].split(".")[:2])) >= minimum
    app_text = app.read_text()
    assert "requirements/core.lock" in app_text and "uv pip sync" in app_text


# ------------------------------------------------------------------ volumes
def test_every_volume_is_declared_and_every_bind_mount_exists(
        compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for source, _target, read_only in mounts(service):
            if is_bind(source):
                host = (REPO / source).resolve()
                # Docker creates a missing top-level folder (e.g. dags/ before any DAG exists)
                assert host.exists() or host.parent == REPO, \
                    f"{name}: bind mount source {source} does not exist"
                assert read_only, f"{name}: bind mount {source} must be read-only (:ro)"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert not declared - used, f"declared but unused volumes: {sorted(declared - used)}"


def test_data_lives_on_named_volumes(services: dict[str, dict[str, Any]],
                                     infrastructure: dict[str, list[str]]) -> None:
    def data_dirs(name: str, env: dict[str, str]) -> list[str]:
        dirs = {
            "postgres": [env.get("PGDATA", "/var/lib/postgresql/data")],
            "kafka": env.get("KAFKA_LOG_DIRS", "").split(","),
            "clickhouse": ["/var/lib/clickhouse"],
            "superset": [env.get("SUPERSET_HOME", "")],
            "airflow-scheduler": [env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER", "")],
            "airflow-api-server": [env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER", "")],
        }.get(name, [])
        if name in APP_SERVICES:
            dirs = [env.get("CONTOUR_STATE_DIR", "")]
        return dirs

    for name, service in services.items():
        named = {target.rstrip("/") for source, target, _ in mounts(service)
                 if not is_bind(source)}
        for path in data_dirs(name, environment(service)):
            assert path and path.rstrip("/") in named, \
                f"{name}: data folder {path!r} is not on a named volume"
    # task logs are written by the scheduler and read by the api-server: one shared volume
    logs = {source for n in infrastructure["airflow"]
            for source, target, _ in mounts(services[n]) if target == "/opt/airflow/logs"}
    assert len(logs) == 1, f"Airflow containers do not share one log volume: {logs}"


# ------------------------------------------------------------------ per service
def test_postgres_is_ready_for_logical_replication(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]]) -> None:
    postgres = services[infrastructure["postgres"][0]]
    assert postgres["image"].startswith("postgres:16.")
    argv = command(postgres)
    settings = dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv) if word == "-c")
    for key in PG_REPLICATION_SETTINGS:
        assert settings.get(key) == SERVER_SETTINGS[key], \
            f"postgres: -c {key}={SERVER_SETTINGS[key]} (as in the embedded server)"
    scripts = [(REPO / source) for source, target, _ in mounts(postgres)
               if target.startswith("/docker-entrypoint-initdb.d/")]
    assert scripts, "postgres: no init script in /docker-entrypoint-initdb.d"
    text = "\n".join(path.read_text() for path in scripts)
    for db in DATABASES:
        assert re.search(rf"CREATE DATABASE\s+\"?{db}\"?[\s;]", text, re.I), \
            f"postgres: the init script does not create database {db}"
    assert re.search(r"^[^#]*host\s+replication\s", text, re.M), \
        "postgres: no pg_hba.conf line for replication connections (CDC)"
    env = environment(postgres)
    for var in set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*_PASSWORD)\b", text)):
        assert env.get(var), f"postgres: the init script needs {var}"
    assert "pg_isready" in healthcheck_text(postgres)


def test_metadata_databases_use_the_init_script_roles(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]]) -> None:
    pg_env = environment(services[infrastructure["postgres"][0]])
    pg_host = infrastructure["postgres"][0]
    uris = {
        "airflow": environment(services[infrastructure["airflow"][0]])[
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        "superset": environment(services[infrastructure["superset"][0]])[
            "CONTOUR_SUPERSET_DB_URI"],
    }
    for db, uri in uris.items():
        parts = urlsplit(uri)
        assert (parts.hostname, parts.path) == (pg_host, f"/{db}"), uri
        assert parts.password == pg_env[f"{db.upper()}_DB_PASSWORD"], \
            f"{db}: metadata password differs from the one the init script sets"


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]],
                                      infrastructure: dict[str, list[str]]) -> None:
    kafka = services[infrastructure["kafka"][0]]
    env = environment(kafka)
    assert set(env.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"}
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").startswith(f"{env['KAFKA_NODE_ID']}@")
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "bad CLUSTER_ID"
    for var in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env.get(var) == "1", f"single node: {var} must be 1"
    assert "--bootstrap-server" in healthcheck_text(kafka)


def test_clickhouse_has_a_password_and_a_read_only_reader(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]]) -> None:
    clickhouse = services[infrastructure["clickhouse"][0]]
    env = environment(clickhouse)
    assert env.get("CLICKHOUSE_PASSWORD"), "clickhouse: the default user has no password"
    users = [(REPO / source) for source, target, _ in mounts(clickhouse)
             if target.startswith("/etc/clickhouse-server/users.d/")]
    assert users, "clickhouse: no users.d file mounted"
    readers = [ET.parse(path).getroot() for path in users]
    reader = next((root.find("users/reader") for root in readers
                   if root.find("users/reader") is not None), None)
    assert reader is not None, "no user 'reader' in the mounted users.d files"
    password = reader.find("password")
    assert password is not None and not (password.text or "").strip(), \
        "reader's password must come from the environment, not the file"
    assert env.get(password.get("from_env", "")), \
        f"clickhouse: {password.get('from_env')} (reader's password) is not set"
    profile = reader.findtext("profile")
    readonly = next((root.findtext(f"profiles/{profile}/readonly") for root in readers
                     if root.find(f"profiles/{profile}") is not None), None)
    assert readonly in ("1", "2"), f"reader's profile {profile!r} is not read-only"
    assert "/ping" in healthcheck_text(clickhouse)


def test_airflow_is_configured_like_the_embedded_stack(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]],
        config: Config) -> None:
    airflow = Airflow(config)
    embedded = airflow.environment()
    names = same_build(services, infrastructure["airflow"][0])
    envs = {name: environment(services[name]) for name in names}
    for name, env in envs.items():
        missing = set(embedded) - set(env)
        assert not missing, f"{name} lacks {sorted(missing)} (contour/services/airflow.py)"
        for key, value in embedded.items():
            if value in ("True", "False", "true", "false", "LocalExecutor"):
                assert env[key] == value, f"{name}: {key}={env[key]}, embedded {value}"
    # one set of secrets and settings for all Airflow processes (JWT mismatch = failed tasks)
    first = next(iter(envs.values()))
    for name, env in envs.items():
        airflow_vars = {k: v for k, v in env.items() if k.startswith("AIRFLOW")}
        assert airflow_vars == {k: v for k, v in first.items() if k.startswith("AIRFLOW")}, \
            f"{name}: Airflow settings differ between containers"
    env = envs[infrastructure["airflow"][0]]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
        env["CONTOUR_AIRFLOW_URL"] + "/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == env["CONTOUR_ADMIN_USER"] + ":admin"
    dags_mounts = [target for name in names for source, target, _ in mounts(services[name])
                   if source.rstrip("/") in ("./dags", "dags")]
    assert dags_mounts and all(t == env["AIRFLOW__CORE__DAGS_FOLDER"] for t in dags_mounts), \
        "./dags must be mounted at AIRFLOW__CORE__DAGS_FOLDER"
    for spec in airflow.processes():
        argv = " ".join(command(services[spec.name]))
        assert " ".join(spec.argv[1:]) in argv, f"{spec.name}: {argv!r}"
        assert "/api/v2/monitor/health" in healthcheck_text(services[spec.name]), spec.name
    init = [n for n in names if is_one_shot(services[n])]
    assert [command(services[n]) for n in init] == [["db", "migrate"]]


def test_superset_is_configured_like_the_embedded_stack(
        services: dict[str, dict[str, Any]], infrastructure: dict[str, list[str]],
        config: Config) -> None:
    superset = Superset(config)
    embedded = superset.environment()
    names = same_build(services, infrastructure["superset"][0])
    required = set(re.findall(r'_required\(\s*"(\w+)"', SUPERSET_CONFIG.read_text()))
    for name in names:
        env = environment(services[name])
        missing = (set(embedded) - set(config.env)) - set(env)
        assert not missing, f"{name} lacks {sorted(missing)} (contour/services/superset.py)"
        assert required <= set(env), f"{name}: superset_config.py needs {sorted(required)}"
        assert "SUPERSET__SQLALCHEMY_DATABASE_URI" not in env  # would override the config
        config_path = env["SUPERSET_CONFIG_PATH"]
        host = [REPO / source / Path(config_path).relative_to(target)
                for source, target, _ in mounts(services[name])
                if is_bind(source) and Path(config_path).is_relative_to(target)]
        assert host and host[0].resolve() == SUPERSET_CONFIG, \
            f"{name}: SUPERSET_CONFIG_PATH {config_path} is not the mounted superset_config.py"
    (spec,) = superset.processes()
    server = services[spec.name]
    argv = command(server)
    assert argv[0] == "gunicorn"
    expected, actual = flags(spec.argv[1:]), flags(argv[1:])
    expected.pop("--bind"), actual.pop("--bind")
    assert actual == expected, "gunicorn flags differ from contour/services/superset.py"
    assert "/health" in healthcheck_text(server)
    init = " ".join(" ".join(command(services[n])) for n in names if is_one_shot(services[n]))
    for step in ("superset db upgrade", "fab create-admin", "superset init"):
        assert step in init, f"superset init service does not run `{step}`"
    assert "--password admin" not in init


def flags(argv: list[str]) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for i, word in enumerate(argv):
        if word.startswith("--"):
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            result[word] = nxt if nxt is not None and not nxt.startswith("--") else None
        elif i == len(argv) - 1:
            result["<app>"] = word
    return result
