"""Open each dashboard in headless Chromium, wait for its charts, report errors, save a PNG.

Run with the Superset environment's Python (Selenium comes with Superset)::

    .venvs/superset/bin/python contour/superset_browser.py URL USER OUTDIR SLUG=CHARTS...

``contour superset screenshots`` runs it for every dashboard in the assets.

The password is read from the environment (``CONTOUR_BROWSER_PASSWORD``), never from argv.
Prints one JSON line per dashboard: ``{"slug", "charts", "errors", "png", "seconds"}``; the
exit code is 0 when it could drive the browser at all (the caller judges the results).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1600,2600"]
CHART = '[data-test="chart-grid-component"]'
LOADING = '[data-test="loading-indicator"]'
ERROR = '.ant-alert-error, [data-test="error-message"], .alert-danger'


def driver(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.binary_location = os.environ.get("CONTOUR_CHROMIUM", "/usr/bin/chromium")
    service = Service(os.environ.get("CONTOUR_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def login(browser: webdriver.Chrome, url: str, user: str, password: str,
          attempts: int = 3) -> None:
    """Sign in, and check that the session holds. The login page's own event-log request can
    race the form: sent with the anonymous cookie, it is redirected to the login page, whose
    answer replaces the new session's cookie — the next page is the login page again (seen
    once in CI: every dashboard then timed out). So: sign in again until the API knows us."""
    for attempt in range(1, attempts + 1):
        browser.get(url + "/login/")
        wait = WebDriverWait(browser, 60)
        name = wait.until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, 'input[data-test="username-input"], input#username')))
        name.send_keys(user)
        secret = browser.find_element(By.CSS_SELECTOR, 'input[type="password"]')
        secret.send_keys(password, Keys.ENTER)
        wait.until(lambda b: "/login" not in b.current_url)
        time.sleep(2)  # let the page's own requests finish before checking the session
        browser.get(url + "/api/v1/me/")
        if f'"username":"{user}"' in browser.page_source.replace(" ", ""):
            return
        print(f"login attempt {attempt}: the session did not hold", file=sys.stderr)
    raise RuntimeError(f"signed in {attempts} times as {user!r}, the session never held")


def rendered(holder: object) -> bool:
    """The chart drew something: a canvas/svg (ECharts), a table, or text (a big number, an
    empty-result message) inside its container — an empty container is still loading."""
    for container in holder.find_elements(By.CSS_SELECTOR, '[data-test="chart-container"]'):
        if container.find_elements(By.CSS_SELECTOR, "canvas, svg, table") or \
                container.text.strip():
            return True
    return False


def charts_done(browser: webdriver.Chrome, expected: int) -> bool:
    holders = browser.find_elements(By.CSS_SELECTOR, CHART)
    if len(holders) < expected:
        return False
    for holder in holders:
        if holder.find_elements(By.CSS_SELECTOR, LOADING):
            return False
        if not (rendered(holder) or holder.find_elements(By.CSS_SELECTOR, ERROR)):
            return False
    return True


def check(browser: webdriver.Chrome, url: str, slug: str, expected: int, outdir: Path,
          relogin: Callable[[], None]) -> dict:
    started = time.monotonic()
    browser.get(f"{url}/superset/dashboard/{slug}/")
    if "/login" in browser.current_url:  # the session was lost: sign in again, once
        relogin()
        browser.get(f"{url}/superset/dashboard/{slug}/")
    WebDriverWait(browser, 180, poll_frequency=1).until(lambda b: charts_done(b, expected))
    time.sleep(2)  # let the last animations settle before the screenshot
    errors = []
    for holder in browser.find_elements(By.CSS_SELECTOR, CHART):
        for alert in holder.find_elements(By.CSS_SELECTOR, ERROR):
            errors.append(alert.text.strip()[:300] or "(error without text)")
    png = outdir / f"dashboard_{slug}.png"
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1600, max(1200, min(int(height) + 100, 6000)))
    browser.save_screenshot(str(png))
    return {"slug": slug, "charts": len(browser.find_elements(By.CSS_SELECTOR, CHART)),
            "errors": errors, "png": str(png), "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str]) -> int:
    url, user, outdir = argv[0].rstrip("/"), argv[1], Path(argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    password = os.environ["CONTOUR_BROWSER_PASSWORD"]
    with tempfile.TemporaryDirectory(prefix="contour-chromium-") as profile:
        browser = driver(profile)
        try:
            login(browser, url, user, password)
            for spec in argv[3:]:
                slug, expected = spec.split("=")
                try:
                    result = check(browser, url, slug, int(expected), outdir,
                                   lambda: login(browser, url, user, password))
                except Exception as exc:  # noqa: BLE001 - reported to the test, with a PNG
                    png = outdir / f"dashboard_{slug}.failed.png"
                    browser.save_screenshot(str(png))
                    result = {"slug": slug, "charts": -1, "png": str(png),
                              "errors": [f"{type(exc).__name__}: {str(exc)[:300]}"]}
                print(json.dumps(result), flush=True)
        finally:
            browser.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
