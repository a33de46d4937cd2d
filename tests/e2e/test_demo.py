"""``make demo`` itself: it seeds, then answers on the port it was given."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import requests

from market.csvutil import ERROR_LINE_PREFIX
from tests.e2e import harness
from tests.e2e.conftest import month


@pytest.fixture
def demo_database(tmp_path_factory):
    """``DATABASE_URL`` for the demo (a throwaway PostgreSQL database in the PostgreSQL run),
    or ``None`` for the instance folder's SQLite file."""
    from tests.conftest import BACKEND, _new_database_url

    url, cleanup = _new_database_url(tmp_path_factory, "demodb")
    yield url if BACKEND == "postgres" else None
    cleanup()


def _check_demo_answers(server: harness.LiveServer) -> None:
    r = requests.post(f"{server.url}/api/v1/auth/token", timeout=30,
                      json={"email": "buyer@demo.market", "password": "demo-buyer-2026"})
    assert r.status_code in (200, 201), r.text
    listed = requests.get(f"{server.url}/api/v1/datasets", timeout=30).json()
    assert listed["total"] >= 5, listed
    login = requests.get(f"{server.url}/login", timeout=30)
    assert login.status_code == 200 and "登录" in login.text
    # `market serve`'s Werkzeug server runs a streamed body after the request too.
    r = requests.post(f"{server.url}/api/v1/auth/token", timeout=30,
                      json={"email": "regulator@demo.market", "password": "demo-regulator-2026"})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    for path in ("/api/v1/audit/export.csv", f"/api/v1/revenue/statements.csv?period={month()}"):
        got = requests.get(server.url + path, headers=headers, timeout=60)
        assert got.status_code == 200, (path, got.text[:300])
        lines = got.content.decode("utf-8-sig").splitlines()
        assert len(lines) > 1 and not lines[-1].startswith(ERROR_LINE_PREFIX), path


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_seeds_and_serves_on_port(tmp_path_factory, demo_database):
    """``make demo PORT=… ROWS=…`` with this interpreter's venv: the command people run."""
    venv = Path(sys.executable).parent.parent
    if not (venv / ".installed").exists():
        pytest.skip(f"{venv} was not made by `make install` (no .installed marker)")
    instance = tmp_path_factory.mktemp("make-demo")
    env = harness.instance_env(instance, demo_database)
    port = harness.free_port()
    # -o: never re-install into the (shared) venv from a test, whatever the timestamps say.
    command = ["make", "--no-print-directory", "-o", str(venv / ".installed"), "demo",
               f"VENV={venv}", f"PORT={port}", "ROWS=60"]
    server = None
    try:
        server = harness.start_process(command, env, instance / "demo.log", port)
        _check_demo_answers(server)
        assert f"http://127.0.0.1:{port}" in server.log_text()
    finally:
        if server is not None:
            server.stop()
