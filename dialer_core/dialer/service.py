"""The dialer service: an asyncio loop driving the engine from the (simulated) clock.

Every simulated second it runs :meth:`Engine.step`; when the minute changes, the batcher tick
first. Database work runs in a worker thread so the event loop stays free for inbound calls and
the stop signal; one lock serialises the engine between the loop and the workstation API.
Inbound calls arrive at ``inbound_per_minute`` on average and go through ICP on their own
connection, so a slow endpoint (up to its timeout) never delays outbound dialing.
With ``crm_link`` on, each second's calls connected to an operator go to the CRM as appeals
through a worker thread on its own connection (:mod:`dialer_core.dialer.crm_link`): the loop
only enqueues them, and a CRM that is down is logged once and never stops the dialer.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from contour.config import Config
from dialer_core.clock import Clock
from dialer_core.dialer.crm_link import CrmLink
from dialer_core.dialer.db import connect, migrate_dialer
from dialer_core.dialer.engine import Engine, Metrics, Workforce
from dialer_core.dialer.icp import IcpSettings
from dialer_core.dialer.inbound import handle_call
from dialer_core.dialer.recovery import recover
from dialer_core.dialer.telephony import Telephony


@dataclass
class ServiceOptions:
    seed: int = 0
    inbound_per_minute: float = 3.0
    icp: IcpSettings | None = None     # None: the reference endpoint, started in-process
    workforce: Workforce | None = field(default_factory=Workforce)
    login_all: bool = True             # simulated operators log in at start
    api_port: int | None = None        # workstation API on loopback (0: any free port)
    # record calls connected to an operator as CRM appeals (database ``crm``); `dialer run`
    # turns it on, embedded uses (tests, benchmarks) opt in
    crm_link: bool = False


@dataclass
class Handle:
    """What a running service exposes (tests and the CLI read it)."""

    engine: Engine
    lock: threading.Lock
    api_url: str | None = None
    inbound: list[tuple[int, str]] = field(default_factory=list)


async def run(config: Config, clock: Clock, stop_event: asyncio.Event,
              options: ServiceOptions | None = None, log: Callable[[str], None] = print,
              on_start: Callable[[Handle], None] | None = None) -> Metrics:
    options = options or ServiceOptions()
    dsn = config.pg_dsn("dialer")
    await asyncio.to_thread(migrate_dialer, dsn, log)
    conn = await asyncio.to_thread(connect, dsn)
    inbound_conn = await asyncio.to_thread(connect, dsn)
    engine = Engine(conn, Telephony(options.seed), options.workforce)
    handle = Handle(engine, threading.Lock())
    servers = []
    icp = options.icp
    if icp is None:
        from dialer_core.dialer import icp_reference

        server, url = icp_reference.serve()
        servers.append(server)
        icp = IcpSettings(url)
    if options.api_port is not None:
        from dialer_core.dialer import workstation

        api, handle.api_url = workstation.serve(engine, handle.lock, clock, options.api_port)
        servers.append(api)
    link: CrmLink | None = None
    if options.crm_link:
        link = CrmLink(config.pg_dsn("crm"), log)
        engine.handled = []
        link.start()
    rng = random.Random(options.seed + 1)
    inbound_lock = threading.Lock()
    inbound_tasks: set[asyncio.Task[None]] = set()

    def start(now: datetime) -> None:
        with handle.lock:
            recovered = recover(conn, now)
            if any(recovered.values()):
                log(f"dialer: recovered after an unclean stop: {recovered}")
            engine.tick(now)
            if options.login_all:
                for op in list(engine.operators.values()):
                    if op.status == "offline":
                        engine.operator_action(op.operator_id, "login", now)

    def second(now: datetime, new_minute: bool) -> None:
        with handle.lock:
            if new_minute:
                engine.tick(now)
                engine.run_workforce(now)
            engine.step(now)
            drain()

    def drain() -> None:
        # caller holds handle.lock: hand the calls connected so far to the CRM worker
        if link is not None and engine.handled:
            link.submit(engine.handled)
            engine.handled = []

    def offer(attempt_id: int, numa: str, arrived: datetime) -> None:
        with handle.lock:  # the caller queues from now: the ICP dialogue took its own time
            engine.offer_inbound(attempt_id, clock.now().replace(microsecond=0), numa, arrived)

    async def inbound_call(now: datetime) -> None:
        # a courier (+7900555…) or a Moscow/Novosibirsk landline: 11-digit numbers
        prefix = rng.choice(["+7900555", "+7495", "+7383"])
        numa = prefix + str(rng.randint(10**6, 10**7))[-(12 - len(prefix)):]
        attempt_id, target = await asyncio.to_thread(
            handle_call, inbound_conn, inbound_lock, icp, numa, "+78001000000", now, rng)
        if target.startswith("queue:"):
            await asyncio.to_thread(offer, attempt_id, numa, now)
        handle.inbound.append((attempt_id, target))

    now = clock.now().replace(microsecond=0)
    await asyncio.to_thread(start, now)
    log(f"dialer: started at {now.isoformat()} with {len(engine.operators)} operators")
    if on_start:
        on_start(handle)
    last_minute = now.replace(second=0)
    try:
        while not stop_event.is_set():
            now = clock.now().replace(microsecond=0)
            minute = now.replace(second=0)
            new_minute = minute != last_minute
            await asyncio.to_thread(second, now, new_minute)
            if new_minute:
                last_minute = minute
                for _ in range(_poisson(rng, options.inbound_per_minute)):
                    task = asyncio.create_task(inbound_call(now))
                    inbound_tasks.add(task)
                    task.add_done_callback(inbound_tasks.discard)
            await clock.sleep(1)
        if inbound_tasks:
            await asyncio.gather(*inbound_tasks, return_exceptions=True)
    finally:
        for server in servers:
            server.shutdown()
        with handle.lock:
            engine.writer.flush()
            drain()
        conn.close()
        inbound_conn.close()
        if link is not None:
            stats = await asyncio.to_thread(link.close)
            log(f"dialer: CRM link recorded {stats.recorded} calls as appeals"
                f" (skipped: {stats.invalid_phone} not a phone, {stats.rejected} refused,"
                f" {stats.dropped} while the CRM was down)")
    log(f"dialer: stopped; originated {engine.metrics.originated},"
        f" abandoned {engine.metrics.abandoned}")
    return engine.metrics


def _poisson(rng: random.Random, mean: float) -> int:
    """Arrivals in one minute (Knuth; means here are small)."""
    if mean <= 0:
        return 0
    limit, k, p = pow(2.718281828459045, -mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
