"""ClickHouse raw increments → PostgreSQL ``warehouse.staging`` (see :mod:`.exporter`)."""

from __future__ import annotations

from pathlib import Path

from contour.config import Config


def heartbeat_path(config: Config) -> Path:
    """The status file ``contour export run`` rewrites after every pass and chunk (the embedded
    service and the docker-compose health check read it)."""
    return config.run_dir / "export.heartbeat"
