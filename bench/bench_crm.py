"""Benchmark: sustained CRM writes per second and database size per million appeals.

    .venvs/core/bin/python bench/bench_crm.py [--hours 1] [--appeals-per-day 200000] [--workers 1]

Starts a private PostgreSQL with the real `contour up postgres` (private state folder, free
port), migrates a fresh `crm` database, loads the default reference data (16,000 stores, 840
staff), then runs the workload simulation as fast as it can for --hours of simulated time per
worker (each worker a process with its own seed and connection). Every write goes through the
CRM functions, one transaction each, exactly as in `contour crm run`.

Prints appeals/s, ticket changes/s, all write transactions/s, and the size of the database
(tables + indexes, after VACUUM ANALYZE) per million appeals. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from contour.config import Config  # noqa: E402
from dialer_core import crm  # noqa: E402
from dialer_core.crm import reference  # noqa: E402
from dialer_core.crm.simulation import Simulation  # noqa: E402
from dialer_core.crm.workload import WorkloadConfig  # noqa: E402
from tests.conftest import stack_env  # noqa: E402

START = datetime(2026, 11, 23, 6, tzinfo=UTC)  # a Monday, 09:00 Moscow: peak traffic


def worker(dsn: str, seed: int, hours: float, per_day: int) -> dict[str, float]:
    workload = WorkloadConfig(appeals_per_day=per_day, seed=seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sim = Simulation(conn, reference.build(workload.scale), workload)
        started = time.monotonic()
        steps = max(1, int(hours * 4))
        for step in range(1, steps + 1):  # 15-minute steps, as a clock would drive it
            sim.advance(START, START + timedelta(hours=hours * step / steps))
        elapsed = time.monotonic() - started
    return {**asdict(sim.stats), "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0,
                        help="simulated hours per worker, from Monday 09:00 Moscow (default 1)")
    parser.add_argument("--appeals-per-day", type=int, default=200_000,
                        help="workload volume (default 200000, 5x the product default)")
    parser.add_argument("--workers", type=int, default=1, help="parallel writer processes")
    args = parser.parse_args()
    # SIGTERM (e.g. `timeout`) must still run the `finally` that stops the private PostgreSQL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="contour-bench-crm-", dir="/tmp") as tmp:
        env = stack_env(Path(tmp) / "state")
        run = [sys.executable, "-m", "contour"]
        up = subprocess.run([*run, "up", "postgres"], env=env, cwd=ROOT, capture_output=True,
                            text=True)
        if up.returncode:
            sys.exit(f"contour up postgres failed:\n{up.stdout}\n{up.stderr}")
        try:
            dsn = Config.from_env(env).pg_dsn(crm.DATABASE)
            crm.migrate(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                reference.load(conn, reference.build())
                base = _sizes(conn)
            started = time.monotonic()
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                results = pool.starmap(worker, [(dsn, seed, args.hours, args.appeals_per_day)
                                                for seed in range(1, args.workers + 1)])
            wall = time.monotonic() - started
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                grown = {t: n - base.get(t, 0) for t, n in _sizes(conn).items()}
                row = conn.execute("SELECT count(*) FROM appeals").fetchone()
                appeals = int(row[0]) if row else 0
        finally:
            subprocess.run([*run, "down"], env=env, cwd=ROOT, capture_output=True)

    total = {k: sum(r[k] for r in results) for k in results[0] if k != "seconds"}
    writes = total["appeals"] + total["answers"] + total["tickets"] + total["ticket_changes"] \
        + total["reminders"]
    print(f"crm writes, {args.workers} worker(s), {args.hours:g} simulated h each at "
          f"{args.appeals_per_day}/day, {wall:.1f} s wall")
    print(f"  appeals                 {total['appeals']:>9}  {total['appeals'] / wall:8.0f} /s")
    print(f"  tickets created         {total['tickets']:>9}  {total['tickets'] / wall:8.0f} /s")
    print(f"  ticket changes          {total['ticket_changes']:>9}  "
          f"{total['ticket_changes'] / wall:8.0f} /s")
    print(f"  answers                 {total['answers']:>9}  {total['answers'] / wall:8.0f} /s")
    print(f"  all write transactions  {writes:>9}  {writes / wall:8.0f} /s")
    print(f"  linked repeats {total['linked']}, reminders {total['reminders']}, "
          f"rejected {total['rejected']}")
    size = sum(grown.values())
    print(f"database growth {size / 2**20:.1f} MiB for {appeals} appeals = "
          f"{size / max(appeals, 1) * 1e6 / 2**30:.2f} GiB per million appeals "
          "(with their customers, contacts, tickets, history, answers); per table:")
    for table, grew in sorted(grown.items(), key=lambda kv: -kv[1]):
        if grew > 0.01 * size:  # the rest is free-space/visibility maps of tiny tables
            print(f"  {table:<22} {grew / max(appeals, 1) * 1e6 / 2**20:8.0f} MiB per million")


def _sizes(conn: psycopg.Connection) -> dict[str, int]:  # type: ignore[type-arg]
    """Bytes per table (heap + indexes + TOAST) of the CRM schema."""
    return dict(conn.execute("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                             "JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = 'public' AND c.relkind = 'r'").fetchall())


if __name__ == "__main__":
    main()
