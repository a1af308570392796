"""``contour chaos``: kill -9 random components of a pipeline under load, then prove that
nothing was lost and nothing doubled.

On a stack of its own (a fresh state folder and free ports, so a running demo is untouched):
PostgreSQL, the broker, ClickHouse, the CDC relays, the loader, the exporter, Airflow (its
``contour_realtime`` DAG refreshing the marts continuously) and the dbt worker, with the
dialer and the CRM writing their databases. ``contour supervise`` restarts what dies. Every
few seconds one component's process is killed with SIGKILL (each component in turn, in a
shuffled order; for Airflow its scheduler, for dbt the worker, mostly in the middle of a
run); its recovery time runs from the kill until the stack is healthy again and a CDC
heartbeat committed after the kill has reached ClickHouse, PostgreSQL staging and the marts
(``marts.pipeline_heartbeats``). Afterwards the workload stops and, once the pipeline has
drained, every source table is compared with ClickHouse's current state and with staging:
row counts and primary keys (and the leads' attempt counters); then the marts: every daily
KPI of every day recomputed from the sources (``contour parity``) must equal the marts, and
no fact table may hold a key twice. Reported too: changes published twice (same key and
source LSN in ClickHouse history: the contract's removable duplicates), rows doubled in the
current state or staging (must be none) and dead letters (must be none). ``--no-marts``
leaves Airflow and dbt out (the data path up to staging only; faster).

Exit status 0 when every kill recovered and every comparison holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from contour import stack
from contour.config import PROJECT_ROOT, Config
from contour.services.base import ServiceStatus
from contour.stack import Stack

#: what gets killed: every process of the data path up to staging ...
PIPELINE = ("postgres", "kafka", "clickhouse", "cdc", "loader", "export")
#: ... and what builds the marts (Airflow: its scheduler; dbt: the worker that runs the models)
MARTS = ("airflow", "dbt")
#: the process of a component that is killed (default: any of them)
VICTIMS = {"airflow": "airflow-scheduler"}
SOURCES = ("dialer", "crm")
#: fact tables of the marts and their keys: a key twice is a duplicated change
FACTS = {"fct_call_attempts": "attempt_id", "fct_appeals": "appeal_id",
         "fct_tickets": "ticket_id", "fct_callbacks": "callback_id",
         "fct_operator_states": "log_id", "fct_icp_requests": "step_id"}


@dataclass
class Kill:
    number: int
    component: str
    process: str
    pid: int
    at: float
    recovery_s: float | None = None  # None: not recovered within the timeout


@dataclass
class Report:
    kills: list[Kill] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    republished_changes: int = 0
    doubled_rows: int = 0
    marts: dict[str, Any] = field(default_factory=dict)
    dead_letters: int = 0
    drained_s: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        recoveries = sorted(k.recovery_s for k in self.kills if k.recovery_s is not None)
        return {
            "passed": self.passed, "problems": self.problems,
            "kills": [asdict(k) for k in self.kills],
            "recovery_s": {"max": recoveries[-1] if recoveries else None,
                           "median": recoveries[len(recoveries) // 2] if recoveries else None},
            "drained_s": self.drained_s, "tables": self.tables,
            "republished_changes": self.republished_changes,
            "doubled_rows": self.doubled_rows, "dead_letters": self.dead_letters,
            "marts": self.marts,
        }


def private_env(state_dir: Path) -> dict[str, str]:
    """A stack of its own (state folder, free ports), with heartbeats every 2 s (finer
    recovery times)."""
    return stack.private_env(state_dir) | {"CONTOUR_CDC_HEARTBEAT_SECONDS": "2"}


class Chaos:
    def __init__(self, env: dict[str, str], progress: Callable[[str], None],
                 rng: random.Random, components: tuple[str, ...] = PIPELINE + MARTS) -> None:
        self.env = env
        self.components = components
        self.marts = set(MARTS) <= set(components)
        self.config = Config.from_env(env)
        self.progress = progress
        self.rng = rng
        self.workload: dict[str, subprocess.Popen[bytes]] = {}
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.logs = self.config.state_dir / "chaos"
        self.waiting = ""  # why the last recovery check failed
        self._restarted: dict[str, float] = {}

    # ------------------------------------------------------------------ processes
    def contour(self, *args: str, timeout: float = 900) -> str:
        result = subprocess.run([sys.executable, "-m", "contour", *args], env=self.env,
                                cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"contour {' '.join(args)} exited {result.returncode}: "
                               f"{(result.stderr or result.stdout).strip()[-2000:]}")
        return result.stdout

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        return subprocess.Popen([sys.executable, "-m", "contour", *args], env=self.env,
                                cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.progress(f"starting {', '.join(self.components)} in {self.config.state_dir}")
        self.contour("up", *self.components)
        self.contour("dialer", "seed", "--operators", "20", "--leads", "5000", "--campaigns",
                     "2", "--replace")
        self.supervisor = self._spawn("supervise", "supervise", "--interval", "1")
        self.keep_workload()

    def keep_workload(self) -> None:
        """Start the dialer and the CRM, again if one stopped (a killed PostgreSQL may take
        them down; they resume from their databases)."""
        commands = {"dialer": ("dialer", "run", "--speed", "120", "--no-crm-link"),
                    "crm": ("crm", "run", "--speed", "600", "--appeals-per-day", "40000")}
        for name, args in commands.items():
            proc = self.workload.get(name)
            if proc is None or proc.poll() is not None:
                if time.monotonic() - self._restarted.get(name, -1e9) < 10:
                    continue  # not more often than every 10 s (PostgreSQL may be down)
                if proc is not None:
                    self.progress(f"  workload {name} exited ({proc.returncode}); restarting")
                self._restarted[name] = time.monotonic()
                self.workload[name] = self._spawn(name, *args)

    def stop_workload(self) -> None:
        for proc in self.workload.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workload.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop(self) -> None:
        """Stop the workload, the supervisor and the stack (a second Ctrl-C cannot cut this
        short and leave services running)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.stop_workload()
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            self.supervisor.wait(timeout=60)
        subprocess.run([sys.executable, "-m", "contour", "down"], env=self.env,
                       cwd=PROJECT_ROOT, capture_output=True, timeout=600)

    def status(self) -> dict[str, ServiceStatus]:
        return {s.name: s for s in Stack(self.config).status()}

    # ------------------------------------------------------------------ kills
    def kill(self, number: int, component: str) -> Kill:
        processes = [p for p in self.status()[component].processes if p.running and p.pid
                     and p.name == VICTIMS.get(component, p.name)]
        if not processes:
            raise RuntimeError(f"{component} has no running process to kill")
        victim = self.rng.choice(processes)
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        return Kill(number, component, victim.name, victim.pid, time.time())

    def recovered(self, since: float) -> bool:
        """Healthy, and a heartbeat committed after ``since`` in ClickHouse and staging
        (``self.waiting`` says what is missing otherwise)."""
        statuses = self.status()
        unhealthy = [c for c in self.components if not statuses[c].healthy]
        if unhealthy:
            self.waiting = f"not healthy: {', '.join(unhealthy)}"
            return False
        try:
            from ingestion.landing.loader import clickhouse_client

            client = clickhouse_client(self.config)
            with psycopg.connect(self.config.pg_dsn("warehouse"), connect_timeout=5) as conn:
                for source in SOURCES:
                    table = f"{source}__contour_cdc__heartbeat"
                    landed = client.query(f"SELECT toUnixTimestamp64Milli(max(_source_ts)) "
                                          f"/ 1000 FROM raw.{table}").result_rows[0][0]
                    staged = conn.execute(f"SELECT extract(epoch FROM max(ts)) FROM "
                                          f"staging.{table}").fetchone()
                    if not landed or float(landed) <= since:
                        self.waiting = f"no {source} heartbeat in ClickHouse since the kill"
                        return False
                    if not staged or not staged[0] or float(staged[0]) <= since:
                        self.waiting = f"no {source} heartbeat in staging since the kill"
                        return False
                    if self.marts and not self._in_marts(conn, source, since):
                        self.waiting = f"no {source} heartbeat in the marts since the kill"
                        return False
        except Exception as exc:  # noqa: BLE001 - a service still coming back
            self.waiting = f"{type(exc).__name__}: {str(exc)[:200]}"
            return False
        return True

    @staticmethod
    def _in_marts(conn: psycopg.Connection[Any], source: str, since: float) -> bool:
        row = conn.execute("SELECT extract(epoch FROM max(ts)) FROM marts.pipeline_heartbeats "
                           "WHERE source = %s", (source,)).fetchone()
        return bool(row and row[0] and float(row[0]) > since)

    def wait_recovered(self, kill: Kill, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.keep_workload()
            if self.recovered(kill.at):
                kill.recovery_s = round(time.time() - kill.at, 1)
                return
            time.sleep(1)

    # ------------------------------------------------------------------ checks
    def compare(self, report: Report, timeout: float) -> None:
        """Wait until every source table's keys are in ClickHouse and staging, then record
        the differences that remain."""
        started = time.monotonic()
        while True:
            tables, problems = self._differences()
            if not problems:
                report.drained_s = round(time.monotonic() - started, 1)
                break
            if time.monotonic() - started > timeout:
                report.problems += problems
                break
            time.sleep(5)
        report.tables = tables
        self._duplicates(report)
        if self.marts and not report.problems:
            self.compare_marts(report, timeout)

    def compare_marts(self, report: Report, timeout: float) -> None:
        """Once staging equals the sources: wait until every day's KPIs recomputed from the
        sources equal the marts (realtime runs catch up) and count keys held twice."""
        from contour.parity import Checker

        checker = Checker(self.config)
        started = time.monotonic()
        while True:
            try:
                results = checker.check(checker.newest_days(10_000))
                differences = [d for r in results for d in r.differences]
            except Exception as exc:  # noqa: BLE001 - marts not built yet
                results, differences = [], [f"{type(exc).__name__}: {exc}"]
            if not differences or time.monotonic() - started > timeout:
                break
            time.sleep(10)
        with psycopg.connect(self.config.pg_dsn("warehouse")) as conn:
            doubled = {t: conn.execute(f"SELECT count(*) - count(DISTINCT {k}) FROM marts.{t}"
                                       ).fetchone()[0] for t, k in FACTS.items()}
        report.marts = {
            "caught_up_s": round(time.monotonic() - started, 1),
            "kpi_rows_compared": sum(r.rows for r in results),
            "days": len({r.day for r in results}),
            "differences": [str(d) for d in differences[:50]],
            "doubled_fact_rows": doubled,
        }
        if differences:
            report.problems.append(f"{len(differences)} KPI differences between the sources "
                                   f"and the marts, e.g. {differences[0]}")
        if any(doubled.values()):
            report.problems.append(f"keys held twice in the marts' facts: {doubled}")

    def _differences(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        from ingestion.landing.loader import clickhouse_client

        client = clickhouse_client(self.config)
        tables: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        with psycopg.connect(self.config.pg_dsn("warehouse")) as warehouse:
            for source in SOURCES:
                with psycopg.connect(self.config.pg_dsn(source)) as conn:
                    for table, key, plain in _source_tables(conn):
                        name = f"{source}__{table}"
                        cols = ", ".join(f'"{k}"' for k in key)
                        want = {tuple(map(str, r)) for r in conn.execute(
                            f'SELECT {cols} FROM public."{table}"')}
                        rows: list[Any] = []
                        if client.command(f"EXISTS TABLE current.{name}"):
                            rows = client.query(f"SELECT {', '.join(key)} FROM "
                                                f"current.{name}").result_rows
                        exists = warehouse.execute(
                            "SELECT to_regclass(%s) IS NOT NULL",
                            (f'staging."{name}"',)).fetchone()
                        staged = {tuple(map(str, r)) for r in warehouse.execute(
                            f'SELECT {cols} FROM staging."{name}"')} \
                            if exists and exists[0] else set()
                        tables[name] = {"source": len(want), "clickhouse": len(rows),
                                        "staging": len(staged)}
                        compare = [("staging", staged)]
                        if plain:
                            compare.append(("ClickHouse", {tuple(map(str, r)) for r in rows}))
                        elif len(rows) != len(want):  # dates/times are encoded there: count
                            problems.append(f"{name}: {len(rows)} rows in ClickHouse, "
                                            f"{len(want)} in the source")
                        for where, got in compare:
                            if got != want:
                                problems.append(
                                    f"{name}: {len(want - got)} keys missing and "
                                    f"{len(got - want)} extra in {where}")
            with psycopg.connect(self.config.pg_dsn("dialer")) as conn:
                want_attempts = set(conn.execute("SELECT lead_id::text, attempts::text "
                                                 "FROM leads"))
            got_attempts = {tuple(map(str, r)) for r in client.query(
                "SELECT lead_id, attempts FROM current.dialer__leads").result_rows}
            if got_attempts != want_attempts:
                problems.append(f"dialer__leads: {len(want_attempts - got_attempts)} leads "
                                "with another attempt count in ClickHouse")
        return tables, problems

    def _duplicates(self, report: Report) -> None:
        from ingestion.landing.loader import clickhouse_client

        client = clickhouse_client(self.config)
        for name, key in client.query(
                "SELECT name, sorting_key FROM system.tables WHERE database = 'raw' AND "
                "NOT startsWith(name, '_')").result_rows:
            report.republished_changes += int(client.query(
                f"SELECT count() FROM (SELECT {key}, _lsn FROM history.{name} GROUP BY "
                f"{key}, _lsn HAVING count() > 1)").result_rows[0][0])
            report.doubled_rows += int(client.query(
                f"SELECT count() - uniqExact({key}) FROM current.{name}").result_rows[0][0])
        report.dead_letters = int(client.query(
            "SELECT count() FROM raw._dead_letters").result_rows[0][0])
        if report.doubled_rows:
            report.problems.append(f"{report.doubled_rows} rows doubled in ClickHouse's "
                                   "current state")
        if report.dead_letters:
            report.problems.append(f"{report.dead_letters} dead letters")


#: key types that read the same from PostgreSQL and from ClickHouse's raw tables (dates and
#: times are Debezium-encoded numbers there: those tables are compared by count)
PLAIN_KEY_TYPES = ("integer", "bigint", "smallint", "text", "character varying", "uuid")


def _source_tables(conn: psycopg.Connection) -> list[tuple[str, list[str], bool]]:
    """Captured tables of a source: name, primary-key columns, whether the key is plain."""
    rows = conn.execute(
        "SELECT c.relname, array_agg(a.attname ORDER BY array_position(i.indkey::int2[], "
        "a.attnum)), bool_and(split_part(format_type(a.atttypid, a.atttypmod), '(', 1) = "
        "ANY(%s)) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n "
        "ON n.oid = c.relnamespace AND n.nspname = 'public' JOIN pg_attribute a ON "
        "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND "
        "c.relname <> 'schema_migrations' GROUP BY c.relname ORDER BY 1",
        (list(PLAIN_KEY_TYPES),)).fetchall()
    return [(r[0], list(r[1]), bool(r[2])) for r in rows]


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> Report:
    root = Path(args.state_dir) if args.state_dir else Path(
        tempfile.mkdtemp(prefix="contour-chaos-"))
    rng = random.Random(args.seed)
    chaos = Chaos(private_env(root / "state"), progress, rng,
                  PIPELINE if args.no_marts else PIPELINE + MARTS)
    report = Report()
    try:
        chaos.start()
        order: list[str] = []
        while len(order) < args.kills:
            order += rng.sample(chaos.components, len(chaos.components))
        progress(f"warming up {args.gap:.0f}s under load")
        time.sleep(args.gap)
        for number, component in enumerate(order[:args.kills], start=1):
            time.sleep(rng.uniform(args.gap / 2, args.gap))
            chaos.keep_workload()
            kill = chaos.kill(number, component)
            chaos.wait_recovered(kill, args.recovery_timeout)
            report.kills.append(kill)
            took = f"{kill.recovery_s:.1f}s" if kill.recovery_s is not None else \
                f"NOT recovered ({chaos.waiting})"
            progress(f"kill {number}/{args.kills}: {component} ({kill.process}, pid "
                     f"{kill.pid}) → recovered in {took}")
            if kill.recovery_s is None:
                report.problems.append(f"kill {number} ({component}) did not recover in "
                                       f"{args.recovery_timeout:.0f}s: {chaos.waiting}")
        progress("stopping the workload; waiting for the pipeline to drain")
        chaos.stop_workload()
        chaos.compare(report, args.drain_timeout)
    finally:
        chaos.stop()
        if args.keep:
            progress(f"kept the state folder (logs in {root / 'state' / 'logs'}): {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return report


def print_report(report: Report) -> None:
    print(f"{'#':>3}  {'component':<11} {'process':<22} {'recovery':>9}")
    for k in report.kills:
        took = f"{k.recovery_s:.1f}s" if k.recovery_s is not None else "—"
        print(f"{k.number:>3}  {k.component:<11} {k.process:<22} {took:>9}")
    summary = report.as_dict()
    print(f"recovery: median {summary['recovery_s']['median']}s, max "
          f"{summary['recovery_s']['max']}s; drained {report.drained_s}s after the load")
    compared = sum(t["source"] for t in report.tables.values())
    print(f"{len(report.tables)} tables, {compared:,} source rows compared with ClickHouse and "
          f"staging; doubled rows {report.doubled_rows}; dead letters {report.dead_letters}; "
          f"changes published twice (removable by source.lsn and key) "
          f"{report.republished_changes}")
    if report.marts:
        print(f"marts: {report.marts['kpi_rows_compared']:,} daily KPI rows of "
              f"{report.marts['days']} days recomputed from the sources, "
              f"{len(report.marts['differences'])} differences, caught up "
              f"{report.marts['caught_up_s']}s after staging; keys held twice in facts: "
              f"{sum(report.marts['doubled_fact_rows'].values())}")
    print("PASSED" if report.passed else "FAILED:\n  " + "\n  ".join(report.problems))


def cmd_chaos(_config: Config, args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    report = run(args, progress)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report)
    return 0 if report.passed else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "chaos", help="kill -9 random pipeline components under load; check nothing is lost",
        description="On a private stack (its own state folder and ports): run the dialer and "
                    "CRM workload through CDC, the broker, the loader and the exporter into "
                    "ClickHouse and staging, and Airflow and dbt into the marts; kill "
                    "-9 one component at a time (PostgreSQL, broker, ClickHouse, relay, "
                    "loader, exporter, Airflow scheduler, dbt worker, in turn) while `contour "
                    "supervise` restarts them; report "
                    "each recovery time; then compare every source table with ClickHouse and "
                    "staging, and every day's KPIs (recomputed from the sources) with the "
                    "marts. Exit 1 on any loss, doubled row, KPI difference or unrecovered "
                    "kill.")
    p.add_argument("--kills", type=int, default=20, help="kills to make (default 20)")
    p.add_argument("--gap", type=float, default=10.0,
                   help="seconds of load before each kill, at most (default 10)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--recovery-timeout", type=float, default=240.0,
                   help="seconds a kill may take to recover (default 240)")
    p.add_argument("--drain-timeout", type=float, default=300.0,
                   help="seconds for the pipeline to catch up after the load (default 300)")
    p.add_argument("--state-dir", help="state folder to use (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the state folder and its logs")
    p.add_argument("--no-marts", action="store_true",
                   help="leave Airflow and dbt out: the data path up to staging only")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_chaos)
