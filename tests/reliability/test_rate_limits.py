"""Rate limits: what is limited, what a 429 looks like, and Redis as the shared store.

In-process tests switch the limiter on with the ``rate_limits`` fixture (in-memory storage,
fresh counters) and lower the configurable limits. The Redis test runs the app in two
separate processes, as two gunicorn workers would be, with ``REDIS_URL`` pointing at database
15 of the local Redis: the second process sees the first one's requests. It is skipped when
Redis does not answer, unless ``REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reliability.test_bad_input import assert_envelope

REDIS_URL = os.environ.get("RELIABILITY_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def _rate_limited_events(db) -> list:
    from market.audit.models import AuditEvent

    return db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "access.rate_limited")
    ).all()


def test_a_429_is_the_envelope_and_is_audited(app, client, rate_limits):
    from market.extensions import db

    statuses = []
    # A different name each time: this is the per-address limit, not the per-account backoff.
    for n in range(11):
        r = client.post("/api/v1/auth/token", json={"email": f"nobody{n}@example.cn",
                                                     "password": "wrong-password"})
        statuses.append(r.status_code)
    assert statuses == [401] * 10 + [429]
    body = assert_envelope(r, 429)
    assert "slow down" in body["message"]
    assert r.headers.get("Retry-After")
    events = _rate_limited_events(db)
    assert len(events) == 1
    assert events[0].data == {"method": "POST", "path": "/api/v1/auth/token"}


def test_the_login_form_is_limited(client, rate_limits):
    from tests.accounts.test_web import csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"email": f"nobody{n}@example.cn", "password": "x" * 12,
                                         "csrf_token": token}).status_code for n in range(11)]
    assert codes[-1] == 429 and 429 not in codes[:10], codes


@pytest.mark.parametrize(
    ("setting", "path", "caller", "body"),
    [
        ("MARKET_QUOTE_RATE_LIMIT", "/api/v1/quotes", "buyer",
         lambda w: {"items": [{"dataset_id": w.of("A", "dataset_listed"), "columns": None}],
                    "duration_months": 6, "purpose": "research", "query_quota": 10}),
        ("MARKET_SANDBOX_RATE_LIMIT", "/api/v1/sandbox/{license}/queries", "buyer",
         lambda w: {"sql": "SELECT 1"}),
        ("MARKET_LOOKUP_RATE_LIMIT", "/api/v1/lookups", "buyer",
         lambda w: {"license_id": w.of("A", "license_active"),
                    "subject_credit_code": w.of("A", "subject_code")}),
    ],
    ids=["quotes", "sandbox queries", "lookups"],
)
def test_the_costly_endpoints_are_limited_per_user(app, client, world, rate_limits, monkeypatch,
                                                   setting, path, caller, body):
    monkeypatch.setitem(app.config, setting, "3 per minute")
    path = path.replace("{license}", str(world.of("A", "license_active")))
    codes = [client.post(path, json=body(world), headers=world.caller(caller)).status_code
             for _ in range(4)]
    assert 429 not in codes[:3] and codes[3] == 429, codes
    # Another user of another organization has counters of its own.
    other = client.post(path, json=body(world), headers=world.caller("operator"))
    assert other.status_code != 429


def test_uploads_are_limited(client, callers, rate_limits):
    codes = []
    for _ in range(40):
        r = client.post(
            "/api/v1/datasets",
            data={"metadata": "{}", "file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
            content_type="multipart/form-data",
            headers=callers.caller("department"),
        )
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert 429 in codes, codes


# ------------------------------------------------------------------------------- Redis

_WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from tests.conftest import TEST_SECRETS

    instance, requests, migrate = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    from market import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'market.db'}",
                      "INSTANCE_PATH": str(instance), "SESSION_COOKIE_SECURE": False,
                      "MARKET_JOB_RUNNER": "inline", **TEST_SECRETS})
    if migrate:
        from flask_migrate import upgrade
        with app.app_context():
            upgrade()
    from market.extensions import limiter
    client = app.test_client()
    import uuid
    codes = [client.post("/api/v1/auth/token",
                         json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.cn",
                               "password": "wrong-password"},
                         environ_base={"REMOTE_ADDR": "127.0.0.9"}).status_code
             for _ in range(requests)]
    print(json.dumps({"storage": type(limiter.storage).__name__,
                      "uri": app.config["RATELIMIT_STORAGE_URI"], "codes": codes}))
    """
)


def redis_client(url: str = REDIS_URL):
    """A client of the Redis database ``url``; the test is skipped (failed under
    ``REQUIRE_REDIS=1``) when Redis does not answer."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        return client
    except Exception as exc:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but Redis does not answer at {url}: {exc}")
        pytest.skip(f"Redis does not answer at {url} (set REQUIRE_REDIS=1 to fail)")


def run_app_process(script: str, instance: Path, requests: int, migrate: bool, *,
                    url: str = REDIS_URL, timeout: float = 120) -> dict:
    """Run ``script`` (an app in its own process, its limiter on Redis ``url``) and return the
    JSON of its last output line."""
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script, str(instance), str(requests), "1" if migrate else "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _redis():
    return redis_client()


def _worker(instance: Path, requests: int, migrate: bool) -> dict:
    return run_app_process(_WORKER, instance, requests, migrate)


def test_redis_is_the_shared_store_when_configured(tmp_path):
    store = _redis()
    for key in store.scan_iter("LIMITS*"):  # only the limiter's keys, only in database 15
        store.delete(key)
    first = _worker(tmp_path, 6, migrate=True)
    assert first["storage"] == "RedisStorage" and first["uri"] == REDIS_URL
    assert first["codes"] == [401] * 6
    assert any(True for _ in store.scan_iter("LIMITS*")), "no counter was written to Redis"
    # A second process (another worker) shares the counters: 10 per minute in all.
    second = _worker(tmp_path, 6, migrate=False)
    assert second["codes"] == [401] * 4 + [429] * 2
    for key in store.scan_iter("LIMITS*"):
        store.delete(key)


def test_memory_is_the_default_store(app, monkeypatch):
    from market.config import build_config

    monkeypatch.delenv("REDIS_URL", raising=False)
    config = build_config(Path(app.instance_path), {k: app.config[k] for k in (
        "MARKET_SECRET_KEY", "MARKET_PSEUDONYM_KEY", "MARKET_SIGNING_KEY")})
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
