"""Dialer benchmarks: batcher tick, engine throughput, idle minutes with a due callback.

    .venvs/core/bin/python bench/bench_dialer.py [--dsn-base DSN] [--day-operators N] [--quick]

Without ``--dsn-base`` a private PostgreSQL is started with ``contour up postgres`` in a temp
state folder (as the tests do) and stopped at the end. Each part runs in its own fresh database.

1. Batcher tick: 1,000,000 leads, 100,000 of them in one campaign, 10,000 of those dialable now
   (the other 900,000 in two more active campaigns, none due): wall time of the one selection
   query plus building the hopper (median of 5), and peak Python memory of a tick (tracemalloc)
   plus the process's resident-set growth.
2. Throughput: 200 operators on three predictive/progressive campaigns, driven as fast as the
   machine allows: simulated call attempts per wall second, simulated seconds per wall second.
3. A simulated day with callbacks (10 % of connected calls agree one): operator minutes spent
   free while a callback of theirs was due (target 0), and the callbacks' outcomes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contour.config import Config  # noqa: E402
from dialer_core.dialer.db import connect, migrate_dialer  # noqa: E402
from dialer_core.dialer.engine import Engine, Workforce, run_simulation  # noqa: E402
from dialer_core.dialer.hopper import Hopper  # noqa: E402
from dialer_core.dialer.seed import CampaignSpec, SeedSpec, demo_spec, seed  # noqa: E402
from dialer_core.dialer.telephony import Telephony  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 09:00 UTC: every seeded zone is in its window


@contextmanager
def private_postgres() -> Iterator[Callable[[str], str]]:
    from tests.conftest import run_contour, stack_env

    root = Path(tempfile.mkdtemp(prefix="contour-bench-"))
    env = stack_env(root / "state")
    try:
        run_contour(env, "up", "postgres", timeout=900)
        config = Config.from_env(env)
        yield config.pg_dsn
    finally:
        run_contour(env, "down", check=False, timeout=300)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_db(dsn_for: Callable[[str], str], name: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn_for("postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    migrate_dialer(dsn_for(name))
    try:
        with connect(dsn_for(name)) as conn:
            yield conn
    finally:
        with psycopg.connect(dsn_for("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def bench_tick(dsn_for: Callable[[str], str], total: int, one: int, dialable: int) -> None:
    with fresh_db(dsn_for, "dialer_bench_tick") as conn:
        rest = total - one
        spec = SeedSpec(operators=200, callback_share=0.0, campaigns=[
            CampaignSpec("measured", "predictive", one, due_share=dialable / one),
            CampaignSpec("other A", "predictive", rest // 2, due_share=0.0),
            CampaignSpec("other B", "progressive", rest - rest // 2, due_share=0.0)])
        started = time.perf_counter()
        seed(conn, spec, NOW)
        print(f"seed: {total:,} leads by COPY in {time.perf_counter() - started:.1f} s")
        conn.execute("VACUUM ANALYZE leads")
        hopper = Hopper()
        process = psutil.Process()
        rss_before = process.memory_info().rss
        times = []
        peak = 0
        for _ in range(5):
            tracemalloc.start()
            started = time.perf_counter()
            depths = hopper.tick(conn, NOW)
            times.append(time.perf_counter() - started)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        rss_growth = process.memory_info().rss - rss_before
        print(f"batcher tick: {total:,} leads, {one:,} in one campaign, selected "
              f"{sum(depths.values()):,} dialable: median {statistics.median(times) * 1000:.0f} ms"
              f" (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); peak Python memory"
              f" {peak / 2**20:.1f} MB; process RSS growth {rss_growth / 2**20:.1f} MB")


def bench_throughput(dsn_for: Callable[[str], str], minutes: int) -> None:
    with fresh_db(dsn_for, "dialer_bench_run") as conn:
        seed(conn, demo_spec(operators=200, campaigns=3, leads=100_000), NOW)
        engine = Engine(conn, Telephony(7), Workforce(callback_share=0.05))
        engine.tick(NOW)
        for op in list(engine.operators):
            engine.operator_action(op, "login", NOW)
        started = time.perf_counter()
        run_simulation(engine, NOW, minutes * 60)
        wall = time.perf_counter() - started
        m = engine.metrics
        print(f"throughput: 200 operators, {minutes} simulated min in {wall:.1f} s wall:"
              f" {m.originated / wall:.0f} attempts/s ({m.originated:,} attempts,"
              f" {m.connected:,} connected, {m.abandoned} abandoned);"
              f" {minutes * 60 / wall:.0f} simulated s per wall s;"
              f" {engine.writer.statements / wall:.0f} writes/s")


def bench_day(dsn_for: Callable[[str], str], operators: int, hours: int) -> None:
    with fresh_db(dsn_for, "dialer_bench_day") as conn:
        start = NOW.replace(hour=4)  # 07:00 in Moscow, before the windows open
        seed(conn, demo_spec(operators=operators, campaigns=3, leads=operators * 400), start)
        engine = Engine(conn, Telephony(11), Workforce(callback_share=0.10, pause_share=0.04))
        for op in list(engine.operators) or [r[0] for r in conn.execute(
                "SELECT operator_id FROM operators")]:
            engine.operator_action(op, "login", start)
        started = time.perf_counter()
        run_simulation(engine, start, hours * 3600)
        engine.writer.flush()
        wall = time.perf_counter() - started
        outcomes = dict(conn.execute("SELECT status, count(*) FROM callbacks GROUP BY 1"))
        reassigned = conn.execute("SELECT count(*) FROM callbacks WHERE reassigned_at IS NOT"
                                  " NULL").fetchone()
        rates = conn.execute(
            "SELECT campaign_id, round(100.0 * count(*) FILTER (WHERE outcome = 'abandoned')"
            " / nullif(count(*) FILTER (WHERE answered_at IS NOT NULL), 0), 2)"
            " FROM call_attempts WHERE direction = 'outbound' GROUP BY 1 ORDER BY 1").fetchall()
        print(f"simulated day: {operators} operators, {hours} h in {wall:.0f} s wall;"
              f" idle with a due callback: {engine.metrics.idle_due_callback_seconds / 60:.1f}"
              f" operator-minutes; callbacks created {engine.metrics.callbacks_created},"
              f" by status {outcomes}, reassigned {reassigned[0] if reassigned else 0};"
              f" abandoned % per campaign {rates}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn-base", help="a server DSN; databases dialer_bench_* are created")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--day-operators", type=int, default=50)
    args = parser.parse_args()
    sizes = (100_000, 10_000, 1_000) if args.quick else (1_000_000, 100_000, 10_000)

    def run(dsn_for: Callable[[str], str]) -> None:
        bench_tick(dsn_for, *sizes)
        bench_throughput(dsn_for, 2 if args.quick else 15)
        bench_day(dsn_for, args.day_operators, 1 if args.quick else 24)

    if args.dsn_base:
        base = args.dsn_base.rsplit("/", 1)[0]
        run(lambda db: f"{base}/{db}")
    else:
        with private_postgres() as dsn_for:
            run(dsn_for)
    return 0


if __name__ == "__main__":
    sys.exit(main())
