"""Superset dashboards as code: ``superset/assets/**.yaml`` ⇄ a running Superset.

The YAML files are Superset's own export format, made reviewable:

- ``databases/*.yaml``: ``sqlalchemy_uri`` holds placeholders (``{pg_host}``,
  ``{marts_password}``, …) filled from :class:`~contour.config.Config`; passwords never appear
  in a file nor in the bundle's YAML, they go in the import's ``passwords`` form field.
- ``datasets/*.yaml``: as exported (columns, saved metrics, SQL of virtual datasets), with
  defaults left out.
- ``charts/*.yaml``: ``params`` (the form data); the ``query_context`` that
  ``/api/v1/chart/<id>/data/`` needs is computed (:mod:`contour.superset_query`).
- ``dashboards/*.yaml``: ``layout`` rows and compact ``filters`` instead of Superset's
  ``position`` JSON and native filter configuration (:mod:`contour.superset_layout`).

:func:`sync` renders them into the ZIP bundle that ``POST /api/v1/assets/import/`` takes
(one top folder with ``metadata.yaml``, ``databases/``, ``datasets/``, ``charts/``,
``dashboards/``) and imports it, overwriting every object with the same UUID. :func:`export`
does the reverse with ``GET /api/v1/assets/export/`` so that UI edits go back to the files.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from contour import superset_layout as layout_mod
from contour.config import PROJECT_ROOT, Config
from contour.errors import ContourError
from contour.superset_access import MARTS_ROLE, ensure_marts_role
from contour.superset_api import SupersetClient
from contour.superset_query import SUPPORTED_VIZ, query_context

ASSETS_DIR = PROJECT_ROOT / "superset" / "assets"
KINDS = ("databases", "datasets", "charts", "dashboards")
VERSION = "1.0.0"
PASSWORD_MASK = "XXXXXXXXXX"  # what Superset writes in place of a password
BUNDLE_ROOT = "contour_assets"
#: read-only ClickHouse user of the live connection
CLICKHOUSE_READER = "reader"


class AssetError(ContourError):
    """A YAML asset that is invalid or inconsistent; the message names the file."""


# ---------------------------------------------------------------------- YAML files
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


@dataclass
class Assets:
    """The YAML files of one assets folder, by kind and path."""

    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # "charts/x.yaml" -> data

    @classmethod
    def load(cls, root: Path = ASSETS_DIR) -> Assets:
        if not root.is_dir():
            raise AssetError(f"assets folder {root} does not exist")
        assets = cls(root)
        for kind in KINDS:
            for path in sorted((root / kind).glob("*.yaml")):
                rel = f"{kind}/{path.name}"
                try:
                    data = yaml.safe_load(path.read_text())
                except yaml.YAMLError as exc:
                    raise AssetError(f"{path}: not valid YAML ({exc})") from None
                if not isinstance(data, dict) or "uuid" not in data:
                    raise AssetError(f"{path}: expected a mapping with a uuid")
                data["uuid"] = str(data["uuid"])
                assets.files[rel] = data
        seen: dict[str, str] = {}
        for rel, data in assets.files.items():
            if data["uuid"] in seen:
                raise AssetError(f"{rel} and {seen[data['uuid']]} have the same uuid "
                                 f"{data['uuid']}")
            seen[data["uuid"]] = rel
        return assets

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {rel: d for rel, d in self.files.items() if rel.startswith(kind + "/")}

    def by_uuid(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["uuid"]: d for d in self.of_kind(kind).values()}

    def path_of(self, kind: str, uuid: str) -> str | None:
        for rel, data in self.of_kind(kind).items():
            if data["uuid"] == uuid:
                return rel
        return None


# ---------------------------------------------------------------------- rendering
def placeholders(config: Config) -> dict[str, str]:
    """Values for ``{name}`` in database URIs (hosts, ports, users — no passwords)."""
    warehouse = urlsplit(config.pg_dsn("warehouse"))
    ch = config.clickhouse_endpoint
    return {
        "pg_host": warehouse.hostname or "127.0.0.1",
        "pg_port": str(warehouse.port or 5432),
        "warehouse_db": warehouse.path.lstrip("/") or "warehouse",
        "marts_user": MARTS_ROLE,
        "clickhouse_host": ch.host,
        "clickhouse_port": str(ch.port),
        "clickhouse_user": CLICKHOUSE_READER,
        "clickhouse_scheme": "https" if config.clickhouse_url.startswith("https") else "http",
    }


def secret_placeholders(config: Config) -> dict[str, str]:
    return {
        "marts_password": config.secrets.get("superset_marts_password"),
        "clickhouse_password": config.secrets.get("clickhouse_reader_password"),
    }


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render_uri(template: str, values: Mapping[str, str], secrets: Mapping[str, str],
               where: str) -> tuple[str, str | None]:
    """(URI with the password masked, the password) of a database's URI template."""
    password: str | None = None

    def fill(match: re.Match[str]) -> str:
        nonlocal password
        name = match.group(1)
        if name in secrets:
            password = secrets[name]
            return PASSWORD_MASK
        if name in values:
            return values[name]
        raise AssetError(f"{where}: unknown placeholder {{{name}}} in sqlalchemy_uri; known: "
                         f"{', '.join(sorted({*values, *secrets}))}")

    return _PLACEHOLDER.sub(fill, template), password


