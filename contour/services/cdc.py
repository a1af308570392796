"""The CDC relays as supervised processes: one ``contour cdc run --source S`` per source."""

from __future__ import annotations

import json
import sys
import time

from contour.services.base import ProcessSpec, Progress, Service

#: a relay rewrites its metrics file every second while streaming (every 10k rows while
#: snapshotting); older than this means it is stuck or reconnecting
STALE_AFTER_S = 15.0


class Cdc(Service):
    name = "cdc"

    @property
    def url(self) -> str:
        return f"sources {', '.join(self.config.cdc_source_names)} → {self.config.kafka_bootstrap}"

    def metrics(self, source: str) -> dict | None:  # type: ignore[type-arg]
        path = self.config.cdc_source(source).state_dir / f"{source}.metrics.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def healthy(self) -> bool:
        now = time.time()
        for source in self.config.cdc_source_names:
            metrics = self.metrics(source)
            if metrics is None or now - metrics["updated_at"] > STALE_AFTER_S:
                return False
        return True

    def processes(self) -> list[ProcessSpec]:
        return [ProcessSpec(
            name=f"cdc-{source}",
            argv=[sys.executable, "-m", "contour", "cdc", "run", "--source", source],
            env=self.config.service_env(PYTHONUNBUFFERED="1"),
        ) for source in self.config.cdc_source_names]

    def _check_port_free(self) -> None:
        """Relays listen on no port."""

    def prepare(self, progress: Progress) -> None:
        self.config.state_dir.joinpath("cdc").mkdir(parents=True, exist_ok=True)
