"""Embedded ClickHouse: one owner process holding a persistent chdb session, serving HTTP."""

from __future__ import annotations

import sys

from contour.services.base import ProcessSpec, Progress, Service, http_get


class ClickHouse(Service):
    name = "clickhouse"

    @property
    def url(self) -> str:
        return self.config.clickhouse_url

    def healthy(self) -> bool:
        body = http_get(self.config.clickhouse_url + "/ping", timeout=2)
        return body is not None and body.strip() == b"Ok."

    def processes(self) -> list[ProcessSpec]:
        ep = self.config.clickhouse_endpoint
        return [ProcessSpec(
            name="clickhouse",
            argv=[sys.executable, "-m", "contour.clickhouse_http",
                  "--path", str(self.config.data_dir("clickhouse") / "data"),
                  "--host", ep.host, "--port", str(ep.port)],
            env=self.config.service_env(
                CONTOUR_CLICKHOUSE_READER_PASSWORD=self.config.secrets.get(
                    "clickhouse_reader_password")),
        )]

    def prepare(self, progress: Progress) -> None:
        self.config.data_dir("clickhouse").mkdir(parents=True, exist_ok=True)
