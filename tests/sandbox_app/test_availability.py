"""Availability over the wire: while three 10-second sandbox queries run on a real server
(gunicorn, threaded worker, own database, a free loopback port), health and the catalogue
answer at once, and so does a login (which writes). On SQLite that proves no write lock is
held during the engine run (every transaction there is ``BEGIN IMMEDIATE``); on PostgreSQL,
that no connection and no row lock is. Run with ``MARKET_TEST_DB=postgres`` too.

The 10-second queries come from a test-only engine seam (``tests/sandbox_app/slow_server.py``):
it sleeps 10 s, then runs the query on the real DuckDB engine, and fails the request if the
session holds a transaction while the engine runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from tests.conftest import PASSWORD, TEST_SECRETS
from tests.sandbox_app import data

ROOT = Path(__file__).resolve().parents[2]
SLOW_S = 10.0
GUNICORN = Path(os.environ.get("VIRTUAL_ENV", "/work/main/.venv")) / "bin" / "gunicorn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(app) -> tuple[int, str, str]:
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.extensions import db

    with app.app_context():
        buyer = data.org(db.session, "buyer")
        user = accounts.create_user(
            db.session,
            Actor.system("test"),
            email=f"avail{buyer.id}@buyer.sandbox.example.cn",
            password=PASSWORD,
            organization_id=buyer.id,
            check=False,
        )
        ds = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "loans")
        lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=50)
        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        return lic.id, token, user.email


def _call(url: str, *, body: dict | None = None, token: str | None = None, timeout=60):
    headers = {"Content-Type": "application/json", "Accept-Language": "en"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), headers=headers
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    return status, payload, time.perf_counter() - started


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


def test_three_slow_queries_never_block_health_the_catalogue_or_a_login(live_app, tmp_path):
    license_id, token, email = _seed(live_app)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": live_app.config["INSTANCE_PATH"]
        if "INSTANCE_PATH" in live_app.config
        else str(Path(live_app.instance_path)),
        "MARKET_DATA_DIR": live_app.config["MARKET_DATA_DIR"],
        "SESSION_COOKIE_SECURE": False,
        "MARKET_JOB_RUNNER": "inline",
        "MARKET_SANDBOX_WORKERS": 3,
        "MARKET_SANDBOX_TIMEOUT_S": 30,
        **TEST_SECRETS,
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SBX_SLOW_CONFIG": json.dumps(config),
        "SBX_SLOW_SECONDS": str(SLOW_S),
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        # Sync workers, one request each: three hold the slow queries, the others serve the
        # rest. (With gunicorn 27's gthread worker a new connection sometimes waited, undispatched
        # with idle threads, until another connection's event woke the loop: py-spy showed no
        # thread handling it, so that was the server's dispatch, not a lock of ours.)
        [str(GUNICORN), "-k", "sync", "-w", "6", "--timeout", "120",
         "--graceful-timeout", "2",
         "-b", f"127.0.0.1:{port}", "tests.sandbox_app.slow_server:create()"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call(base + "/api/v1/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        for _ in range(3):  # warm both paths (imports, first connections)
            _call(base + "/api/v1/health")
            _call(base + "/api/v1/datasets")
        # Start the engine's DuckDB workers (a query without the seam's marker is not slowed).
        warm = "SELECT COUNT(*) AS n FROM loans WHERE industry <> 'warm'"
        assert _call(f"{base}/api/v1/sandbox/{license_id}/queries", body={"sql": warm},
                     token=token)[0] == 200

        results: list[tuple[int, bytes, float]] = []

        def slow_query(i: int) -> None:
            sql = (
                f"SELECT district, COUNT(*) AS n FROM loans WHERE industry <> 'slow{i}' "
                "GROUP BY district"
            )
            results.append(
                _call(f"{base}/api/v1/sandbox/{license_id}/queries", body={"sql": sql},
                      token=token)
            )

        runners = [threading.Thread(target=slow_query, args=(i,)) for i in range(3)]
        started = time.monotonic()
        for t in runners:
            t.start()
        time.sleep(1.0)  # the three are past step (a), inside the engine
        health, catalogue = [], []
        # Stop early enough that the login below (argon2: slow on a busy machine) still ends
        # while the three queries run.
        while time.monotonic() - started < SLOW_S - 4.0:
            status, _, elapsed = _call(base + "/api/v1/health")
            assert status == 200
            health.append(elapsed)
            status, _, elapsed = _call(base + "/api/v1/datasets")
            assert status == 200
            catalogue.append(elapsed)
        # A login writes (a token row, an audit event): no lock stops it either.
        status, _, login_s = _call(
            base + "/api/v1/auth/token", body={"email": email, "password": PASSWORD}
        )
        assert status == 201
        queries_still_running = time.monotonic() - started < SLOW_S
        for t in runners:
            t.join(timeout=90)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
    server_log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    assert [r[0] for r in results] == [200, 200, 200], (results, server_log[-3000:])
    assert all(r[2] >= SLOW_S for r in results)
    assert queries_still_running
    assert len(health) >= 10 and len(catalogue) >= 10
    assert _p95(health) < 0.2, sorted(health)[-5:]
    assert _p95(catalogue) < 0.2, sorted(catalogue)[-5:]
    assert login_s < 2.0, login_s
