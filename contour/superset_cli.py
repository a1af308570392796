"""``contour superset sync|export``: dashboards as code, both directions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from contour.config import Config
from contour.superset_access import ensure_marts_role
from contour.superset_assets import ASSETS_DIR, PROJECT_ROOT, export, sync
from contour.superset_screens import render_dashboards

SCREENSHOTS_DIR = PROJECT_ROOT / "docs" / "screenshots"


def cmd_sync(config: Config, args: argparse.Namespace) -> int:
    ensure_marts_role(config)
    result = sync(config, Path(args.assets))
    print(f"superset: imported {result.summary()} from {args.assets} into "
          f"{config.superset_url} (overwriting objects with the same uuid)")
    return 0


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    changed = export(config, Path(args.assets))
    if not changed:
        print(f"superset: {args.assets} already matches {config.superset_url}")
    for rel in changed:
        print(f"wrote {Path(args.assets) / rel}")
    return 0


def cmd_screenshots(config: Config, args: argparse.Namespace) -> int:
    print(f"superset: opening every dashboard of {args.assets} in headless Chromium at "
          f"{config.superset_url} (a minute or two) ...", flush=True)
    renders = render_dashboards(config, Path(args.out), Path(args.assets))
    for r in renders:
        state = "ok" if r.ok else "FAILED"
        print(f"{state:6} {r.slug:24} {r.charts}/{r.expected_charts} charts  {r.png}")
        for error in r.errors:
            print(f"       chart error: {error}")
    return 0 if all(r.ok for r in renders) else 1


def register(sub: Any) -> None:
    """Add ``superset`` with its subcommands to the ``contour`` parser."""
    parser = sub.add_parser(
        "superset", help="dashboards as code: sync YAML into Superset, export UI edits back",
        description="Superset's databases, datasets, charts and dashboards live as YAML in "
                    "superset/assets/ (stable UUIDs). `sync` imports them through the REST API, "
                    "overwriting objects with the same UUID (it also runs on every `contour up` "
                    "of Superset); `export` writes what was edited in the UI back to the files.")
    actions = parser.add_subparsers(dest="superset_command", required=True, metavar="ACTION")

    def assets_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--assets", default=str(ASSETS_DIR), metavar="DIR",
                       help=f"assets folder (default {ASSETS_DIR})")

    p = actions.add_parser(
        "sync", help="import the YAML assets into Superset (idempotent, overwrites)",
        description="Create the read-only marts role if needed, build the import bundle from "
                    "the YAML files and import it with POST /api/v1/assets/import/. Database "
                    "passwords come from the state folder's secrets, never from the files.")
    assets_arg(p)
    p.set_defaults(func=cmd_sync)

    p = actions.add_parser(
        "export", help="write Superset's current objects back to the YAML files",
        description="Export every database, dataset, chart and dashboard with GET "
                    "/api/v1/assets/export/ and write them into the assets folder: files "
                    "matched by UUID are rewritten in place, new objects get new files. Review "
                    "the result with `git diff`.")
    assets_arg(p)
    p.set_defaults(func=cmd_export)

    p = actions.add_parser(
        "screenshots", help="open every dashboard in headless Chromium, save one PNG each",
        description="Log in as the admin, open each dashboard, wait until all its charts have "
                    "rendered, report any chart showing an error, and save "
                    "dashboard_<slug>.png. Exit status 1 when a chart failed. Needs chromium "
                    "and chromedriver (Debian packages chromium, chromium-driver).")
    assets_arg(p)
    p.add_argument("--out", default=str(SCREENSHOTS_DIR), metavar="DIR",
                   help=f"where the PNGs go (default {SCREENSHOTS_DIR})")
    p.set_defaults(func=cmd_screenshots)