@dataclass
class Bundle:
    contents: dict[str, str]  # path inside the bundle's top folder -> YAML text
    passwords: dict[str, str]  # bundle path of a database file -> its password

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, text in sorted(self.contents.items()):
                info = zipfile.ZipInfo(f"{BUNDLE_ROOT}/{rel}", (1980, 1, 1, 0, 0, 0))
                zf.writestr(info, text)
        return buf.getvalue()

    def import_passwords(self) -> dict[str, str]:
        """Keyed like Superset keys the bundle's files: without the top folder."""
        return dict(self.passwords)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for rel, text in sorted(self.contents.items()):
            h.update(rel.encode() + b"\0" + text.encode() + b"\0")
        for rel, pw in sorted(self.passwords.items()):
            h.update(rel.encode() + b"\0" + pw.encode() + b"\0")
        return h.hexdigest()


def render(assets: Assets, config: Config) -> Bundle:
    values, secrets = placeholders(config), secret_placeholders(config)
    contents: dict[str, str] = {}
    passwords: dict[str, str] = {}
    db_uuids = set(assets.by_uuid("databases"))
    datasets = assets.by_uuid("datasets")
    charts = assets.by_uuid("charts")

    for rel, data in assets.of_kind("databases").items():
        db = {**data, "version": VERSION}
        db["sqlalchemy_uri"], password = render_uri(str(data["sqlalchemy_uri"]), values,
                                                    secrets, rel)
        if password is not None:
            passwords[rel] = password
        contents[rel] = dump_yaml(db)

    for rel, data in assets.of_kind("datasets").items():
        if str(data.get("database_uuid")) not in db_uuids:
            raise AssetError(f"{rel}: database_uuid {data.get('database_uuid')} is not defined "
                             "in databases/")
        contents[rel] = dump_yaml(_render_dataset(data))

    for rel, data in assets.of_kind("charts").items():
        dataset = datasets.get(str(data.get("dataset_uuid")))
        if dataset is None:
            raise AssetError(f"{rel}: dataset_uuid {data.get('dataset_uuid')} is not defined "
                             "in datasets/")
        contents[rel] = dump_yaml(_render_chart(rel, data, dataset))

    for rel, data in assets.of_kind("dashboards").items():
        contents[rel] = dump_yaml(_render_dashboard(rel, data, charts, datasets))

    contents["metadata.yaml"] = dump_yaml({
        "version": VERSION, "type": "assets",
        "timestamp": datetime(2026, 1, 1, tzinfo=UTC).isoformat()})
    return Bundle(contents, passwords)


