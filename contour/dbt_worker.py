"""The dbt worker: dbt loaded once, serving the realtime cycle's runs (``contour up dbt``).

A ``dbt run`` process spends 10–12 s of a realtime cycle under the demo load before it builds
anything: importing dbt and loading the project's manifest. The worker is a long-running
process in dbt's virtual environment that pays this once: it parses the project at start,
keeps the manifest in memory and runs each request with ``dbtRunner(manifest=...)``. It parses
again when the project's files change (the fingerprint of :func:`contour.dbt.project_fingerprint`),
so a deploy needs no restart.

Protocol, on a Unix socket in the state folder (owner-only): the client sends one JSON line
``{"args": [...]}``; the worker answers with JSON lines ``{"line": "..."}`` (dbt's log lines
as the ``dbt`` command prints them) and a last ``{"returncode": N}``. Requests run one at a
time, each under the warehouse's marts lock (:func:`contour.dbt.marts_lock`), which the worker
holds itself: a client that dies mid-run (a killed Airflow task) leaves its run to finish, and
no other writing dbt run starts meanwhile. Only the realtime lane's ``run``/``build`` without
``--vars`` but runtime ones (:data:`RUNTIME_VARS`; other vars may change what the manifest
holds) are served; anything else is refused with
returncode ``None`` and the caller runs a dbt process instead, as it does when no worker runs.

``run_on_worker`` is the client; the rest runs in the worker (``python -m contour.dbt_worker``),
which imports only the standard library, dbt, :mod:`contour.dbt` and
:mod:`ingestion.status`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contour.config import Config
from contour.dbt import (
    PASSWORD_VAR,
    WRITING_COMMANDS,
    dbt_env,
    marts_lock,
    project_fingerprint,
    state_dir,
    target_path,
)
from contour.errors import ContourError
from ingestion.status import write_status

Progress = Callable[[str], None]
#: a run that says nothing for this long is taken as hung (dbt logs every model's start/end)
SILENCE_LIMIT_S = 1800.0
STATUS_EVERY_S = 1.0
#: seconds a client has to send its request, and to take each line of the answer
CLIENT_TIMEOUT_S = 10.0
#: restart (the supervisor starts a fresh worker) beyond this resident size: in-process dbt
#: runs keep some state per invocation
MAX_RSS_BYTES = 1_500_000_000


class WorkerError(ContourError):
    """The dbt worker accepted a run and then failed or went silent."""


def socket_path(config: Config) -> Path:
    """The worker's socket: in the state folder, or (when that path is longer than a Unix
    socket address allows) in the temporary folder under a name made from it."""
    path = state_dir(config) / "worker.sock"
    if len(os.fsencode(path)) <= 100:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"contour-dbt-{digest}.sock"


def status_path(config: Config) -> Path:
    return state_dir(config) / "worker.status.json"


#: vars read only while models and tests run, never while parsing: the cached manifest
#: stays right when they are given
RUNTIME_VARS = frozenset({"test_window"})
#: what the worker's dbt keeps of the environment besides DBT_* and the profile's password:
#: dbt reads the whole environment for every event it logs (to scrub secrets from it), ~30
#: events per node, so a long inherited environment is a cost on every model and test
KEPT_ENVIRONMENT = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                              "PYTHONPATH", "PYTHONUNBUFFERED"})


def worker_environment(config: Config) -> dict[str, str]:
    """dbt's environment (:func:`contour.dbt.dbt_env`) without what dbt does not read, and
    its log file at level info unless ``DBT_LOG_LEVEL_FILE`` says otherwise (at debug, the
    default, dbt writes every statement of every node to ``logs/dbt.log``: set it to debug
    to see them)."""
    kept = {k: v for k, v in dbt_env(config).items()
            if k in KEPT_ENVIRONMENT or k.startswith("DBT_") or k == PASSWORD_VAR}
    return {"DBT_LOG_LEVEL_FILE": "info", **kept}


def keep_connections_open() -> None:
    """Make dbt reuse each thread's PostgreSQL connection from node to node. dbt closes it
    after every node (``BaseConnectionManager.release``) and opens a new one for the next:
    a new server process, a password exchange and cold catalog caches for each of the
    cycle's ~260 models and tests. Here release only rolls back what a node left open; the
    connections close when the invocation ends (``cleanup_all``), and a connection that
    cannot roll back is dropped, so the next node opens a fresh one."""
    from dbt.adapters.base.connections import BaseConnectionManager

    def release(self: Any) -> None:
        with self.lock:
            conn = self.get_if_exists()
        if conn is None:
            return
        if conn.state == "open" and getattr(conn.handle, "closed", 0):
            self.clear_thread_connection()  # lost (a server restart): the next node reconnects
            return
        try:
            if conn.state == "open" and conn.transaction_open:
                self._rollback(conn)
        except Exception:
            self.clear_thread_connection()
            raise

    BaseConnectionManager.release = release


def _runtime_vars_only(args: list[str]) -> bool:
    """Every ``--vars`` is a JSON object of :data:`RUNTIME_VARS` only."""
    for i, arg in enumerate(args):
        if arg == "--vars" or arg.startswith("--vars="):
            text = arg.partition("=")[2] if arg.startswith("--vars=") else \
                (args[i + 1] if i + 1 < len(args) else "")
            try:
                given = json.loads(text)
            except ValueError:
                return False
            if not isinstance(given, dict) or not set(given) <= RUNTIME_VARS:
                return False
    return True


def servable(args: list[str]) -> bool:
    """Whether the worker can run these dbt arguments with its cached manifest: ``run`` or
    ``build``, with no ``--vars`` but runtime ones (other vars may change the manifest)."""
    return bool(args) and args[0] in WRITING_COMMANDS - {"seed", "snapshot"} and \
        _runtime_vars_only(args)


# ----------------------------------------------------------------------------- client
def run_on_worker(config: Config, args: list[str], progress: Progress = print) -> int | None:
    """Run ``dbt ARGS`` on the worker and return dbt's exit status, printing its log lines;
    ``None`` when no worker listens or it does not serve these arguments (then run a dbt
    process). Raises :class:`WorkerError` when the worker dies or goes silent mid-run."""
    if not servable(args):
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(5.0)
        client.connect(str(socket_path(config)))
    except OSError:
        client.close()
        return None
    with client:
        client.settimeout(SILENCE_LIMIT_S)
        client.sendall(json.dumps({"args": args}).encode() + b"\n")
        try:
            for raw in client.makefile("rb"):
                answer = json.loads(raw)
                if "line" in answer:
                    progress(answer["line"])
                elif "returncode" in answer:
                    return answer["returncode"]  # type: ignore[no-any-return]
        except TimeoutError:
            raise WorkerError(f"the dbt worker said nothing for {SILENCE_LIMIT_S:.0f} s during "
                              f"`dbt {' '.join(args)}`; see its log (contour logs dbt)") from None
    raise WorkerError(f"the dbt worker ended `dbt {' '.join(args)}` without an exit status (it "
                      "died or was restarted); the run is retried as a whole by the next cycle")


# ----------------------------------------------------------------------------- worker
class Worker:
    """dbt with the project parsed once; :meth:`handle` serves one connection."""

    def __init__(self, config: Config) -> None:
        from dbt.cli.main import dbtRunner

        self.config = config
        self.runner_class = dbtRunner
        self.manifest: Any = None
        self.fingerprint: str | None = None
        self.invocations = 0
        self.parses = 0
        self.busy_since: float | None = None

    def status(self) -> dict[str, Any]:
        return {"updated_at": time.time(), "pid": os.getpid(), "invocations": self.invocations,
                "parses": self.parses, "busy_since": self.busy_since,
                "rss_bytes": rss_bytes()}

    def parse_if_changed(self, say: Progress) -> None:
        fingerprint = project_fingerprint()
        if fingerprint == self.fingerprint and self.manifest is not None:
            return
        started = time.monotonic()
        result = self.runner_class().invoke(["parse", "--quiet"])
        if not result.success:
            raise WorkerError(f"dbt parse failed: {result.exception}")
        self.manifest, self.fingerprint = result.result, fingerprint
        self.parses += 1
        say(f"dbt worker: project parsed in {time.monotonic() - started:.1f}s "
            f"(parse #{self.parses})")

    def invoke(self, args: list[str], say: Progress, forward: Progress) -> int:
        """Run dbt ARGS; ``say`` tells the worker's own news, ``forward`` passes dbt's log
        lines on to the client (dbt itself writes them to the worker's log)."""
        def on_event(event: Any) -> None:
            info = event.info
            if info.level in ("info", "warn", "error") and info.msg:
                forward(f"{time.strftime('%H:%M:%S')}  {info.msg}")

        self.parse_if_changed(say)
        with marts_lock(self.config, args):
            result = self.runner_class(manifest=self.manifest, callbacks=[on_event]).invoke(
                [*args, "--no-write-json"], use_colors=False)
            write_run_results(result.result, target_path(self.config), say)
        self.invocations += 1
        if result.exception is not None and not result.success:
            say(f"dbt worker: dbt raised {type(result.exception).__name__}: {result.exception}")
            return 2
        return 0 if result.success else 1

    def handle(self, conn: socket.socket) -> None:
        """Serve one connection. A client that sends nothing within ``CLIENT_TIMEOUT_S``,
        sends something that is not a request, or stops reading is dropped (a run it started
        goes on), so no client can hold the worker up."""
        conn.settimeout(CLIENT_TIMEOUT_S)
        gone = False

        def forward(line: str) -> None:
            nonlocal gone
            if gone:
                return
            try:
                conn.sendall(json.dumps({"line": line}).encode() + b"\n")
            except OSError:  # the client left or stopped reading: the run goes on
                gone = True

        with conn, conn.makefile("rb") as reader:
            try:
                request = json.loads(reader.readline())
                args = request["args"]
                if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                    raise TypeError("args must be a list of strings")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                print(f"dbt worker: dropped a client without a valid request ({exc!r})",
                      flush=True)
                return

            def say(line: str) -> None:
                print(line, flush=True)
                forward(line)

            if not servable(args):
                code: int | None = None
                say(f"dbt worker: not served here: dbt {' '.join(args)}")
            else:
                say(f"dbt worker: dbt {' '.join(args)}")
                self.busy_since = time.time()
                try:
                    code = self.invoke(args, say, forward)
                except Exception as exc:  # noqa: BLE001 - reported to the client, worker lives
                    say(f"dbt worker: {type(exc).__name__}: {exc}")
                    code = 2
                finally:
                    self.busy_since = None
            if not gone:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"returncode": code}).encode() + b"\n")


