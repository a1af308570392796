"""Dashboard layout and native filters: the compact YAML form ⇄ Superset's JSON.

A dashboard YAML file lists its rows (``layout``: a list of rows, each a list of
``{chart: <uuid>, width: 1-12, height: N}`` or ``{markdown: text, ...}``) and its filters
(``filters``: ``{name, type: time|time_grain|select, dataset, column, default, multi}``).
:func:`position` and :func:`native_filters` expand them into the ``position`` and
``metadata.native_filter_configuration`` Superset imports; :func:`layout_of` and
:func:`filters_of` turn an exported dashboard back into the compact form.

Chart ids in the bundle are placeholders (1..N in layout order); the import replaces them by
the real ids (``update_id_refs``), which is how filter scopes can name charts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

DEFAULT_HEIGHT = 50
_FILTER_TYPES = {"time": "filter_time", "time_grain": "filter_timegrain",
                 "select": "filter_select", "range": "filter_range"}
_FILTER_KINDS = {v: k for k, v in _FILTER_TYPES.items()}


def _stable_id(prefix: str, *parts: object) -> str:
    digest = hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()[:10]
    return f"{prefix}-{digest}"


def chart_placeholders(layout: list[list[dict[str, Any]]]) -> dict[str, int]:
    """Chart uuid → placeholder chart id, in layout order."""
    ids: dict[str, int] = {}
    for row in layout:
        for item in row:
            if "chart" in item and item["chart"] not in ids:
                ids[item["chart"]] = len(ids) + 1
    return ids


def position(dashboard_uuid: str, title: str, layout: list[list[dict[str, Any]]],
             chart_names: Mapping[str, str]) -> dict[str, Any]:
    ids = chart_placeholders(layout)
    pos: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [],
                    "parents": ["ROOT_ID"]},
    }
    for r, row in enumerate(layout):
        row_id = _stable_id("ROW", dashboard_uuid, r)
        pos["GRID_ID"]["children"].append(row_id)
        pos[row_id] = {"type": "ROW", "id": row_id, "children": [],
                       "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for c, item in enumerate(row):
            meta: dict[str, Any] = {"width": int(item.get("width", 4)),
                                    "height": int(item.get("height", DEFAULT_HEIGHT))}
            if "chart" in item:
                uuid = item["chart"]
                if uuid not in chart_names:
                    raise ValueError(f"dashboard {title!r} places chart {uuid} that no "
                                     "charts/*.yaml file defines")
                kind, node_id = "CHART", _stable_id("CHART", dashboard_uuid, uuid)
                meta.update(chartId=ids[uuid], uuid=uuid, sliceName=chart_names[uuid])
            else:
                kind, node_id = "MARKDOWN", _stable_id("MARKDOWN", dashboard_uuid, r, c)
                meta["code"] = item["markdown"]
            pos[node_id] = {"type": kind, "id": node_id, "children": [],
                            "parents": ["ROOT_ID", "GRID_ID", row_id], "meta": meta}
            pos[row_id]["children"].append(node_id)
    return pos


def layout_of(pos: Mapping[str, Any]) -> list[list[dict[str, Any]]] | None:
    """The compact layout of an exported position, or None if it uses more than rows."""
    grid = pos.get("GRID_ID") or {}
    rows: list[list[dict[str, Any]]] = []
    for row_id in grid.get("children", []):
        row = pos[row_id]
        if row.get("type") != "ROW":
            return None
        items: list[dict[str, Any]] = []
        for child_id in row.get("children", []):
            child = pos[child_id]
            meta = child.get("meta", {})
            size = {"width": meta.get("width", 4), "height": meta.get("height", DEFAULT_HEIGHT)}
            if child.get("type") == "CHART" and meta.get("uuid"):
                # the title is for the reader of the file; the chart's own YAML names it
                items.append({"title": meta.get("sliceName", ""), "chart": meta["uuid"], **size})
            elif child.get("type") == "MARKDOWN":
                items.append({"markdown": meta.get("code", ""), **size})
            else:
                return None
        rows.append(items)
    return rows


def native_filters(dashboard_uuid: str, filters: list[dict[str, Any]],
                   layout: list[list[dict[str, Any]]],
                   chart_columns: Mapping[str, set[str]],
                   chart_is_timed: Mapping[str, bool]) -> list[dict[str, Any]]:
    """``native_filter_configuration`` of compact filters, scoped to the charts they fit:
    a select filter to charts whose dataset has its column, time filters to charts with a
    time column (the others are listed as excluded)."""
    ids = chart_placeholders(layout)
    out = []
    for spec in filters:
        kind = spec["type"]
        if kind not in _FILTER_TYPES:
            raise ValueError(f"filter {spec.get('name')!r}: type {kind!r} is not one of "
                             f"{', '.join(_FILTER_TYPES)}")
        column = spec.get("column")
        if kind in ("select", "range"):
            fits = {u for u in ids if column in chart_columns.get(u, set())}
        else:
            fits = {u for u in ids if chart_is_timed.get(u)}
        target: dict[str, Any] = {}
        if spec.get("dataset"):
            target["datasetUuid"] = spec["dataset"]
        if column:
            target["column"] = {"name": column}
        default = spec.get("default")
        out.append({
            "id": _stable_id("NATIVE_FILTER", dashboard_uuid, spec["name"]),
            "name": spec["name"],
            "filterType": _FILTER_TYPES[kind],
            "type": "NATIVE_FILTER",
            "description": spec.get("description", ""),
            "targets": [target],
            "controlValues": _control_values(kind, spec),
            "defaultDataMask": _default_mask(kind, default),
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"],
                      "excluded": sorted(ids[u] for u in ids if u not in fits)},
        })
    return out


def _control_values(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "select":
        return {"enableEmptyFilter": False, "defaultToFirstItem": False,
                "multiSelect": bool(spec.get("multi", True)), "searchAllOptions": False,
                "inverseSelection": False, "sortAscending": True}
    return {"enableEmptyFilter": False}


def _default_mask(kind: str, default: Any) -> dict[str, Any]:
    if default is None:
        return {"extraFormData": {}, "filterState": {}, "ownState": {}}
    if kind == "time":
        return {"extraFormData": {"time_range": default}, "filterState": {"value": default},
                "ownState": {}}
    if kind == "time_grain":
        return {"extraFormData": {"time_grain_sqla": default},
                "filterState": {"value": [default]}, "ownState": {}}
    values = default if isinstance(default, list) else [default]
    return {"extraFormData": {}, "filterState": {"value": values}, "ownState": {}}


def filters_of(config: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compact filters of an exported ``native_filter_configuration`` (scopes are
    recomputed on the next sync)."""
    out = []
    for flt in config:
        kind = _FILTER_KINDS.get(flt.get("filterType", ""))
        if kind is None:
            continue
        spec: dict[str, Any] = {"name": flt["name"], "type": kind}
        target = (flt.get("targets") or [{}])[0]
        if target.get("datasetUuid"):
            spec["dataset"] = target["datasetUuid"]
        if target.get("column", {}).get("name"):
            spec["column"] = target["column"]["name"]
        if flt.get("description"):
            spec["description"] = flt["description"]
        value = (flt.get("defaultDataMask") or {}).get("filterState", {}).get("value")
        if value is not None:
            spec["default"] = value[0] if kind == "time_grain" else value
        if kind == "select" and not flt.get("controlValues", {}).get("multiSelect", True):
            spec["multi"] = False
        out.append(spec)
    return out
