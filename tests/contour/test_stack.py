"""Integration tests of the embedded stack: the five real services through the real command.

Order matters in this module: the fault tests at the end kill and restart services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import clickhouse_connect
import psutil
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from contour.config import DATABASES, SERVICES, WORKLOAD
from contour.procs import PidFile

pytestmark = pytest.mark.integration


def _status(stack) -> dict[str, dict]:  # noqa: ANN001
    result = stack.contour("status", "--json", check=False)
    return {s["service"]: s for s in json.loads(result.stdout)}


def _post_json(url: str, payload: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_status_shows_every_service_healthy_with_url_and_pid(stack) -> None:  # noqa: ANN001
    result = stack.contour("status")
    statuses = _status(stack)
    assert set(statuses) == set(SERVICES)
    for name in WORKLOAD:  # the simulated contact centre runs under `contour demo` only
        assert statuses.pop(name)["state"] == "idle"
    for name, status in statuses.items():
        assert status["state"] == "healthy", (name, status)
        assert status["url"] in result.stdout
        pids = [p["pid"] for p in status["processes"]]
        assert pids and all(isinstance(p, int) and psutil.pid_exists(p) for p in pids)
        for pid in pids:
            assert str(pid) in result.stdout
    assert stack.config.admin_password() in result.stdout


def test_up_again_is_a_no_op(stack) -> None:  # noqa: ANN001
    before = {s: [p["pid"] for p in st["processes"]] for s, st in _status(stack).items()}
    result = stack.contour("up")
    for name in set(SERVICES) - set(WORKLOAD):
        assert f"{name}: already running" in result.stdout
    after = {s: [p["pid"] for p in st["processes"]] for s, st in _status(stack).items()}
    assert after == before


def test_postgres_write_read_and_logical_decoding(stack) -> None:  # noqa: ANN001
    with psycopg.connect(stack.config.pg_dsn("postgres")) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        assert set(DATABASES) <= names
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
    with psycopg.connect(stack.config.pg_dsn("dialer")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS smoke (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO smoke VALUES (1, 'first') ON CONFLICT (id) DO UPDATE "
                     "SET name = excluded.name")
        conn.commit()
        assert conn.execute("SELECT name FROM smoke WHERE id = 1").fetchone() == ("first",)
        slot = f"smoke_{uuid.uuid4().hex[:8]}"
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.commit()


def test_postgres_runs_unprivileged(stack) -> None:  # noqa: ANN001
    record = PidFile(stack.config.run_dir / "postgres.pid").read()
    assert record is not None
    owner = psutil.Process(record.pid).username()
    if os.geteuid() == 0:
        assert owner != "root"


def test_kafka_produce_consume_through_a_consumer_group(stack) -> None:  # noqa: ANN001
    bootstrap = stack.config.kafka_bootstrap
    topic = f"smoke.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             enable_idempotence=True)
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(50)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=6000, heartbeat_interval_ms=1000)
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 60
    while len(received) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            for record in records:
                received[record.key] = record.value
    consumer.commit()
    consumer.close()
    assert received == sent


def test_clickhouse_replacing_merge_tree_through_clickhouse_connect(stack) -> None:  # noqa: ANN001
    ep = stack.config.clickhouse_endpoint
    client = clickhouse_connect.get_client(host=ep.host, port=ep.port)
    client.command("CREATE DATABASE IF NOT EXISTS smoke")
    client.command(
        "CREATE TABLE IF NOT EXISTS smoke.leads (id UInt64, status String, _version UInt64, "
        "_is_deleted UInt8) ENGINE = ReplacingMergeTree(_version, _is_deleted) ORDER BY id")
    client.command("TRUNCATE TABLE smoke.leads")
    columns = ["id", "status", "_version", "_is_deleted"]
    # two inserts = two parts: FINAL must pick the newest version per key across them
    client.insert("smoke.leads", [[1, "new", 1, 0], [2, "new", 1, 0]], column_names=columns)
    client.insert("smoke.leads", [[1, "called", 2, 0], [2, "new", 2, 1]], column_names=columns)
    rows = client.query("SELECT id, status FROM smoke.leads FINAL ORDER BY id").result_rows
    assert rows == [(1, "called")]
    assert client.query("SELECT status FROM smoke.leads FINAL WHERE id = {id:UInt64}",
                        parameters={"id": 1}).result_rows == [("called",)]


def test_superset_environment_reads_clickhouse_as_the_read_only_user(stack) -> None:  # noqa: ANN001
    """Superset's own environment (SQLAlchemy 1.4 + clickhousedb dialect) against our server."""
    ep = stack.config.clickhouse_endpoint
    password = stack.config.secrets.get("clickhouse_reader_password")
    script = (
        "import sqlalchemy as sa\n"
        f"e = sa.create_engine('clickhousedb://reader:{password}@{ep.host}:{ep.port}/default')\n"
        "with e.connect() as c:\n"
        "    print(c.execute(sa.text('SELECT 40 + 2')).scalar())\n"
        "    print(len(sa.inspect(e).get_table_names(schema='system')) > 10)\n"
        "    try:\n"
        "        c.execute(sa.text('CREATE TABLE default.x (a UInt8) ENGINE = Memory'))\n"
        "        print('write allowed')\n"
        "    except Exception as exc:\n"
        "        print('write refused' if 'readonly' in str(exc).lower() or 'READONLY' in "
        "str(exc) else exc)\n"
    )
    python = stack.config.venv_bin("superset", "python")
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "True", "write", "refused"], result.stdout


