"""One realtime cycle of the warehouse, in one process (``contour warehouse refresh``).

export ClickHouse increments to staging (unless ``contour export run``, the exporter service,
keeps staging current: a pass here would only repeat its work) → mark the newest source commit
exported → one ``dbt run`` of the realtime selection → record freshness per mart. It is what
the ``contour_realtime`` DAG's ``refresh_marts`` task runs: one task instead of four saves the
start-up of three Airflow task processes and ``contour`` interpreters per cycle (5–6 s each
under load), which was most of a cycle's fixed cost.

Views are not rebuilt every cycle: they only change when the dbt project does. The cycle
includes them when the project's files differ from those of the last cycle that built them
(``ops.dbt_deploys`` holds that fingerprint), and after a failed dbt run (so a missing view is
recreated by the retry); otherwise it excludes them — all but views over a table model (directly
or through other views): rebuilding a table drops it with ``CASCADE``, so those views are
created again in the same run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contour import dbt
from contour.config import Config
from contour.errors import ContourError
from contour.warehouse import connect, ensure_ops, mark_freshness, record_freshness

Progress = Callable[[str], None]
#: the exporter service passes every 2 s (and writes its heartbeat during long chunks)
EXPORTER_ALIVE_S = 15.0
EXPORT_MODES = ("auto", "always", "never")
DEPLOYS_DDL = """
CREATE TABLE IF NOT EXISTS ops.dbt_deploys (
    fingerprint text PRIMARY KEY,
    deployed_at timestamptz NOT NULL DEFAULT now()
)"""


class RefreshError(ContourError):
    """A step of the realtime cycle failed (the message says which)."""


@dataclass
class Refresh:
    """What one cycle did, with the seconds of each step."""

    exported_rows: int = 0
    with_views: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return (f"refreshed in {sum(self.seconds.values()):.1f}s ({steps}); "
                f"{self.exported_rows:,} rows exported"
                + ("; views rebuilt (the dbt project changed)" if self.with_views else ""))


def views_to_skip(manifest_path: Path) -> list[str] | None:
    """The project's views that survive a cycle (no table model upstream of them through
    views), by name; ``None`` without a manifest (no cycle has run here yet)."""
    if not manifest_path.exists():
        return None
    nodes = json.loads(manifest_path.read_text())["nodes"]

    def kind(unique_id: str) -> str | None:
        return nodes.get(unique_id, {}).get("config", {}).get("materialized")

    memo: dict[str, bool] = {}

    def over_a_table(unique_id: str) -> bool:
        if unique_id not in memo:
            memo[unique_id] = False
            memo[unique_id] = any(kind(p) == "table" or (kind(p) == "view" and over_a_table(p))
                                  for p in nodes[unique_id]["depends_on"]["nodes"])
        return memo[unique_id]

    return sorted(n["name"] for u, n in nodes.items()
                  if n["resource_type"] == "model" and kind(u) == "view" and not over_a_table(u))


def _deployed(config: Config, fingerprint: str) -> bool:
    with connect(config) as conn:
        ensure_ops(conn)
        conn.execute(DEPLOYS_DDL)
        conn.commit()
        return conn.execute("SELECT 1 FROM ops.dbt_deploys WHERE fingerprint = %s",
                            (fingerprint,)).fetchone() is not None


def _set_deployed(config: Config, fingerprint: str | None) -> None:
    """Remember the project whose views are built (``None``: forget, views rebuilt next)."""
    with connect(config) as conn:
        conn.execute("DELETE FROM ops.dbt_deploys")
        if fingerprint is not None:
            conn.execute("INSERT INTO ops.dbt_deploys (fingerprint) VALUES (%s)", (fingerprint,))
        conn.commit()


def refresh(config: Config, run_id: str, select: str = "tag:realtime", *,
            export: str = "auto", test_window: str | None = None,
            progress: Progress = print) -> Refresh:
    """Run one cycle; raises :class:`RefreshError` when dbt fails (after recording nothing).
    ``export``: ``always`` runs an export pass, ``never`` none, ``auto`` one unless the
    exporter service wrote its heartbeat within ``EXPORTER_ALIVE_S``. ``test_window`` (an
    interval): ``dbt build`` instead of ``dbt run``, the models' data tests checking the rows
    exported within it (the var ``test_window``, macros/get_where_subquery.sql)."""
    done = Refresh()

    def step(name: str, started: float) -> None:
        done.seconds[name] = time.monotonic() - started

    if export != "never":
        started = time.monotonic()
        from ingestion.export.exporter import export_pass, service_heartbeat_age

        age = service_heartbeat_age(config)
        if export not in EXPORT_MODES:
            raise RefreshError(f"export={export!r}: use one of {', '.join(EXPORT_MODES)}")
        if export == "auto" and age is not None and age < EXPORTER_ALIVE_S:
            progress(f"export: skipped, `contour export run` keeps staging current (its last "
                     f"pass {age:.0f} s ago)")
        else:
            done.exported_rows = sum(export_pass(config, progress=progress).values())
        step("export", started)

    started = time.monotonic()
    for source, ts in mark_freshness(config, run_id).items():
        progress(f"{source}: newest source commit exported {ts}")
    step("mark", started)

    started = time.monotonic()
    fingerprint = dbt.project_fingerprint()
    skip = views_to_skip(dbt.target_path(config) / "manifest.json")
    deployed = _deployed(config, fingerprint)  # (creates ops.dbt_deploys on a new warehouse)
    done.with_views = skip is None or not deployed
    args = ["run", "--select", select] if test_window is None else \
        ["build", "--select", select, "--vars", json.dumps({"test_window": test_window})]
    if not done.with_views and skip:
        args += ["--exclude", *skip]
    progress("+ dbt " + " ".join(args) if done.with_views or not skip else
             f"+ dbt {' '.join(args[:-len(skip) - 1])} --exclude <the {len(skip)} views kept "
             "between cycles>")
    returncode = dbt.run_cycle(config, args, progress)
    step("dbt", started)
    if returncode != 0:
        _set_deployed(config, None)
        raise RefreshError(f"`dbt {' '.join(args)}` exited {returncode} (its output is above); "
                           "the next attempt rebuilds the views too")
    if done.with_views:
        _set_deployed(config, fingerprint)

    started = time.monotonic()
    ages = record_freshness(config, run_id, dbt.target_path(config) / "manifest.json")
    step("record", started)
    if ages:
        mart, age = max(ages, key=lambda a: a[1])
        progress(f"ops.freshness: {len(ages)} marts recorded; the most behind, {mart}, is "
                 f"{age:.1f} s behind the sources")
    progress(done.summary())
    return done
