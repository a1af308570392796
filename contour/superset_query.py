"""The saved query context of a chart, built from its form data (``params``).

Superset's ``/api/v1/chart/<id>/data/`` runs a chart's saved ``query_context``; the UI writes
it when a chart is saved, an import does not. The YAML charts carry only ``params``, so the
bundle gets a query context computed here for the visualisations the dashboards use. The
browser still builds its own queries from ``params``; this one returns the same grouped rows
without the front end's post-processing (pivoting), which is what the API test compares.
"""

from __future__ import annotations

import json
from typing import Any

#: dataset column names that are temporal (``is_dttm``), to know a time axis from a category
TemporalColumns = set[str]

_SINGLE_METRIC = {"big_number_total", "gauge_chart", "pie"}
_SERIES = {"echarts_timeseries_line", "echarts_timeseries_bar", "echarts_area",
           "echarts_timeseries_smooth", "echarts_timeseries_step"}
SUPPORTED_VIZ = _SINGLE_METRIC | _SERIES | {"table"}


def _metric_label(metric: Any) -> str:
    if isinstance(metric, str):
        return metric
    return str(metric.get("label") or metric.get("sqlExpression") or "metric")


def filters_of(params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(simple filters, SQL WHERE text) of a chart's ``adhoc_filters``."""
    simple: list[dict[str, Any]] = []
    where: list[str] = []
    for flt in params.get("adhoc_filters") or []:
        if flt.get("clause", "WHERE") != "WHERE":
            continue
        if flt.get("expressionType") == "SQL":
            where.append(f"({flt['sqlExpression']})")
            continue
        item: dict[str, Any] = {"col": flt["subject"], "op": flt["operator"]}
        if "comparator" in flt:
            item["val"] = flt["comparator"]
        simple.append(item)
    return simple, " AND ".join(where)


def _axis_column(params: dict[str, Any], temporal: TemporalColumns) -> Any:
    x_axis = params["x_axis"]
    if x_axis in temporal and params.get("time_grain_sqla"):
        return {"timeGrain": params["time_grain_sqla"], "columnType": "BASE_AXIS",
                "sqlExpression": x_axis, "label": x_axis, "expressionType": "SQL"}
    return x_axis


def query_object(viz: str, params: dict[str, Any], temporal: TemporalColumns) -> dict[str, Any]:
    filters, where = filters_of(params)
    groupby = list(params.get("groupby") or [])
    metrics: list[Any]
    columns: list[Any]
    if viz in _SINGLE_METRIC:
        metrics = [params["metric"]]
        columns = groupby if viz != "big_number_total" else []
    elif viz in _SERIES:
        metrics = list(params["metrics"])
        columns = [_axis_column(params, temporal), *groupby]
    elif viz == "table" and params.get("query_mode") == "raw":
        metrics, columns = [], list(params["all_columns"])
    elif viz == "table":
        metrics, columns = list(params.get("metrics") or []), groupby
    else:
        raise ValueError(f"no query context for viz_type {viz!r}; supported: "
                         f"{', '.join(sorted(SUPPORTED_VIZ))} (or save the chart in the UI "
                         "and `contour superset export`)")
    orderby: list[list[Any]] = []
    if viz == "table" and params.get("query_mode") == "raw":
        orderby = [json.loads(o) if isinstance(o, str) else o
                   for o in params.get("order_by_cols") or []]
    elif metrics and viz not in _SERIES:
        orderby = [[metrics[0], not params.get("order_desc", True)]]
    elif metrics and viz in _SERIES and not _is_temporal_axis(params, temporal):
        orderby = [[metrics[0], bool(params.get("x_axis_sort_asc", False))]]
    return {
        "filters": filters,
        "extras": {"having": "", "where": where},
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "annotation_layers": [],
        "row_limit": int(params.get("row_limit") or 1000),
        "series_limit": 0,
        "order_desc": bool(params.get("order_desc", True)),
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }


def _is_temporal_axis(params: dict[str, Any], temporal: TemporalColumns) -> bool:
    return params.get("x_axis") in temporal


def query_context(viz: str, params: dict[str, Any], temporal: TemporalColumns) -> str:
    """The JSON ``query_context`` of a chart (its datasource id is set by the import)."""
    return json.dumps({
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [query_object(viz, params, temporal)],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }, sort_keys=True)


def metric_labels(viz: str, params: dict[str, Any]) -> list[str]:
    """Labels of a chart's metrics (the keys of its data rows)."""
    if viz in _SINGLE_METRIC:
        return [_metric_label(params["metric"])]
    return [_metric_label(m) for m in params.get("metrics") or []]
