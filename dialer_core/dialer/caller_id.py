"""Caller-ID routing: the number shown to the subscriber.

Operator number (personal and callback calls, so the customer recognises their agent) beats a
regional number (longest matching phone prefix, so the call looks local) beats the campaign's
route, then the campaign's own ``caller_id``. Routes are loaded once per batcher tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Route:
    kind: str
    campaign_id: int | None
    operator_id: int | None
    phone_prefix: str | None
    caller_id: str


def load_routes(conn: psycopg.Connection) -> list[Route]:
    return [Route(*r) for r in conn.execute(
        "SELECT kind, campaign_id, operator_id, phone_prefix, caller_id FROM caller_id_routes"
        " ORDER BY route_id")]


def resolve(routes: list[Route], campaign_id: int, phone: str, operator_id: int | None,
            default: str) -> str:
    def applies(r: Route) -> bool:
        return r.campaign_id in (None, campaign_id)

    if operator_id is not None:
        for r in routes:
            if r.kind == "operator" and r.operator_id == operator_id and applies(r):
                return r.caller_id
    regional = [r for r in routes if r.kind == "regional" and applies(r)
                and phone.startswith(r.phone_prefix or "")]
    if regional:
        return max(regional, key=lambda r: len(r.phone_prefix or "")).caller_id
    for r in routes:
        if r.kind == "campaign" and r.campaign_id == campaign_id:
            return r.caller_id
    return default