def write_run_results(result: Any, target: Path, say: Progress) -> None:
    """Write a run's ``run_results.json`` where dbt would. The worker's runs leave dbt's
    artifacts off (``--no-write-json``): dbt would pickle the graph and write the whole
    manifest every run, ~1 s of each realtime cycle, for a manifest that only changes when
    the project does (the worker's parse writes it then). The run results are the part an
    operator reads after a run, so they are written here."""
    if not hasattr(result, "write"):
        return
    path = target / "run_results.json"
    try:
        result.write(str(path))
    except OSError as exc:
        say(f"dbt worker: could not write {path}: {exc}")


def rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def serve(config: Config) -> int:
    """Run the worker until SIGTERM; exits 0 to be restarted when it grew past MAX_RSS_BYTES."""
    path, status_file = socket_path(config), status_path(config)
    environment = worker_environment(config)  # profile, target path, password as `contour
    os.environ.clear()                          # dbt` has them, and little else
    os.environ.update(environment)
    keep_connections_open()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = Worker(config)

    writing = threading.Lock()

    def report() -> None:
        with writing:
            write_status(status_file, worker.status())

    def report_every_second() -> None:
        while not stop.wait(STATUS_EVERY_S):
            report()

    status_file.parent.mkdir(parents=True, exist_ok=True)
    worker.parse_if_changed(lambda line: print(line, flush=True))
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is created owner-only
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    server.listen(8)
    server.settimeout(0.5)
    # healthy from here: parsed and listening
    threading.Thread(target=report_every_second, daemon=True).start()
    print(f"dbt worker: listening on {path} (pid {os.getpid()})", flush=True)
    try:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            worker.handle(conn)
            report()  # counted before the next run, not up to a second later
            if rss_bytes() > MAX_RSS_BYTES:
                print(f"dbt worker: {rss_bytes() / 1e6:.0f} MB resident after "
                      f"{worker.invocations} runs; exiting to be restarted", flush=True)
                break
    finally:
        server.close()
        path.unlink(missing_ok=True)
        stop.set()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contour.dbt_worker",
        description="Serve the realtime cycle's dbt runs with dbt loaded once (run by "
                    "`contour up dbt` in dbt's virtual environment; see the module's docstring).")
    parser.parse_args(argv)
    try:
        return serve(Config.from_env())
    except ContourError as exc:
        print(f"dbt worker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
