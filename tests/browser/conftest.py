"""Headless Chromium (Debian's package) driven by Playwright, against a live server.

Without Chromium the browser suite is skipped with a plain message, unless
``REQUIRE_BROWSER=1`` (CI), under which a missing browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from market.devserver import make_dev_server
from tests.conftest import _clone_database_url, make_test_app

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser() -> None:
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {message}")
    pytest.skip(f"browser suite skipped: {message}")


@pytest.fixture(scope="session")
def _seeded_demo(tmp_path_factory, migrated_template):
    """The demo (200 enterprises) seeded once per worker: each module's server starts from a
    copy of this database and instance folder, so modules still never see each other's
    changes, without paying for the seeding again."""
    _require_browser()
    url, cleanup = _clone_database_url(tmp_path_factory, migrated_template, "browser-seed")
    instance = tmp_path_factory.mktemp("browser-seed-instance")
    app = make_test_app(url, instance)
    with app.app_context():
        from market.demo_seed import seed_demo
        from market.extensions import db

        accounts = seed_demo(rows=200).accounts
        db.session.remove()
        db.engine.dispose()
    yield url, instance, accounts
    cleanup()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, _seeded_demo):
    """The app served on a free loopback port, seeded with the demo accounts."""
    _require_browser()
    seeded_url, seeded_instance, accounts = _seeded_demo
    url, cleanup = _clone_database_url(tmp_path_factory, seeded_url, "browserdb")
    instance = tmp_path_factory.mktemp("browser-instance")
    shutil.copytree(seeded_instance, instance, dirs_exist_ok=True)
    app = make_test_app(url, instance)
    server = make_dev_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "accounts": list(accounts),
               "app": app}
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            from market.extensions import db

            db.engine.dispose()
        cleanup()


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, output_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    pg = context.new_page()
    # Generous: under CI the other xdist worker may be starting gunicorn, Celery or Spark.
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def shot(output_dir):
    """``shot(page, name)`` saves a screenshot under test-output/screenshots/."""
    folder = output_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(pg, name: str) -> Path:
        path = folder / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    return take