def test_airflow_health_and_generated_admin_login(stack) -> None:  # noqa: ANN001
    url = stack.config.airflow_url
    with urllib.request.urlopen(url + "/api/v2/monitor/health", timeout=10) as resp:
        health = json.load(resp)
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    user, password = stack.config.admin_user, stack.config.admin_password()
    status, body = _post_json(url + "/auth/token", {"username": user, "password": password})
    assert status in (200, 201) and body.get("access_token")
    status, _ = _post_json(url + "/auth/token", {"username": "admin", "password": "admin"})
    assert status == 401


def test_superset_health_and_generated_admin_login(stack) -> None:  # noqa: ANN001
    url = stack.config.superset_url
    with urllib.request.urlopen(url + "/health", timeout=10) as resp:
        assert resp.read() == b"OK"
    login = {"username": stack.config.admin_user, "password": stack.config.admin_password(),
             "provider": "db", "refresh": True}
    status, body = _post_json(url + "/api/v1/security/login", login)
    assert status == 200 and body.get("access_token")
    status, _ = _post_json(url + "/api/v1/security/login", {**login, "password": "admin"})
    assert status == 401


def test_logs_command_prints_the_service_log(stack) -> None:  # noqa: ANN001
    result = stack.contour("logs", "postgres", "-n", "1000000")  # (other tests log a lot)
    assert "database system is ready to accept connections" in result.stdout
    bad = stack.contour("logs", "nosuch", check=False)
    assert bad.returncode != 0 and "unknown service 'nosuch'" in bad.stderr


# ---------------------------------------------------------------------- faults (keep last)
@pytest.mark.parametrize("service", ["kafka", "clickhouse", "airflow", "cdc", "loader"])
def test_a_killed_service_is_detected_and_repaired(stack, service: str) -> None:  # noqa: ANN001
    status = _status(stack)[service]
    victim = status["processes"][-1]
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(victim["pid"]) and psutil.Process(victim["pid"]).status() != \
            psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.1)

    detected = stack.contour("status", check=False)
    assert detected.returncode == 1
    assert _status(stack)[service]["state"] in ("crashed", "degraded")

    repaired = stack.contour("up")
    assert "not running (crashed or killed); restarting" in repaired.stdout
    after = _status(stack)[service]
    assert after["state"] == "healthy"
    assert victim["pid"] not in [p["pid"] for p in after["processes"]]


def test_supervise_restarts_a_crashed_service_by_itself(stack) -> None:  # noqa: ANN001
    watcher = subprocess.Popen([sys.executable, "-m", "contour", "supervise", "--interval", "0.5"],
                               env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        victim = _status(stack)["kafka"]["processes"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        state = {}
        while time.monotonic() < deadline:
            state = _status(stack)["kafka"]
            pids = [p["pid"] for p in state["processes"]]
            if state["state"] == "healthy" and victim not in pids:
                break
            time.sleep(0.5)
        assert state["state"] == "healthy" and victim not in pids, state
    finally:
        watcher.send_signal(signal.SIGTERM)
        output, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0
    assert "kafka: kafka not running (crashed or killed); restarting" in output
    assert "stopped watching" in output


def test_clickhouse_data_survives_down_and_up(stack) -> None:  # noqa: ANN001
    ep = stack.config.clickhouse_endpoint
    client = clickhouse_connect.get_client(host=ep.host, port=ep.port)
    client.command("CREATE DATABASE IF NOT EXISTS smoke")
    client.command("CREATE TABLE IF NOT EXISTS smoke.durable (id UInt64, v String) "
                   "ENGINE = MergeTree ORDER BY id")
    marker = uuid.uuid4().hex
    client.insert("smoke.durable", [[1, marker]], column_names=["id", "v"])
    client.close()
    pids = [member.pid for pidfile in stack.config.run_dir.glob("*.pid")
            if (record := PidFile(pidfile).read()) for member in record.session_members()]
    assert len(pids) >= len(SERVICES)

    stack.contour("down")
    leftovers = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], "contour down left processes behind"
    assert all(st["state"] in ("stopped", "idle") for st in _status(stack).values())

    stack.contour("up")
    client = clickhouse_connect.get_client(host=ep.host, port=ep.port)
    assert client.query("SELECT v FROM smoke.durable WHERE id = 1").result_rows == [(marker,)]
