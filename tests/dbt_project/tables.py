"""Read mart tables as comparable rows (numbers as floats rounded to 6 places)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from tests.dbt_project.conftest import Warehouse

CALL_COLUMNS = ("bucket_start, direction, campaign_id, queue_id, attempts, outbound_attempts,"
                " leads_dialed, contacts, contact_rate, attempts_per_lead, offered, answered,"
                " abandoned, short_abandoned, abandon_rate, answered_within_sl, service_level,"
                " total_wait_seconds, asa_seconds, total_abandon_wait_seconds, handled,"
                " talk_seconds, hold_seconds, wrap_seconds, aht_seconds")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    return value


def read(warehouse: Warehouse, table: str, columns: str) -> list[tuple[Any, ...]]:
    """``columns`` (comma separated) of ``marts.<table>``, sorted by :func:`order`."""
    names = [c.strip() for c in columns.split(",")]
    query = sql.SQL("SELECT {cols} FROM marts.{t}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, names)), t=sql.Identifier(table))
    with warehouse.connect() as conn:
        rows = conn.execute(query).fetchall()
    return sorted((tuple(_plain(v) for v in row) for row in rows), key=order)


def order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Sort key of a row: column by column, nulls first."""
    return tuple((v is not None, v if v is not None else 0) for v in row)


def contents(warehouse: Warehouse, schemas: tuple[str, ...] = ("marts",)) -> dict[str, str]:
    """A digest of every table's full contents in the given schemas (views left out)."""
    with warehouse.connect() as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = ANY(%s) AND table_type = 'BASE TABLE'",
            (list(schemas),)).fetchall()
        digests = {}
        for schema, table in tables:
            query = sql.SQL(
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|'"
                " ORDER BY t::text)), '') FROM {}.{} AS t").format(
                    sql.Identifier(schema), sql.Identifier(table))
            digests[f"{schema}.{table}"] = conn.execute(query).fetchone()[0]  # type: ignore[index]
    return digests

