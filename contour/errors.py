"""Errors that the ``contour`` command reports as one clear line (what is wrong, how to fix)."""

import re


class ContourError(Exception):
    """A failure the user can act on; ``str()`` is the one line shown to them."""

    exit_code = 1


class ConfigError(ContourError):
    """A wrong configuration value (environment variable, state folder)."""

    exit_code = 2


class ServiceError(ContourError):
    """A service could not be started, reached or stopped."""

    exit_code = 3


def unreachable_service(exc: BaseException) -> str | None:
    """The one line for a service that could not be reached (a connection error of
    PostgreSQL's or ClickHouse's client escaping a command), or None for any other error.
    Matched by the client's module, so that every command need not import both clients."""
    module, text = type(exc).__module__, str(exc)
    # (subclasses too: psycopg raises AdminShutdown when the server is killed mid-command)
    if not any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__):
        return None
    # the OS's reason (e.g. "Connection refused") and where, when the message has them
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\n]+)", text)
    where = re.search(r"host='?([\w.:-]+)'?, port=(\d+)", text) or \
        re.search(r'server at "([^"]+)"(?: \([^)]*\))?, port (\d+)', text)
    first = next((line.strip() for line in text.splitlines() if line.strip()), repr(exc))
    detail = (f"{where.group(1)}:{where.group(2)}: " if where else "") + \
        (reason.group(1).strip() if reason else first[:200])
    if module.startswith("psycopg"):
        return (f"PostgreSQL is not reachable ({detail}): start it with `contour up postgres` "
                "or check CONTOUR_PG_DSN; `contour status` shows what runs")
    if module.startswith("clickhouse_connect"):
        return (f"ClickHouse is not reachable ({detail}): start it with `contour up "
                "clickhouse` or check CONTOUR_CLICKHOUSE_URL; `contour status` shows what runs")
    return None
