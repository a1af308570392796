"""Interactive call processing (ICP) for inbound calls.

For each step the dialer asks the configured endpoint, by HTTP GET with ``cdr_id, start_time,
input_result, numa, numb``, what to do next; the JSON answer is one instruction:
``{"action": "say", "text": …}``, ``{"action": "collect", "max_digits": n}``,
``{"action": "route", "queue"|"number"|"operator": …}`` or ``{"action": "hangup"}``.
A timeout (default 3 s), an HTTP error, invalid JSON or an invalid instruction switches the call
to the configured fallback scenario. Every step, its latency and the fallback flag are recorded
in ``icp_steps`` — the KPIs (requests, fallback rate, latency p95) come from there.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

ACTIONS = ("say", "collect", "route", "hangup")
FINAL = ("route", "hangup")


@dataclass(frozen=True)
class IcpSettings:
    endpoint: str | None
    timeout_s: float = 3.0
    max_steps: int = 8
    fallback: tuple[dict[str, Any], ...] = field(
        default=({"action": "say", "text": "Please hold, an operator will answer."},
                 {"action": "route", "queue": "inbound"}))


@dataclass(frozen=True)
class Step:
    seq: int
    input_result: str
    http_status: int | None
    latency_ms: int | None
    response: dict[str, Any] | None
    action: str
    fallback: bool
    error: str | None


class InstructionError(ValueError):
    pass


def validate(instruction: object) -> dict[str, Any]:
    """The instruction if it is one the dialer can carry out; otherwise why not."""
    if not isinstance(instruction, dict):
        raise InstructionError("instruction is not a JSON object")
    action = instruction.get("action")
    if action not in ACTIONS:
        raise InstructionError(f"unknown action {action!r}")
    if action == "say" and not isinstance(instruction.get("text"), str):
        raise InstructionError("say needs a text")
    if action == "collect" and not (isinstance(instruction.get("max_digits"), int)
                                    and 0 < instruction["max_digits"] <= 32):
        raise InstructionError("collect needs max_digits 1..32")
    if action == "route" and sum(k in instruction for k in ("queue", "number", "operator")) != 1:
        raise InstructionError("route needs exactly one of queue, number, operator")
    return instruction


def ask(settings: IcpSettings, params: dict[str, str]) -> tuple[int | None, int, Any, str | None]:
    """One GET: (HTTP status, latency ms, parsed JSON or None, error or None)."""
    assert settings.endpoint is not None
    url = settings.endpoint + ("&" if "?" in settings.endpoint else "?") + \
        urllib.parse.urlencode(params)
    started = time.perf_counter()
    status: int | None = None
    try:
        with urllib.request.urlopen(url, timeout=settings.timeout_s) as response:
            status = response.status
            body = response.read()
        return status, _ms(started), json.loads(body), None
    except urllib.error.HTTPError as exc:
        return exc.code, _ms(started), None, f"HTTP {exc.code}"
    except json.JSONDecodeError as exc:
        return status, _ms(started), None, f"invalid JSON: {exc.msg}"
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        kind = "timeout" if isinstance(reason, TimeoutError) or "timed out" in str(reason) \
            else "unreachable"
        return status, _ms(started), None, f"{kind}: {reason}"


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def run_session(settings: IcpSettings, cdr_id: int, start_time: datetime, numa: str, numb: str,
                digits: Callable[[dict[str, Any]], str]) -> list[Step]:
    """Drive one inbound call through the endpoint's instructions; ``digits`` plays the caller
    answering a ``collect``. Ends on route/hangup, on the first failure (then the fallback
    scenario runs), or after ``max_steps`` (also a fallback: a loop is an endpoint bug)."""
    steps: list[Step] = []
    input_result = ""
    for seq in range(1, settings.max_steps + 1):
        if settings.endpoint is None:
            error, status, latency, body = "no endpoint configured", None, None, None
        else:
            status, latency, body, error = ask(settings, {
                "cdr_id": str(cdr_id), "start_time": start_time.isoformat(),
                "input_result": input_result, "numa": numa, "numb": numb})
        if error is None:
            try:
                instruction = validate(body)
            except InstructionError as exc:
                error = f"invalid instruction: {exc}"
        if error is not None:
            steps.append(Step(seq, input_result, status, latency, body, "fallback", True, error))
            break
        steps.append(Step(seq, input_result, status, latency, instruction,
                          instruction["action"], False, None))
        if instruction["action"] in FINAL:
            return steps
        input_result = digits(instruction) if instruction["action"] == "collect" else "ok"
    else:
        steps.append(Step(settings.max_steps + 1, input_result, None, None, None, "fallback",
                          True, f"no final instruction after {settings.max_steps} steps"))
    for instruction in settings.fallback:
        steps.append(Step(len(steps) + 1, "", None, None, instruction, instruction["action"],
                          True, None))
    return steps


def record(conn: psycopg.Connection, attempt_id: int, requested_at: datetime,
           steps: list[Step]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO icp_steps (attempt_id, seq, requested_at, input_result, http_status,"
            " latency_ms, response, action, fallback, error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(attempt_id, s.seq, requested_at, s.input_result, s.http_status, s.latency_ms,
              json.dumps(s.response) if s.response is not None else None, s.action, s.fallback,
              s.error) for s in steps])


def routed_to(steps: list[Step]) -> str:
    """Where the call ended: ``queue:inbound``, ``number:+7…``, ``operator:12`` or ``hangup``."""
    last = steps[-1].response or {}
    for key in ("queue", "number", "operator"):
        if key in last:
            return f"{key}:{last[key]}"
    return "hangup"
