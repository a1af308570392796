"""Render every dashboard in headless Chromium: errors per chart and one PNG per dashboard.

Used by ``contour superset screenshots`` (the README's pictures) and by the browser test. The
browser itself is driven by ``contour/superset_browser.py`` in the Superset environment, where
Selenium is installed; this module only builds its arguments and reads its JSON lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contour.config import Config
from contour.errors import ContourError
from contour.superset_assets import ASSETS_DIR, Assets
from contour.superset_layout import chart_placeholders

BROWSER_SCRIPT = Path(__file__).with_name("superset_browser.py")
CHROMIUM = os.environ.get("CONTOUR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONTOUR_CHROMEDRIVER", "/usr/bin/chromedriver")


@dataclass(frozen=True)
class DashboardRender:
    """What the browser saw on one dashboard."""

    slug: str
    expected_charts: int
    charts: int
    errors: tuple[str, ...]
    png: Path
    seconds: float | None

    @property
    def ok(self) -> bool:
        return not self.errors and self.charts == self.expected_charts


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None when Chromium and its driver are installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not found: install them (Debian: apt-get install -y "
            "chromium chromium-driver; `python3 bootstrap.py test` does it as root) or point "
            "CONTOUR_CHROMIUM / CONTOUR_CHROMEDRIVER at them")


def render_dashboards(config: Config, outdir: Path, assets_dir: Path = ASSETS_DIR,
                      timeout: float = 1200) -> list[DashboardRender]:
    """Log in as the admin, open each dashboard (by title), wait for its charts, save PNGs."""
    reason = browser_missing()
    if reason:
        raise ContourError(reason)
    dashboards = sorted(Assets.load(assets_dir).by_uuid("dashboards").values(),
                        key=lambda d: d["dashboard_title"])
    expected = {d["slug"]: len(chart_placeholders(d["layout"])) for d in dashboards}
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [str(config.venv_bin("superset", "python")), str(BROWSER_SCRIPT),
             config.superset_url, config.admin_user, str(outdir),
             *(f"{slug}={n}" for slug, n in expected.items())],
            env={**os.environ, "CONTOUR_BROWSER_PASSWORD": config.admin_password(),
                 "CONTOUR_CHROMIUM": CHROMIUM, "CONTOUR_CHROMEDRIVER": CHROMEDRIVER},
            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ContourError(f"the browser did not finish {len(expected)} dashboards in "
                           f"{timeout:.0f} s; is Superset at {config.superset_url} "
                           "answering? (`contour status`)") from exc
    reports = {r["slug"]: r for r in (json.loads(line) for line in result.stdout.splitlines()
                                      if line.startswith("{"))}
    if result.returncode != 0 or not reports:
        raise ContourError(f"the browser failed (exit {result.returncode}) against "
                           f"{config.superset_url}:\n{result.stderr[-3000:]}")
    return [DashboardRender(
        slug=slug, expected_charts=n, charts=reports.get(slug, {}).get("charts", -1),
        errors=tuple(reports.get(slug, {}).get("errors", ["the browser never reported it"])),
        png=Path(reports.get(slug, {}).get("png", outdir / f"dashboard_{slug}.png")),
        seconds=reports.get(slug, {}).get("seconds")) for slug, n in expected.items()]
