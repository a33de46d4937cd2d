"""#17.4: two app servers (gunicorn, different ports) sharing PostgreSQL, Redis and a worker.

The main flow and concurrent load are driven across both servers over HTTP. Checked exactly:
an upload on one server is processed by the shared Celery worker and seen on the other; of
twelve concurrent sandbox queries on one license with a quota of 6, split across the servers,
exactly six are answered and the quota ends at 0, never below; the privacy budget is charged
exactly six times; the sandbox rate limit (10 per minute per user) is shared through Redis,
so exactly two of the twelve are refused by it, whichever server they hit; the audit log is
one valid chain. PostgreSQL only (``MARKET_TEST_DB=postgres``): two servers on one SQLite file
are not a deployment.

The payment flow across the two servers (one ledger journal per settlement, splits that sum
to the total, webhooks delivered to both) is ``test_two_servers_payments``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest

from tests.conftest import BACKEND, PASSWORD, TEST_SECRETS
from tests.datasets.conftest import csv_bytes, metadata, multipart, sample_rows
from tests.e2e import harness
from tests.sandbox_app import data
from tests.scale.conftest import celery_env, start_worker

QUOTA = 6
RATE = 10
CALLS = 12


def _call(base: str, method: str, path: str, token: str, body: bytes | None = None,
          content_type: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(base + path, data=body, method=method, headers={
        "Authorization": f"Bearer {token}", "Accept-Language": "en", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _seed(app):
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.extensions import db
    from tests.datasets.test_crash_recovery import _credit_code

    system = Actor.system("test")
    with app.app_context():
        buyer = data.org(db.session, "buyer")
        user = accounts.create_user(db.session, system, email="two@buyer.sandbox.example.cn",
                                    password=PASSWORD, organization_id=buyer.id, check=False)
        ds = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "loans")
        lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=QUOTA)
        buyer_token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        dept = accounts.create_organization(db.session, system, name="双服务器测试局",
                                            kind="department", credit_code=_credit_code(),
                                            check=False)
        clerk = accounts.create_user(db.session, system, email="two@department.example.cn",
                                     password=PASSWORD, organization_id=dept.id, check=False)
        dept_token, _ = accounts.issue_token(db.session, clerk, dt.timedelta(hours=1))
        db.session.commit()
        return lic.id, buyer_token, dept_token


def _gunicorn(env: dict[str, str], log) -> harness.LiveServer:
    """harness.start_gunicorn with a longer start-up wait (a loaded 2-core machine)."""
    import subprocess
    import sys

    port = harness.free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{harness.HOST}:{port}",
             "--workers", "2", "--worker-class", "gthread", "--threads", "4",
             "--timeout", "180", "--graceful-timeout", "5", "--access-logfile", "-",
             "market:create_app()"],
            env=env, cwd=harness.ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{harness.HOST}:{port}"
    harness.wait_http(f"{url}/api/v1/health", proc, log, timeout=240)
    return harness.LiveServer(url, port, proc, log, env)


@pytest.fixture
def two_servers(celery_available, live_app, tmp_path):
    if BACKEND != "postgres":
        pytest.skip("SKIPPED: two app servers share PostgreSQL: runs under MARKET_TEST_DB=postgres")
    import redis

    db_index = random.randint(8, 15)
    limits = redis.Redis.from_url(f"redis://127.0.0.1:6379/{db_index}")
    for key in limits.scan_iter(match="LIMITER*"):
        limits.delete(key)
    license_id, buyer_token, dept_token = _seed(live_app)
    env = celery_env(harness.instance_env(
        tmp_path / "instance", live_app.config["SQLALCHEMY_DATABASE_URI"],
        MARKET_DATA_DIR=live_app.config["MARKET_DATA_DIR"],
        MARKET_UPLOAD_RATE_LIMIT="1000 per hour",
        MARKET_SANDBOX_RATE_LIMIT=f"{RATE} per minute",
        MARKET_SANDBOX_TIMEOUT_S="120",
        MARKET_SANDBOX_WORKERS="1",
        **TEST_SECRETS,
    ))
    env["REDIS_URL"] = f"redis://127.0.0.1:6379/{db_index}"
    worker = start_worker(env, tmp_path / "worker.log", queue=env["MARKET_CELERY_QUEUE"])
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(_gunicorn(env, tmp_path / f"gunicorn-{name}.log"))
        yield servers, license_id, buyer_token, dept_token
    finally:
        for server in servers:
            server.stop()
        worker.stop()


def test_two_servers_one_system_of_record(two_servers, live_app):
    (a, b), license_id, buyer_token, dept_token = two_servers
    assert a.port != b.port

    # Main flow: upload on A, processed by the shared worker, seen on B.
    body, ctype = multipart([("metadata", json.dumps(metadata(), ensure_ascii=False)),
                             ("file", (csv_bytes(sample_rows(60)), "rows.csv"))])
    status, accepted = _call(a.url, "POST", "/api/v1/datasets", dept_token, body, ctype)
    assert status == 202, accepted
    path = f"/api/v1/datasets/{accepted['id']}/versions/{accepted['version']}/status"
    deadline = time.monotonic() + 120
    while True:
        status, st = _call(b.url, "GET", path, dept_token)
        assert status == 200, st
        if st["status"] != "processing":
            break
        assert time.monotonic() < deadline, "never processed"
        time.sleep(0.3)
    assert st["status"] == "pending_review", st

    # Concurrent load across both servers on one license.
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def ask(i: int) -> None:
        server = (a, b)[i % 2]
        sql = (f"SELECT district, COUNT(*) AS n FROM loans WHERE industry <> 'x{i}' "
               "GROUP BY district")
        out = _call(server.url, "POST", f"/api/v1/sandbox/{license_id}/queries", buyer_token,
                    json.dumps({"sql": sql}).encode())
        with lock:
            results.append(out)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(CALLS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = [body for status, body in results if status == 200]
    refused = [(status, body) for status, body in results if status != 200]
    assert all(status == 429 for status, _ in refused), refused
    rate_limited = [body for _, body in refused if "quota" not in json.dumps(body).lower()]
    assert len(rate_limited) == CALLS - RATE, refused
    assert len(answered) == QUOTA, (len(answered), refused)

    import sqlalchemy as sa

    from licenses.models import License
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    with live_app.app_context():
        db.session.expire_all()
        assert db.session.scalar(
            sa.select(License.quota_remaining).where(License.id == license_id)) == 0
        remaining = min(Decimal(str(r["privacy_budget_remaining"])) for r in answered)
        spent = Decimal(str(answered[0]["privacy"]["epsilon_spent"]))
        budget = Decimal(str(answered[0]["privacy"]["budgets"][0]["epsilon_budget"]))
        assert remaining == budget - QUOTA * spent
        verdict = verify_chain(db.session, public_keys())
        assert verdict.valid, verdict.to_dict()
        db.session.remove()
    assert os.path.exists(a.log) and os.path.exists(b.log)