def _render_dataset(data: dict[str, Any]) -> dict[str, Any]:
    out = {"version": VERSION, "offset": 0, "params": None, "template_params": None,
           "filter_select_enabled": True, "extra": None, **copy.deepcopy(data)}
    out["columns"] = [{"is_dttm": False, "is_active": True, "groupby": True,
                       "filterable": True, **c} for c in data.get("columns", [])]
    out["metrics"] = [{"metric_type": None, **m} for m in data.get("metrics", [])]
    return out


def _temporal(dataset: Mapping[str, Any]) -> set[str]:
    return {c["column_name"] for c in dataset.get("columns", []) if c.get("is_dttm")}


def _render_chart(rel: str, data: dict[str, Any], dataset: Mapping[str, Any]) -> dict[str, Any]:
    out = {"version": VERSION, "cache_timeout": None, **copy.deepcopy(data)}
    viz = out["viz_type"]
    params = out.setdefault("params", {})
    params["viz_type"] = viz
    params.setdefault("datasource", "0__table")
    params.setdefault("adhoc_filters", [])
    time_col = dataset.get("main_dttm_col")
    if time_col and not any(f.get("operator") == "TEMPORAL_RANGE"
                            for f in params["adhoc_filters"]):
        # the dashboard's period filter sets this filter's range
        params["adhoc_filters"].append({
            "clause": "WHERE", "subject": time_col, "operator": "TEMPORAL_RANGE",
            "comparator": params.get("time_range", "No filter"), "expressionType": "SIMPLE"})
    params.setdefault("time_range", "No filter")
    if not out.get("query_context"):
        if viz not in SUPPORTED_VIZ:
            raise AssetError(f"{rel}: viz_type {viz!r} has no generated query context; "
                             f"use one of {', '.join(sorted(SUPPORTED_VIZ))} or keep the "
                             "query_context the UI saved (`contour superset export`)")
        try:
            out["query_context"] = query_context(viz, params, _temporal(dataset))
        except KeyError as exc:
            raise AssetError(f"{rel}: params lack {exc} needed by viz_type {viz}") from None
    return out


def _chart_columns(chart: Mapping[str, Any], datasets: Mapping[str, Mapping[str, Any]]
                   ) -> set[str]:
    dataset = datasets.get(str(chart.get("dataset_uuid")), {})
    return {c["column_name"] for c in dataset.get("columns", [])}


