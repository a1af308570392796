"""The exporter: ClickHouse ``raw.<name>`` increments → PostgreSQL ``warehouse.staging.<name>``.

- **Watermark = ``_ingested_at``**, not ``_version``: the loader stamps each block just before
  inserting it, so per table ``_ingested_at`` grows in the order rows become visible, while
  ``_version`` (the source LSN) does not (partition 0 may land after partition 1). Each pass
  reads the rows ingested after the table's watermark, and re-reads a short lookback before it
  (clock steps, replicas): the merge is guarded by ``_version``, so re-reading is harmless.
- **Chunks**: the rows past the watermark are cut at ``_ingested_at`` boundaries into chunks of
  about ``chunk_rows`` rows (a loader block is never split), streamed from ClickHouse ordered by
  key and version. Per key the newest version wins; an unchanged-TOAST placeholder or a
  key-only delete takes the values of the version before it from ``history.<name>``, else
  keeps the stored row's.
- **One PostgreSQL transaction per chunk**: COPY into a temporary table, one ``INSERT … ON
  CONFLICT DO UPDATE … WHERE _version <`` merge, and the watermark moved to the chunk's last
  ``_ingested_at``. Two connections take turns (chunk n streams while chunk n-1 merges) and
  commit in chunk order. A kill at any point leaves staging and watermark consistent; the next
  run resumes from the watermark.
- **Schema**: staging tables are created from the source catalog's types and get new columns
  (``ALTER TABLE … ADD COLUMN``) as soon as the loader has added them to the raw table.
- Several exporters (the ``export`` service and Airflow's ``contour export once``) may run at
  once: a table is exported by one of them at a time (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from contour.config import Config
from contour.errors import ConfigError
from ingestion.export import heartbeat_path
from ingestion.export.catalog import StagingCatalogs, TableSpec, raw_tables
from ingestion.export.decode import UNAVAILABLE, identity
from ingestion.export.staging import (
    ChunkMerge,
    Conn,
    ensure_indexes,
    ensure_table,
    prepare_schema,
    read_watermarks,
    staging_columns,
)
from ingestion.landing.loader import clickhouse_client
from ingestion.landing.tables import quote
from ingestion.status import RollingRate, read_status, write_status

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def from_millis(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


@dataclass(frozen=True)
class Period:
    """A re-export (backfill) of the changes committed in ``[since, until)`` in the source:
    read whatever the watermark says, merged version-guarded, the watermark left alone."""

    since: datetime
    until: datetime | None = None

    def where(self) -> str:
        clause = " AND _source_ts >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')"
        if self.until is not None:
            clause += " AND _source_ts < fromUnixTimestamp64Micro({until:Int64}, 'UTC')"
        return clause

    def parameters(self) -> dict[str, int]:
        def micros(moment: datetime) -> int:
            return (moment - _EPOCH) // timedelta(microseconds=1)

        return {"since": micros(self.since),
                "until": micros(self.until) if self.until is not None else 0}


@dataclass(frozen=True)
class Chunk:
    after_ms: int | None  # read rows ingested after this (None: from the start)
    upto_ms: int  # … up to and including this; the watermark after the chunk
    new_rows: int  # rows past the old watermark (what rows_total counts)


def plan_chunks(groups: Iterable[tuple[int, int]], watermark_ms: int | None,
                lookback_ms: int, chunk_rows: int) -> list[Chunk]:
    """Cut ``(_ingested_at ms, rows)`` groups past the watermark into chunks of about
    ``chunk_rows`` rows; the first chunk also re-reads ``lookback_ms`` before the watermark."""
    chunks: list[Chunk] = []
    after = None if watermark_ms is None else watermark_ms - lookback_ms
    rows, upto = 0, None
    for at, count in groups:
        if upto is not None and rows + count > chunk_rows:
            chunks.append(Chunk(after, upto, rows))
            after, rows = upto, 0
        rows, upto = rows + count, at
    if upto is not None:
        chunks.append(Chunk(after, upto, rows))
    return chunks


@dataclass
class _Shape:
    """A table's spec, merge statements and row-processing indexes, kept while its raw columns
    stay the same."""

    spec: TableSpec
    raw_columns: dict[str, str]
    merge: ChunkMerge

    def __post_init__(self) -> None:
        columns = self.spec.columns
        self.width = len(columns)
        self.key_index = [self.spec.column_names.index(k) for k in self.spec.key]
        self.toast = [(i, c.name) for i, c in enumerate(columns) if c.toastable]
        self.decoders = [(i, c.decode) for i, c in enumerate(columns) if c.decode is not identity]
        # _source_ts as text: PostgreSQL reads it in the session's time zone, UTC
        self.select = ", ".join([quote(c) for c in self.spec.column_names]
                                + ["_version", "_is_deleted", "toString(_source_ts)"])
        self.key = itemgetter(*self.key_index)  # a value, or a tuple for a composite key
        self.toast_values = itemgetter(*[i for i, _ in self.toast]) if self.toast else None
        self.order = ", ".join(quote(k) for k in self.spec.key)
        key_types = [self.raw_columns[k] for k in self.spec.key]
        self.key_param = key_types[0] if len(key_types) == 1 else \
            f"Tuple({', '.join(key_types)})"
        self.key_expr = self.order if len(key_types) == 1 else f"({self.order})"

    def incomplete(self, row: list[Any]) -> bool:
        """A change whose event left values out: an unchanged-TOAST placeholder, or a
        delete that carries only the key."""
        if row[self.width + 1] and not self.spec.full_identity:
            return True
        if self.toast_values is None:
            return False
        values = self.toast_values(row)
        return UNAVAILABLE in values if len(self.toast) > 1 else values == UNAVAILABLE

    def key_of(self, row: list[Any] | tuple[Any, ...]) -> Any:
        return self.key(row)


class Exporter:
    def __init__(self, config: Config, *, chunk_rows: int = 100_000,
                 lookback_seconds: float = 2.0, progress: Progress | None = None) -> None:
        self.config = config
        self.chunk_rows = chunk_rows
        self.lookback_ms = int(lookback_seconds * 1000)
        self.progress = progress or log.info
        self.status_path = heartbeat_path(config)
        self.catalogs = StagingCatalogs(config)
        self._client: Any = None
        self._conn: Conn | None = None
        self._merge_conn: Conn | None = None  # chunks alternate between the two
        self._shapes: dict[str, _Shape] = {}
        self._staging: dict[str, list[str]] = {}
        self._signatures: dict[str, int] = {}
        self._rate = RollingRate()
        self.exported_rows = 0
        self.passes = 0
        self.last_pass_s: float | None = None
        self.last_error: str | None = None
        self.service = False  # set by run(): only the service writes the heartbeat

    # ------------------------------------------------------------------ connections
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = clickhouse_client(self.config)
        return self._client

    @property
    def conn(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.config.pg_dsn("warehouse"), autocommit=True,
                                         connect_timeout=10)
            self._conn.execute("SET TimeZone = 'UTC'")
            prepare_schema(self._conn)
            self._staging.clear()
        return self._conn

    def _chunk_conn(self, n: int) -> Conn:
        """The connection of the ``n``-th chunk: two take turns, so that one streams its COPY
        while the other merges and commits the chunk before."""
        if n % 2 == 0:
            return self.conn
        if self._merge_conn is None or self._merge_conn.closed:
            self._merge_conn = psycopg.connect(self.config.pg_dsn("warehouse"),
                                               autocommit=True, connect_timeout=10)
            self._merge_conn.execute("SET TimeZone = 'UTC'")
        return self._merge_conn

    def close(self) -> None:
        for conn in (self._conn, self._merge_conn):
            if conn is not None:
                conn.close()
        self._conn = self._merge_conn = None
        if self._client is not None:
            self._client.close()
        self._client = None
        self.catalogs.close()
        self._shapes.clear()

    # ------------------------------------------------------------------ tables
    def raw_tables(self) -> dict[str, dict[str, str]]:
        """Raw tables of the captured sources → their row columns."""
        return {name: columns for name, columns in raw_tables(self.client).items()
                if self.catalogs.source_of(name) is not None}

    def select(self, tables: list[str] | None = None,
               sources: list[str] | None = None) -> list[str]:
        """The raw tables to export: all, or those named, or those of the named sources."""
        known = sorted(self.raw_tables())
        for source in sources or []:
            self.config.cdc_source(source)  # unknown source: ConfigError naming the known ones
        names = [n for n in known if not sources or self.catalogs.source_of(n) in sources]
        if tables:  # raw names, or a source's own table names with --source
            tables = [next((f"{s}__{t}" for s in sources or [] if f"{s}__{t}" in known), t)
                      for t in tables]
            unknown = [t for t in tables if t not in known]
            if unknown:
                raise ConfigError(
                    f"unknown table {unknown[0]!r}: no raw.{unknown[0]} in ClickHouse; known "
                    f"tables: {', '.join(known) or '(none yet: has the loader run?)'}")
            names = [n for n in names if n in tables]
        return names

    def _shape(self, name: str, raw_columns: dict[str, str]) -> _Shape:
        shape = self._shapes.get(name)
        if shape is not None and shape.raw_columns == raw_columns:
            return shape
        spec = self.catalogs.spec(name, raw_columns)
        first = name not in self._staging
        existing = self._staging.get(name) or staging_columns(self.conn, name)
        added = [c for c in spec.column_names if c not in existing]
        self._staging[name] = ensure_table(self.conn, spec, existing)
        if first:
            ensure_indexes(self.conn, name)
        if existing and added:
            log.info("staging.%s: new columns %s", name, ", ".join(added))
        shape = _Shape(spec, dict(raw_columns), ChunkMerge(spec))
        self._shapes[name] = shape
        return shape

    def ensure_empty_tables(self, raw: dict[str, dict[str, str]]) -> None:
        """Staging mirrors the sources: a captured table with nothing landed yet (an empty
        source table) still gets its (empty) staging table, so models reading it work."""
        for source in self.config.cdc_source_names:
            for name in self.catalogs.captured(source):
                if name in raw or name in self._staging:
                    continue
                table = self.catalogs.table(source, name)
                if table is None or not table.key:
                    continue
                self._shape(name, dict.fromkeys(table.columns, "Nullable(String)"))
                log.info("staging.%s: created empty (nothing landed yet)", name)

    def signatures(self) -> dict[str, int]:
        """A number per raw table that changes whenever its parts change (an insert or a
        merge): tables whose number is unchanged have nothing new to export."""
        return {t: int(s) for t, s in self.client.query(
            "SELECT table, sum(cityHash64(name)) FROM system.parts WHERE database = 'raw' "
            "AND active GROUP BY table").result_rows}

    # ------------------------------------------------------------------ passes
    def export_once(self, names: list[str] | None = None, *, only_changed: bool = False,
                    stop: threading.Event | None = None,
                    period: Period | None = None) -> dict[str, int]:
        """One pass over the tables (all by default); returns new rows exported per table
        (with a ``period``: the rows of that period re-exported)."""
        started = time.monotonic()
        raw = self.raw_tables()
        if names is None and period is None:
            self.ensure_empty_tables(raw)
        signatures = self.signatures()
        done: dict[str, int] = {}
        for name in names if names is not None else sorted(raw):
            if stop is not None and stop.is_set():
                break
            if name not in raw:
                continue
            signature = signatures.get(name)
            if only_changed and signature is not None \
                    and self._signatures.get(name) == signature:
                continue
            try:
                done[name] = self.export_table(name, raw[name], stop, period)
            except ConfigError as exc:  # e.g. a table without a primary key: skip, say why
                log.warning("not exported: %s", exc)  # (again only once its raw data changes)
            if signature is not None:
                self._signatures[name] = signature
        self.passes += 1
        self.last_pass_s = time.monotonic() - started
        self.last_error = None
        self.write_status()
        return done

    def export_table(self, name: str, raw_columns: dict[str, str],
                     stop: threading.Event | None = None, period: Period | None = None) -> int:
        """Export one table from its watermark, or re-export a ``period`` of it.

        ``raw_columns`` (read at the start of the pass) may lack a column the loader added
        since, together with rows carrying it: once rows are to be read, the columns are read
        again. The loader adds a column before it stamps ``_ingested_at`` on any row that has
        it, so the columns read after the rows were counted cover every counted row — with
        the pass's list, those rows' new values would be dropped and the watermark passed."""
        conn = self.conn
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"export:{name}",))
        try:
            watermark = None
            if period is None:
                row = read_watermarks(conn).get(name)
                watermark = to_millis(row[0]) if row and row[0] is not None else None
            groups = self._groups(name, watermark, period)
            if groups:
                raw_columns = raw_tables(self.client, name).get(name, raw_columns)
            shape = self._shape(name, raw_columns)
            chunks = plan_chunks(groups, watermark, self.lookback_ms, self.chunk_rows)
            return self._export_chunks(shape, chunks, stop, period)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                             (f"export:{name}",))

    def _groups(self, name: str, watermark_ms: int | None,
                period: Period | None) -> list[tuple[int, int]]:
        where = "1" if watermark_ms is None else \
            "_ingested_at > fromUnixTimestamp64Milli({w:Int64})"
        where += period.where() if period else ""
        parameters = {"w": watermark_ms or 0, **(period.parameters() if period else {})}
        return [(int(t), int(n)) for t, n in self.client.query(
            f"SELECT toUnixTimestamp64Milli(_ingested_at) AS t, count() FROM raw.{quote(name)} "
            f"WHERE {where} GROUP BY t ORDER BY t", parameters=parameters).result_rows]

    def _export_chunks(self, shape: _Shape, chunks: list[Chunk], stop: threading.Event | None,
                       period: Period | None) -> int:
        """COPY chunk n on one connection while chunk n-1 merges and commits on the other
        (in a thread: PostgreSQL merges while Python decodes); commits stay in chunk order, so
        the watermark never passes rows not yet committed."""
        total = sum(c.new_rows for c in chunks)
        started, done = time.monotonic(), 0

        def finished(chunk: Chunk) -> None:
            nonlocal done
            done += chunk.new_rows
            self.exported_rows += chunk.new_rows
            if total > self.chunk_rows:  # a backfill: say how it goes
                elapsed = max(time.monotonic() - started, 1e-6)
                self.progress(f"{shape.spec.name}: {done:,}/{total:,} rows "
                              f"({done / total:.0%}), {done / elapsed:,.0f} rows/s")
                self.write_status()

        merging: tuple[Future[None], Chunk] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-merge") as merger:
            try:
                for n, chunk in enumerate(chunks):
                    if stop is not None and stop.is_set():
                        break
                    conn = self._chunk_conn(n)
                    unchanged = self._copy_chunk(conn, shape, chunk, period)
                    if merging is not None:
                        merging[0].result()
                        finished(merging[1])
                    merging = (merger.submit(self._merge_chunk, conn, shape, chunk, period,
                                             unchanged), chunk)
                if merging is not None:
                    merging[0].result()
                    finished(merging[1])
            except BaseException:
                if merging is not None:
                    wait([merging[0]])
                for conn in (self._conn, self._merge_conn):
                    if conn is not None and not conn.closed and not conn.broken \
                            and conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                raise
        return done

    def _copy_chunk(self, conn: Conn, shape: _Shape, chunk: Chunk,
                    period: Period | None) -> set[str]:
        """Open the chunk's transaction and COPY its newest versions into a temporary table;
        returns the columns some rows left unchanged (TOAST) without a value found."""
        name = shape.spec.name
        where = "_ingested_at <= fromUnixTimestamp64Milli({upto:Int64})"
        if chunk.after_ms is not None:
            where += " AND _ingested_at > fromUnixTimestamp64Milli({after:Int64})"
        where += period.where() if period else ""
        query = (f"SELECT {shape.select} FROM raw.{quote(name)} WHERE {where} "
                 f"ORDER BY {shape.order}, _version")
        parameters = {"upto": chunk.upto_ms, "after": chunk.after_ms or 0,
                      **(period.parameters() if period else {})}
        unchanged: set[str] = set()
        conn.execute("BEGIN")
        conn.execute(shape.merge.create)
        with conn.cursor().copy(shape.merge.copy) as copy:
            pending = []  # rows with values left out: placeholders, key-only deletes
            with self.client.query_row_block_stream(query, parameters=parameters) as blocks:
                for n, row in enumerate(newest_per_key(shape, blocks), 1):
                    if shape.incomplete(row):
                        pending.append(row)
                    else:
                        copy.write_row(finish_row(shape, row, unchanged))
                    if n % 25_000 == 0:
                        self.write_status()  # alive while a large chunk streams
            for start in range(0, len(pending), 10_000):
                self._from_history(shape, pending[start:start + 10_000])
            for row in pending:
                copy.write_row(finish_row(shape, row, unchanged))
        return unchanged

    @staticmethod
    def _merge_chunk(conn: Conn, shape: _Shape, chunk: Chunk, period: Period | None,
                     unchanged: set[str]) -> None:
        """Merge the COPYed chunk, move the watermark, commit (one transaction)."""
        for column in sorted(unchanged):
            conn.execute(shape.merge.fill_unchanged(column))
        conn.execute(shape.merge.merge)
        if period is None:
            conn.execute(shape.merge.watermark, (shape.spec.name, from_millis(chunk.upto_ms),
                                                 chunk.new_rows))
        conn.execute("COMMIT")

    def _from_history(self, shape: _Shape, rows: list[list[Any]]) -> None:
        """Fill in what a change left out from the versions before it in ``history.<name>``
        (every version; ``raw`` may have folded the one needed away, e.g. when two changes of a
        key landed in one block): an unchanged-TOAST placeholder gets the newest older real
        value, a key-only delete the newest older row. What history lacks keeps the stored
        staging value (see :mod:`ingestion.export.staging`)."""
        name = shape.spec.name
        if not self.client.query("SELECT count() FROM system.tables WHERE database = "
                                 "'history' AND name = {n:String}",
                                 parameters={"n": name}).result_rows[0][0]:
            return
        width = shape.width
        wanted = {(shape.key_of(r), r[width]) for r in rows}
        deadline = time.monotonic() + 10
        while True:
            versions: dict[Any, list[tuple[Any, ...]]] = {}
            for found in self.client.query(
                    f"SELECT {shape.select} FROM history.{quote(name)} "
                    f"WHERE {shape.key_expr} IN {{keys:Array({shape.key_param})}} "
                    f"ORDER BY {shape.order}, _version",
                    parameters={"keys": [k for k, _ in wanted]}).result_rows:
                versions.setdefault(shape.key_of(found), []).append(found)
            # the view fills history just after raw: until it holds the rows' own versions
            # it may lack the versions before them too
            seen = {(k, v[width]) for k, vs in versions.items() for v in vs}
            if wanted <= seen or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for row in rows:
            older = [v for v in versions.get(shape.key_of(row), ()) if v[width] < row[width]]
            if row[width + 1] and not shape.spec.full_identity:
                before = next((v for v in reversed(older) if not v[width + 1]), None)
                if before is not None:
                    row[:width] = before[:width]
            for i, _ in shape.toast:
                if row[i] == UNAVAILABLE:
                    row[i] = next((v[i] for v in reversed(older) if v[i] != UNAVAILABLE
                                   and not v[width + 1]), UNAVAILABLE)

    # ------------------------------------------------------------------ loop
    def write_status(self) -> None:
        """The service's heartbeat (``contour export run`` only: a one-off pass such as the
        realtime cycle's must not make a dead service look alive)."""
        if not self.service:
            return
        write_status(self.status_path, {
            "exported_rows": self.exported_rows, "rows_per_s": self._rate(self.exported_rows),
            "passes": self.passes, "last_pass_s": self.last_pass_s,
            "last_error": self.last_error, "updated_at": time.time(),
        })

    def run(self, stop: threading.Event, interval: float = 2.0, retry_delay: float = 5.0,
            names: list[str] | None = None) -> None:
        """Export every ``interval`` seconds until ``stop``; after any failure (PostgreSQL or
        ClickHouse away) reconnect and resume from the watermarks, which is always safe."""
        self.service = True
        self.write_status()  # alive from the start, not only after the first pass
        while not stop.is_set():
            try:
                self.export_once(names, only_changed=True, stop=stop)
                delay = interval
            except Exception as exc:  # noqa: BLE001 - log, wait, resume from the watermarks
                if stop.is_set():
                    break
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("export: %s; resuming from the watermarks in %.0fs",
                            self.last_error, retry_delay)
                self.close()
                self._signatures.clear()
                delay = retry_delay
            stop.wait(delay)
        self.close()


