"""Superset configuration for Contour's embedded stack.

Loaded by Superset through ``SUPERSET_CONFIG_PATH=/path/to/superset_config.py``.
Everything that differs between machines comes from environment variables:

Required
  CONTOUR_SUPERSET_DB_URI        SQLAlchemy URI of Superset's *metadata* database,
                                 e.g. postgresql+psycopg2://superset:pw@127.0.0.1:5432/superset
  CONTOUR_SUPERSET_SECRET_KEY    long random string; encrypts DB passwords stored in the
                                 metadata DB -> keep it stable for the life of that DB

Optional
  CONTOUR_SUPERSET_CACHE_DIR     directory for FileSystemCache (shared by all gunicorn
                                 workers); unset -> in-process SimpleCache
  CONTOUR_SUPERSET_CACHE_TIMEOUT default cache timeout in seconds (default 300)
  CONTOUR_SUPERSET_CSRF_ENABLED  "true" (default) / "false". With CSRF on, API writes need
                                 the token from GET /api/v1/security/csrf_token/ sent as
                                 X-CSRFToken together with the session cookie of that call.
  CONTOUR_SUPERSET_ALLOWED_ENGINES comma list of SQLAlchemy backends data sources may use
                                 (default "postgresql,clickhousedb")
  CONTOUR_SUPERSET_BASE_URL      URL Superset is reachable at (for the headless browser /
                                 reports), default http://127.0.0.1:8088/
  CONTOUR_SUPERSET_LOG_LEVEL     default INFO
  CONTOUR_SUPERSET_ROW_LIMIT     default 50000
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


class ContourConfigError(RuntimeError):
    """Raised when a required environment variable is missing or invalid."""


def _required(name: str, hint: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        msg = (
            f"[contour] {name} is not set. {hint} "
            f"(Superset config: {__file__})"
        )
        # Superset's config loader logs a long traceback; print the short reason first.
        print(msg, file=sys.stderr, flush=True)
        raise ContourConfigError(msg)
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ContourConfigError(f"[contour] {name} must be an integer, got {raw!r}") from exc


# ---------------------------------------------------------------------------
# core: metadata database + secret
# ---------------------------------------------------------------------------

SQLALCHEMY_DATABASE_URI = _required(
    "CONTOUR_SUPERSET_DB_URI",
    "Set it to the SQLAlchemy URI of Superset's metadata database, e.g. "
    "postgresql+psycopg2://superset:PASSWORD@127.0.0.1:5432/superset",
)
SECRET_KEY = _required(
    "CONTOUR_SUPERSET_SECRET_KEY",
    "Set it to a long random string (e.g. `python -c 'import secrets; "
    "print(secrets.token_urlsafe(48))'`) and keep it stable: it encrypts the "
    "connection passwords stored in the metadata database.",
)
if len(SECRET_KEY) < 32:
    raise ContourConfigError(
        "[contour] CONTOUR_SUPERSET_SECRET_KEY is too short (need >= 32 characters)"
    )

# Detect dropped connections of the long-lived metadata pool (PostgreSQL restarts).
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

# Secrets of features we do not use must still not be the public defaults.
GUEST_TOKEN_JWT_SECRET = SECRET_KEY + ":guest"
GLOBAL_ASYNC_QUERIES_JWT_SECRET = SECRET_KEY + ":async"

# ---------------------------------------------------------------------------
# no telemetry, no external calls
# ---------------------------------------------------------------------------

# The prebuilt front end always renders a Scarf telemetry pixel
# (https://apachesuperset.gateway.scarf.sh/pixel/...) in the navbar; there is no
# server-side switch for it, so the Content-Security-Policy below blocks it (img-src
# has no external hosts). Same for mapbox / OSM tiles / Google fonts.
MAPBOX_API_KEY = ""
DECKGL_BASE_MAP = None
CORS_OPTIONS: dict = {}
ENABLE_CORS = False
THEME_FONT_URL_ALLOWED_DOMAINS: list[str] = []
GET_FEATURE_FLAGS_FUNC = None  # feature flags come from this file only
IS_FEATURE_ENABLED_FUNC = None
SLACK_API_TOKEN = None
SMTP_HOST = "localhost"  # no reports/alerts (ALERT_REPORTS off)
BUG_REPORT_URL = None
DOCUMENTATION_URL = None
TROUBLESHOOTING_LINK = ""
PERMISSION_INSTRUCTIONS_LINK = ""

_CSP = {
    "base-uri": ["'self'"],
    "default-src": ["'self'"],
    "img-src": ["'self'", "blob:", "data:"],
    "worker-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "object-src": "'none'",
    "style-src": ["'self'", "'unsafe-inline'"],
    "font-src": ["'self'", "data:"],
    "script-src": ["'self'", "'strict-dynamic'"],
}
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": _CSP,
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG
CONTENT_SECURITY_POLICY_WARNING = False

# ---------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------

_CACHE_DIR = os.environ.get("CONTOUR_SUPERSET_CACHE_DIR", "").strip()
_CACHE_TIMEOUT = _int("CONTOUR_SUPERSET_CACHE_TIMEOUT", 300)


def _cache(prefix: str) -> dict:
    if _CACHE_DIR:
        path = os.path.join(_CACHE_DIR, prefix)
        os.makedirs(path, exist_ok=True)
        return {
            "CACHE_TYPE": "FileSystemCache",
            "CACHE_DIR": path,
            "CACHE_DEFAULT_TIMEOUT": _CACHE_TIMEOUT,
            "CACHE_THRESHOLD": 2000,
        }
    return {
        "CACHE_TYPE": "SimpleCache",
        "CACHE_DEFAULT_TIMEOUT": _CACHE_TIMEOUT,
        "CACHE_THRESHOLD": 2000,
    }


CACHE_DEFAULT_TIMEOUT = _CACHE_TIMEOUT
CACHE_CONFIG = _cache("superset")  # metadata, dashboards
DATA_CACHE_CONFIG = _cache("data")  # chart query results
# FILTER_STATE_CACHE_CONFIG / EXPLORE_FORM_DATA_CACHE_CONFIG stay on Superset's default
# SupersetMetastoreCache (metadata DB): they must survive restarts and be shared by
# workers. (This is what needs flask-caching==2.3.1, see requirements/superset.in.)

# ---------------------------------------------------------------------------
# CSRF / API
# ---------------------------------------------------------------------------

WTF_CSRF_ENABLED = _bool("CONTOUR_SUPERSET_CSRF_ENABLED", True)
WTF_CSRF_TIME_LIMIT = int(timedelta(hours=12).total_seconds())
# Plain-HTTP loopback: do not demand a same-origin Referer (only enforced on HTTPS anyway).
WTF_CSRF_SSL_STRICT = False
FAB_API_SWAGGER_UI = True  # /swagger/v1, served from local static files
AUTH_RATE_LIMITED = False  # the deploy tool logs in repeatedly
RATELIMIT_ENABLED = False

# ---------------------------------------------------------------------------
# data sources: only PostgreSQL and ClickHouse (clickhouse-connect, clickhousedb://)
# ---------------------------------------------------------------------------

_ALLOWED_ENGINES = {
    e.strip()
    for e in os.environ.get(
        "CONTOUR_SUPERSET_ALLOWED_ENGINES", "postgresql,clickhousedb"
    ).split(",")
    if e.strip()
}
PREFERRED_DATABASES = ["PostgreSQL", "ClickHouse"]
PREVENT_UNSAFE_DB_CONNECTIONS = True  # keeps sqlite:// and friends out
# Hide engines from the "Connect a database" dialog that the validator below rejects
# anyway (these come with Superset's own dependencies: shillelagh/apsw).
DBS_AVAILABLE_DENYLIST = {
    "gsheets": {"apsw"},
    "shillelagh": {"apsw"},
    "postgresql": {"auroradataapi"},
}


def DB_SQLA_URI_VALIDATOR(sqlalchemy_uri) -> None:  # noqa: N802 (Superset config name)
    """Called by Superset before every data-source engine is created."""
    backend = sqlalchemy_uri.get_backend_name()
    if backend not in _ALLOWED_ENGINES:
        raise ValueError(
            f"Database engine {backend!r} is not allowed in Contour "
            f"(allowed: {', '.join(sorted(_ALLOWED_ENGINES))})"
        )


# ---------------------------------------------------------------------------
# feature flags: dashboards as code
# ---------------------------------------------------------------------------

FEATURE_FLAGS = {
    "DASHBOARD_RBAC": False,  # access via dataset permissions only
    "ENABLE_TEMPLATE_PROCESSING": False,  # no Jinja in SQL
    "EMBEDDED_SUPERSET": False,
    "ALERT_REPORTS": False,  # no Celery beat / SMTP
    "THUMBNAILS": False,  # no Celery / browser
    "GLOBAL_ASYNC_QUERIES": False,  # no Redis
    "SQLLAB_FORCE_RUN_ASYNC": False,
    "TAGGING_SYSTEM": False,
    "ENABLE_JAVASCRIPT_CONTROLS": False,
    "DYNAMIC_PLUGINS": False,
    "SSH_TUNNELING": False,
    "ENABLE_SUPERSET_META_DB": False,
    "DASHBOARD_VIRTUALIZATION": True,
    "DRILL_TO_DETAIL": True,
    "DRILL_BY": True,
}
# Themes are not edited in the UI (dashboards/charts come from git).
ENABLE_UI_THEME_ADMINISTRATION = False

# ---------------------------------------------------------------------------
# misc
# ---------------------------------------------------------------------------

ROW_LIMIT = _int("CONTOUR_SUPERSET_ROW_LIMIT", 50000)
SUPERSET_WEBSERVER_TIMEOUT = 60
LOG_LEVEL = getattr(
    logging, os.environ.get("CONTOUR_SUPERSET_LOG_LEVEL", "INFO").upper(), logging.INFO
)
RESULTS_BACKEND = None  # synchronous SQL Lab only
WEBDRIVER_TYPE = "chrome"
WEBDRIVER_BASEURL = os.environ.get("CONTOUR_SUPERSET_BASE_URL", "http://127.0.0.1:8088/")
WEBDRIVER_BASEURL_USER_FRIENDLY = WEBDRIVER_BASEURL
WEBDRIVER_OPTION_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
