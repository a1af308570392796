"""The ClickHouse owner process: a real ``python -m contour.clickhouse_http`` over a chdb folder,
driven by clickhouse-connect, its SQLAlchemy dialect and plain HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
import sqlalchemy
from clickhouse_connect.driver.exceptions import DatabaseError

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
LISTENING_RE = re.compile(r"on http://127\.0\.0\.1:(\d+) serving")
PASSWORD_ENV = ("CONTOUR_CLICKHOUSE_PASSWORD", "CONTOUR_CLICKHOUSE_READER_PASSWORD")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def start_server(data_dir: Path, log: Path, env: dict[str, str] | None = None) -> Server:
    """Start the server on a free port (``--port 0``); the port is read from its log."""
    full_env = {k: v for k, v in os.environ.items() if k not in PASSWORD_ENV}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "contour.clickhouse_http", "--path", str(data_dir),
             "--host", "127.0.0.1", "--port", "0"],
            cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=log_file)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        # the last start in this log (the same log is reused across restarts)
        match = list(LISTENING_RE.finditer(log.read_text()))
        if match:
            server = Server(proc, int(match[-1].group(1)), log)
            if http_get(server, "/ping")[0] == 200:
                return server
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"server did not start in {START_TIMEOUT} s:\n{log.read_text()}")


def http_get(server: Server, path: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return http_request(server, "GET", path + query)


def http_request(server: Server, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None, chunked: bool = False
                 ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    except OSError:
        return 0, {}, b""
    finally:
        conn.close()


def post(server: Server, sql: str | bytes, **params: str) -> tuple[int, dict[str, str], bytes]:
    query = f"/?{urllib.parse.urlencode(params)}" if params else "/"
    body = sql.encode() if isinstance(sql, str) else sql
    return http_request(server, "POST", query, body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("chhttp")
    srv = start_server(root / "data", root / "server.log")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


@pytest.fixture
def launched() -> Iterator[list[Server]]:
    """Servers a test starts itself; any still running at teardown are killed."""
    servers: list[Server] = []
    yield servers
    for srv in servers:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    # default settings: compression on (lz4 inserts, compressed responses)
    cli = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
    yield cli
    cli.close()


def sample_rows(count: int, offset: int = 0) -> list[tuple[Any, ...]]:
    base = dt.datetime(2024, 3, 31, 1, 30)
    return [
        (
            offset + i,
            f"name {i} 'quoted' \t ünïcode",
            base + dt.timedelta(seconds=i * 37, milliseconds=i % 1000),
            None if i % 7 == 0 else i * 3 - 1000,
            f"campaign-{i % 5}",
            [f"tag{j}" for j in range(i % 4)],
        )
        for i in range(count)
    ]


SAMPLE_COLUMNS = ["id", "name", "ts", "score", "campaign", "tags"]
SAMPLE_DDL = (
    "CREATE TABLE {name} (id UInt64, name String, ts DateTime64(3), score Nullable(Int32), "
    "campaign LowCardinality(String), tags Array(String)) ENGINE = MergeTree ORDER BY id"
)


# ------------------------------------------------------------------------------ plain HTTP


def test_ping_and_plain_http(server: Server) -> None:
    status, _, body = http_get(server, "/ping")
    assert (status, body) == (200, b"Ok.\n")

    status, headers, body = http_get(server, "/", query="SELECT version(), timezone()",
                                     query_id="q-123")
    assert status == 200
    version, timezone = body.decode().rstrip("\n").split("\t")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", version)
    assert timezone == "UTC" == headers["X-ClickHouse-Timezone"]
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Query-Id"] == "q-123"
    assert headers["X-ClickHouse-Server-Display-Name"]
    assert headers["Content-Type"].startswith("text/tab-separated-values")
    assert set(json.loads(headers["X-ClickHouse-Summary"])) >= {"read_rows", "written_rows"}

    # the query parameter, a line break, then the body (as ClickHouse joins them)
    assert post(server, "+ 2", query="SELECT 40")[2] == b"42\n"
    # default_format and an explicit FORMAT clause
    status, headers, body = post(server, "SELECT 1 AS a", default_format="JSONEachRow")
    assert (body, headers["X-ClickHouse-Format"]) == (b'{"a":1}\n', "JSONEachRow")
    status, headers, body = post(server, "SELECT 2 AS format FORMAT CSVWithNames")
    assert (body, headers["X-ClickHouse-Format"]) == (b'"format"\n2\n', "CSVWithNames")

    assert http_get(server, "/no/such/handler")[0] == 404
    status, _, body = post(server, b"")
    assert status == 400 and b"Empty query" in body


def test_http_query_parameters_and_form_encoding(server: Server) -> None:
    status, _, body = post(server, "SELECT {x:UInt32} * 2, {s:String}", param_x="21",
                           param_s="it's")
    assert (status, body) == (200, b"42\tit\\'s\n")

    boundary = "contour-test-boundary"
    form = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in {"query": "SELECT {y:Array(UInt8)} AS y", "param_y": "[1,2,3]"}.items()
    ) + f"--{boundary}--\r\n"
    status, _, body = http_request(
        server, "POST", "/", form.encode(),
        {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, body) == (200, b"[1,2,3]\n")


def test_http_inserts_compressed_chunked_values(server: Server) -> None:
    assert post(server, "CREATE TABLE http_in (a Int32, s String) ENGINE = MergeTree ORDER BY a"
                )[0] == 200
    csv = "".join(f"{i},row {i}\n" for i in range(1, 1001)).encode()
    status, _, _ = http_request(
        server, "POST", "/?" + urllib.parse.urlencode({"query": "INSERT INTO http_in FORMAT CSV"}),
        gzip.compress(csv), {"Content-Encoding": "gzip"})
    assert status == 200
    status, _, _ = post(server, "INSERT INTO http_in VALUES (1001, concat('row ', '1001')), "
                                "(1002, 'row 1002')")
    assert status == 200
    lines = [f'{{"a": {i}, "s": "row {i}"}}\n'.encode() for i in range(1003, 1011)]
    status, _, _ = http_request(
        server, "POST", "/", iter([b"INSERT INTO http_in FORMAT JSONEachRow\n", *lines]),
        chunked=True)
    assert status == 200
    status, _, body = post(server, "SELECT count(), sum(a), countIf(s = concat('row ', "
                                   "toString(a))) FROM http_in")
    assert body.decode().split() == ["1010", str(sum(range(1, 1011))), "1010"]


def test_response_compression_when_asked(server: Server) -> None:
    sql = "SELECT number FROM numbers(1000)"
    expected = "".join(f"{i}\n" for i in range(1000)).encode()
    status, headers, body = http_request(
        server, "POST", "/?enable_http_compression=1", sql, {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == expected
    status, headers, body = http_request(server, "POST", "/", sql, {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in headers and body == expected


def test_errors_carry_clickhouse_text_code_and_status(server: Server, client: Any) -> None:
    status, headers, body = post(server, "SELECT * FROM no_such_table_xyz")
    assert status == 404
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception: ") and b"(UNKNOWN_TABLE)" in body

    status, headers, body = post(server, "SELEC 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")

    status, headers, _ = post(server, "SELECT 1", no_such_setting="1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "115")

    with pytest.raises(DatabaseError) as err:
        client.query("SELECT * FROM no_such_table_xyz")
    assert "Code: 60. DB::Exception:" in str(err.value) and "UNKNOWN_TABLE" in str(err.value)

    with pytest.raises(DatabaseError, match="UNKNOWN_DATABASE"):
        client.command("CREATE TABLE no_such_db.t (a Int8) ENGINE = Memory")


def test_multi_statements_are_refused(server: Server, client: Any) -> None:
    client.command("CREATE TABLE survivor (a Int8) ENGINE = MergeTree ORDER BY a")
    status, headers, body = post(server, "SELECT 1; DROP TABLE survivor")
    assert status == 400 and b"Multi-statements are not allowed" in body
    assert client.command("EXISTS TABLE survivor") == 1
    # a trailing semicolon is a single statement
    assert post(server, "SELECT 7;  ")[2] == b"7\n"


def test_get_is_read_only(server: Server, client: Any) -> None:
    client.command("CREATE TABLE get_ro (a Int8) ENGINE = MergeTree ORDER BY a")
    status, headers, body = http_get(server, "/", query="DROP TABLE get_ro")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "164")
    assert http_get(server, "/", query="EXISTS TABLE get_ro")[2] == b"1\n"


# ------------------------------------------------------------------------ clickhouse-connect


def test_connect_command_and_version(client: Any) -> None:
    assert client.server_version == client.command("SELECT version()")
    assert client.command("SELECT 6 * 7") == 42
    summary = client.command("CREATE TABLE cmd_t (a UInt8) ENGINE = MergeTree ORDER BY a")
    assert not isinstance(summary, str | int)  # a DDL reports a summary, not a result
    assert client.command("EXISTS TABLE cmd_t") == 1
    assert client.command("SELECT name FROM system.tables WHERE name = 'cmd_t'") == "cmd_t"


def test_query_parameters_server_and_client_side(client: Any) -> None:
    values = {"n": 41, "s": "O'Brien \\ ünï", "arr": ["a", "b'c"],
              "ts": dt.datetime(2024, 10, 27, 2, 30, 5)}
    server_side = client.query(
        "SELECT {n:UInt32} + 1, {s:String}, {arr:Array(String)}, {ts:DateTime}",
        parameters=values).result_rows
    client_side = client.query(
        "SELECT %(n)s + 1, %(s)s, %(arr)s, toDateTime(%(ts)s)", parameters=values).result_rows
    expected = [(42, values["s"], values["arr"], values["ts"])]
    assert server_side == expected
    assert client_side == expected


@pytest.mark.parametrize("compress", [True, False, "zstd", "gzip"])
def test_insert_several_types_roundtrip(server: Server, compress: bool | str) -> None:
    cli = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, compress=compress)
    table = f"typed_{str(compress).lower()}"
    cli.command(SAMPLE_DDL.format(name=table))
    rows = sample_rows(3000)
    summary = cli.insert(table, rows, column_names=SAMPLE_COLUMNS)
    assert summary.written_rows == len(rows)
    got = cli.query(f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM {table} ORDER BY id").result_rows
    assert got == rows
    nulls, total_score, tags = cli.query(
        f"SELECT countIf(score IS NULL), sum(score), sum(length(tags)) FROM {table}"
    ).result_rows[0]
    assert nulls == sum(r[3] is None for r in rows)
    assert total_score == sum(r[3] for r in rows if r[3] is not None)
    assert tags == sum(len(r[5]) for r in rows)
    cli.close()


def test_query_df(client: Any) -> None:
    client.command(SAMPLE_DDL.format(name="df_t"))
    rows = sample_rows(2500, offset=10)
    client.insert("df_t", rows, column_names=SAMPLE_COLUMNS)
    df = client.query_df("SELECT * FROM df_t ORDER BY id")
    assert list(df.columns) == SAMPLE_COLUMNS
    assert len(df) == len(rows)
    assert df["id"].tolist() == [r[0] for r in rows]
    assert df["name"].tolist() == [r[1] for r in rows]
    assert [ts.to_pydatetime() for ts in df["ts"]] == [r[2] for r in rows]
    assert int(df["score"].isna().sum()) == sum(r[3] is None for r in rows)
    assert df["campaign"].value_counts().to_dict() == {
        c: sum(r[4] == c for r in rows) for c in {r[4] for r in rows}}
    assert [list(t) for t in df["tags"]] == [r[5] for r in rows]


def test_settings_apply_to_one_request_only(client: Any) -> None:
    default = client.command("SELECT getSetting('max_threads')")
    wanted = 1 if default != 1 else 2
    assert client.query("SELECT getSetting('max_threads')",
                        settings={"max_threads": wanted}).result_rows == [(wanted,)]
    assert client.command("SELECT getSetting('max_threads')") == default


def test_database_parameter_and_session_state(server: Server, client: Any) -> None:
    client.command("CREATE DATABASE IF NOT EXISTS crm")
    client.command("CREATE TABLE crm.appeals (id UInt32) ENGINE = MergeTree ORDER BY id")
    client.insert("crm.appeals", [(i,) for i in range(5)], column_names=["id"])
    crm = clickhouse_connect.get_client(host="127.0.0.1", port=server.port, database="crm")
    assert crm.command("SELECT currentDatabase()") == "crm"
    assert crm.command("SELECT count() FROM appeals") == 5
    assert client.command("SELECT currentDatabase()") == "default"

    # USE and SET last for the HTTP session that ran them, and only for it
    assert post(server, "USE crm", session_id="s-1")[0] == 200
    assert post(server, "SET max_threads = 3", session_id="s-1")[0] == 200
    assert post(server, "SELECT currentDatabase(), getSetting('max_threads')",
                session_id="s-1")[2] == b"crm\t3\n"
    assert post(server, "SELECT currentDatabase()")[2] == b"default\n"
    assert post(server, "SELECT getSetting('max_threads')")[2] != b"3\n"
    status, headers, _ = post(server, "SELECT 1", session_id="unknown", session_check="1")
    assert headers["X-ClickHouse-Exception-Code"] == "372"  # SESSION_NOT_FOUND
    crm.close()


def test_replacing_merge_tree_final_dedups(client: Any) -> None:
    client.command(
        "CREATE TABLE calls_raw (id UInt64, status String, _version UInt64, _is_deleted UInt8) "
        "ENGINE = ReplacingMergeTree(_version, _is_deleted) ORDER BY id")
    cols = ["id", "status", "_version", "_is_deleted"]
    batches = [
        [(i, "new", 1, 0) for i in range(100)],
        [(i, "answered", 2, 0) for i in range(0, 100, 2)],
        [(i, "gone", 3, 1) for i in range(0, 100, 5)],
    ]
    latest: dict[int, tuple[Any, ...]] = {}
    for batch in batches:  # one insert each: separate parts, so FINAL has work to do
        client.insert("calls_raw", batch, column_names=cols)
        for row in batch:
            if row[0] not in latest or row[2] > latest[row[0]][2]:
                latest[row[0]] = row
    expected = sorted((r[0], r[1]) for r in latest.values() if not r[3])
    assert client.command("SELECT count() FROM calls_raw") == sum(map(len, batches))
    final = client.query("SELECT id, status FROM calls_raw FINAL ORDER BY id").result_rows
    assert final == expected


def test_concurrent_clients_are_serialised_safely(server: Server, client: Any) -> None:
    client.command("CREATE TABLE conc (worker UInt8, n UInt32) ENGINE = MergeTree ORDER BY n")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            cli = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)
            for round_ in range(5):
                cli.insert("conc", [(worker, round_ * 1000 + i) for i in range(400)],
                           column_names=["worker", "n"])
                assert cli.command("SELECT count() FROM conc WHERE worker = %(w)s",
                                   parameters={"w": worker}) == (round_ + 1) * 400
            cli.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert client.query("SELECT worker, count() FROM conc GROUP BY worker ORDER BY worker"
                        ).result_rows == [(w, 2000) for w in range(4)]


def test_sqlalchemy_dialect_introspection_and_select(server: Server, client: Any) -> None:
    client.command(SAMPLE_DDL.format(name="sa_calls"))
    rows = sample_rows(50)
    client.insert("sa_calls", rows, column_names=SAMPLE_COLUMNS)

    engine = sqlalchemy.create_engine(f"clickhousedb://default:@127.0.0.1:{server.port}/default")
    inspector = sqlalchemy.inspect(engine)
    assert {"default", "system"} <= set(inspector.get_schema_names())
    assert "sa_calls" in inspector.get_table_names()
    columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("sa_calls")}
    assert columns == {"id": "UInt64", "name": "String", "ts": "DateTime64(3)",
                       "score": "Nullable(Int32)", "campaign": "LowCardinality(String)",
                       "tags": "Array(String)"}
    with engine.connect() as conn:
        got = conn.execute(sqlalchemy.text(
            "SELECT id, name, campaign FROM sa_calls WHERE id >= :low ORDER BY id LIMIT 5"),
            {"low": 10}).fetchall()
        table = sqlalchemy.Table("sa_calls", sqlalchemy.MetaData(), autoload_with=conn)
        top = conn.execute(sqlalchemy.select(table.c.id, table.c.tags)
                           .order_by(table.c.id.desc()).limit(3)).fetchall()
    assert [tuple(r) for r in got] == [(r[0], r[1], r[4]) for r in rows[10:15]]
    assert [tuple(r) for r in top] == [(r[0], r[5]) for r in reversed(rows[-3:])]
    engine.dispose()


# ------------------------------------------------------------------------------- users


def test_passwords_and_the_read_only_user(tmp_path: Path, launched: list[Server]) -> None:
    srv = start_server(tmp_path / "data", tmp_path / "server.log", {
        "CONTOUR_CLICKHOUSE_PASSWORD": "s3cret", "CONTOUR_CLICKHOUSE_READER_PASSWORD": "r3ad"})
    launched.append(srv)
    with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED"):
        clickhouse_connect.get_client(host="127.0.0.1", port=srv.port, password="wrong")
    admin = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port,
                                          password="s3cret")
    admin.command("CREATE TABLE kpi (a UInt8) ENGINE = MergeTree ORDER BY a")
    admin.insert("kpi", [(1,), (2,)], column_names=["a"])

    reader = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port,
                                           username="reader", password="r3ad")
    assert reader.query("SELECT sum(a) FROM kpi").result_rows == [(3,)]
    assert reader.query_df("SELECT a FROM kpi ORDER BY a")["a"].tolist() == [1, 2]
    for statement in ("DROP TABLE kpi", "INSERT INTO kpi VALUES (3)",
                      "CREATE TABLE x (a Int8) ENGINE = Memory",
                      "SELECT * FROM file('/etc/hostname', 'LineAsString')"):
        with pytest.raises(DatabaseError, match="READONLY"):
            reader.command(statement)
    with pytest.raises(DatabaseError, match="READONLY"):
        reader.insert("kpi", [(4,)], column_names=["a"])
    assert admin.command("SELECT count() FROM kpi") == 2

    # X-ClickHouse-User / X-ClickHouse-Key headers work like basic auth
    status, headers, _ = http_request(srv, "POST", "/", b"SELECT 1",
                                      {"X-ClickHouse-User": "default",
                                       "X-ClickHouse-Key": "nope"})
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    status, _, body = http_request(srv, "POST", "/", b"SELECT 1",
                                   {"X-ClickHouse-User": "reader", "X-ClickHouse-Key": "r3ad"})
    assert (status, body) == (200, b"1\n")
    assert srv.stop() == 0


# -------------------------------------------------------------------------- persistence


def test_data_persists_across_restarts(tmp_path: Path, launched: list[Server]) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    srv = start_server(data, log)
    launched.append(srv)
    cli = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port)
    cli.command("CREATE DATABASE raw")
    cli.command(SAMPLE_DDL.format(name="raw.dialer__calls"))
    rows = sample_rows(1500)
    cli.insert("raw.dialer__calls", rows, column_names=SAMPLE_COLUMNS)
    cli.close()
    assert srv.stop(signal.SIGTERM) == 0
    assert "data folder closed" in log.read_text()

    srv = start_server(data, log)  # the next process opens the same folder
    launched.append(srv)
    cli = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port)
    assert cli.query("SELECT * FROM raw.dialer__calls ORDER BY id").result_rows == rows
    more = sample_rows(10, offset=len(rows))
    cli.insert("raw.dialer__calls", more, column_names=SAMPLE_COLUMNS)
    cli.close()
    assert srv.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash, not a clean stop

    srv = start_server(data, log)
    launched.append(srv)
    cli = clickhouse_connect.get_client(host="127.0.0.1", port=srv.port)
    assert cli.command("SELECT count() FROM raw.dialer__calls") == len(rows) + len(more)
    cli.close()
    assert srv.stop() == 0


def test_a_second_owner_of_the_folder_is_refused(server: Server, tmp_path: Path) -> None:
    data = Path(server.log.parent) / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "contour.clickhouse_http", "--path", str(data), "--port", "0"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"cannot open chdb data folder" in proc.stderr
    assert http_get(server, "/ping")[0] == 200  # the owner is unaffected