def service_heartbeat_age(config: Config) -> float | None:
    """Seconds since ``contour export run`` last wrote its heartbeat (None: never, or its
    file is not visible from here)."""
    status = read_status(heartbeat_path(config))
    return time.time() - status["updated_at"] if status else None


def export_pass(config: Config, tables: list[str] | None = None,
                sources: list[str] | None = None, period: Period | None = None, *,
                progress: Progress | None = None, **tuning: Any) -> dict[str, int]:
    """``contour export once``: one pass over every table (or those named, or those of the
    named sources; or a ``period`` of them re-exported), with a one-line summary. With no
    table or source named, sources' empty tables get empty staging tables too."""
    say = progress or log.info
    exporter = Exporter(config, progress=say, **tuning)
    try:
        names = exporter.select(tables, sources)
        started = time.monotonic()
        done = exporter.export_once(names if tables or sources else None, period=period)
    finally:
        exporter.close()
    rows = sum(done.values())
    seconds = time.monotonic() - started
    changed = ", ".join(f"{n} {r:,}" for n, r in done.items() if r) or "nothing new"
    say(f"exported {rows:,} rows from {len(names)} tables in {seconds:.1f}s "
        f"({rows / max(seconds, 1e-6):,.0f} rows/s): {changed}")
    return done


def newest_per_key(shape: _Shape, blocks: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """Rows ordered by key and version → the newest version of each key (as a list)."""
    key_of = shape.key
    previous: tuple[Any, ...] | None = None
    previous_key: Any = None
    for block in blocks:
        for row in block:
            key = key_of(row)
            if key != previous_key and previous is not None:
                yield list(previous)
            previous, previous_key = row, key
    if previous is not None:
        yield list(previous)


def finish_row(shape: _Shape, row: list[Any], unchanged: set[str]) -> list[Any]:
    """A raw row → the chunk table's row (in place): decoded columns, meta, unchanged
    columns."""
    missing = None
    if shape.toast_values is not None and shape.incomplete(row):
        for i, name in shape.toast:
            if row[i] == UNAVAILABLE:
                row[i] = None
                missing = [*(missing or []), name]
                unchanged.add(name)
    for i, decode in shape.decoders:
        value = row[i]
        if value is not None:
            row[i] = decode(value)
    row[shape.width + 1] = row[shape.width + 1] == 1
    row.append(missing)
    return row