def _render_dashboard(rel: str, data: dict[str, Any], charts: Mapping[str, Any],
                      datasets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out = {"version": VERSION, "published": True, "css": "", **copy.deepcopy(data)}
    rows = out.pop("layout", None)
    filters = out.pop("filters", [])
    metadata = out.setdefault("metadata", {})
    if rows is not None:
        names = {u: str(c["slice_name"]) for u, c in charts.items()}
        try:
            out["position"] = layout_mod.position(out["uuid"], out["dashboard_title"], rows,
                                                  names)
        except ValueError as exc:
            raise AssetError(f"{rel}: {exc}") from None
        placed = layout_mod.chart_placeholders(rows)
        columns = {u: _chart_columns(charts[u], datasets) for u in placed}
        timed = {u: bool(datasets.get(str(charts[u].get("dataset_uuid")), {})
                         .get("main_dttm_col")) for u in placed}
        try:
            metadata["native_filter_configuration"] = layout_mod.native_filters(
                out["uuid"], filters, rows, columns, timed)
        except ValueError as exc:
            raise AssetError(f"{rel}: {exc}") from None
    elif "position" not in out:
        raise AssetError(f"{rel}: needs `layout` (rows of charts) or `position`")
    metadata.setdefault("color_scheme", "supersetColors")
    metadata.setdefault("cross_filters_enabled", False)
    metadata.setdefault("timed_refresh_immune_slices", [])
    metadata.setdefault("expanded_slices", {})
    metadata.setdefault("label_colors", {})
    metadata.setdefault("shared_label_colors", [])
    metadata.setdefault("color_scheme_domain", [])
    return out


# ---------------------------------------------------------------------- sync
@dataclass
class SyncResult:
    databases: int
    datasets: int
    charts: int
    dashboards: int
    digest: str

    def summary(self) -> str:
        return (f"{self.dashboards} dashboards, {self.charts} charts, {self.datasets} datasets, "
                f"{self.databases} databases")


def client_for(config: Config) -> SupersetClient:
    return SupersetClient(config.superset_url, config.admin_user, config.admin_password())


def sync(config: Config, root: Path = ASSETS_DIR,
         client: SupersetClient | None = None) -> SyncResult:
    """Import every asset of ``root`` into Superset, overwriting objects with the same UUID."""
    assets = Assets.load(root)
    bundle = render(assets, config)
    client = client or client_for(config).login()
    client.import_assets(bundle.zip_bytes(), bundle.import_passwords())
    counts = {kind: len(assets.of_kind(kind)) for kind in KINDS}
    return SyncResult(digest=bundle.digest, **counts)


def provision(config: Config, stamp: Path, progress: Callable[[str], None],
              root: Path = ASSETS_DIR) -> None:
    """What ``contour up`` does once Superset is healthy: the marts role, then a sync unless
    the same bundle was already imported into this Superset (``stamp`` holds its digest)."""
    ensure_marts_role(config)
    digest = render(Assets.load(root), config).digest
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    result = sync(config, root)
    stamp.write_text(digest + "\n")
    progress(f"superset: provisioned {result.summary()} from {root}")


# ---------------------------------------------------------------------- export
_CHART_KEYS = ("slice_name", "uuid", "dataset_uuid", "viz_type", "description",
               "cache_timeout", "certified_by", "certification_details")
_DATASET_KEYS = ("table_name", "uuid", "database_uuid", "schema", "sql", "main_dttm_col",
                 "description", "cache_timeout", "normalize_columns", "always_filter_main_dttm")
_DATABASE_KEYS = ("database_name", "uuid", "sqlalchemy_uri", "cache_timeout",
                  "expose_in_sqllab", "allow_run_async", "allow_ctas", "allow_cvas",
                  "allow_dml", "allow_file_upload", "impersonate_user", "extra")
_DASHBOARD_KEYS = ("dashboard_title", "uuid", "slug", "description", "published", "css",
                   "certified_by", "certification_details")
_DROP_PARAMS = ("datasource", "viz_type", "slice_id", "dashboards", "url_params")
_COLUMN_DEFAULTS = {"is_dttm": False, "is_active": True, "groupby": True, "filterable": True}
_METRIC_DEFAULTS: dict[str, Any] = {}


def _pick(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The keys that differ from Superset's defaults (None, empty, False)."""
    return {k: data[k] for k in keys if data.get(k) not in (None, "", {}, False)}


def _prune(item: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items()
            if v is not None and (k not in defaults or v != defaults[k])}


_IDENTITY_KEYS = ("column_name", "metric_name", "uuid", "name", "chart")


def _identity(item: Any) -> Any:
    if isinstance(item, dict):
        for key in _IDENTITY_KEYS:
            if key in item:
                return (key, str(item[key]))
    return None


def like(new: Any, old: Any) -> Any:
    """``new`` with its mapping keys and identified list items in ``old``'s order, so that an
    export of unchanged objects rewrites the files byte for byte."""
    if isinstance(new, dict) and isinstance(old, dict):
        keys = [k for k in old if k in new] + [k for k in new if k not in old]
        return {k: like(new[k], old.get(k)) for k in keys}
    if isinstance(new, list) and isinstance(old, list):
        old_ids = {_identity(o): i for i, o in enumerate(old) if _identity(o) is not None}
        if old_ids and all(_identity(n) is not None for n in new):
            ordered = sorted(new, key=lambda n: old_ids.get(_identity(n), len(old)))
            return [like(n, old[old_ids[_identity(n)]]) if _identity(n) in old_ids else n
                    for n in ordered]
        return [like(n, old[i]) if i < len(old) else n for i, n in enumerate(new)]
    return new


def _exported_dataset(data: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(data, _DATASET_KEYS)
    out["columns"] = [_prune(c, _COLUMN_DEFAULTS) for c in data.get("columns", [])]
    out["metrics"] = [_prune(m, _METRIC_DEFAULTS) for m in data.get("metrics", [])]
    return out


def _exported_chart(data: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(data, _CHART_KEYS)
    params = {k: v for k, v in (data.get("params") or {}).items() if k not in _DROP_PARAMS}
    # what rendering adds by default (see _render_chart) stays out of the files
    params["adhoc_filters"] = [f for f in params.get("adhoc_filters") or []
                               if not (f.get("operator") == "TEMPORAL_RANGE"
                                       and f.get("comparator") == "No filter")]
    if not params["adhoc_filters"]:
        del params["adhoc_filters"]
    if params.get("time_range") == "No filter":
        del params["time_range"]
    if params.get("annotation_layers") == []:
        del params["annotation_layers"]
    out["params"] = params
    if data.get("viz_type") not in SUPPORTED_VIZ and data.get("query_context"):
        out["query_context"] = data["query_context"]
    return out


def _exported_dashboard(data: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(data, _DASHBOARD_KEYS)
    metadata = dict(data.get("metadata") or {})
    native = metadata.pop("native_filter_configuration", [])
    for key in ("chart_configuration", "global_chart_configuration", "positions",
                "map_label_colors", "shared_label_colors", "color_scheme_domain",
                "label_colors", "expanded_slices", "timed_refresh_immune_slices"):
        metadata.pop(key, None)
    rows = layout_mod.layout_of(data.get("position") or {})
    out["metadata"] = metadata
    if rows is None:  # a layout with tabs/columns: keep Superset's own form
        out["position"] = data.get("position")
        metadata["native_filter_configuration"] = native
    else:
        out["filters"] = layout_mod.filters_of(native)
        out["layout"] = rows
    return out


def _exported_database(data: Mapping[str, Any], current: Mapping[str, Any] | None,
                       config: Config) -> dict[str, Any]:
    out = _pick(data, _DATABASE_KEYS)
    out["allow_dml"] = bool(data.get("allow_dml"))  # explicit: the connections are read-only
    if current is not None:
        rendered, _ = render_uri(str(current["sqlalchemy_uri"]), placeholders(config),
                                 {k: PASSWORD_MASK for k in secret_placeholders(config)},
                                 "database")
        if rendered == out.get("sqlalchemy_uri"):  # unchanged: keep the template
            out["sqlalchemy_uri"] = current["sqlalchemy_uri"]
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "asset"


def export(config: Config, root: Path = ASSETS_DIR,
           client: SupersetClient | None = None) -> list[str]:
    """Write every database, dataset, chart and dashboard of Superset into ``root`` (files
    matched by UUID keep their names). Returns the paths that changed."""
    client = client or client_for(config).login()
    archive = zipfile.ZipFile(io.BytesIO(client.export_assets()))
    current = Assets.load(root) if root.is_dir() else Assets(root)
    changed: list[str] = []
    for name in archive.namelist():
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or parts[1] not in KINDS or not name.endswith(".yaml"):
            continue
        kind = parts[1]
        data = yaml.safe_load(archive.read(name))
        uuid = str(data["uuid"])
        rel = current.path_of(kind, uuid)
        if kind == "databases":
            new = _exported_database(data, current.files.get(rel) if rel else None, config)
        elif kind == "datasets":
            new = _exported_dataset(data)
        elif kind == "charts":
            new = _exported_chart(data)
        else:
            new = _exported_dashboard(data)
        if rel is None:
            title = (data.get("dashboard_title") or data.get("slice_name")
                     or data.get("table_name") or data.get("database_name") or uuid)
            rel = f"{kind}/{_slug(str(title))}.yaml"
        target = root / rel
        text = dump_yaml(like(new, current.files.get(rel)))
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            changed.append(rel)
    return changed
