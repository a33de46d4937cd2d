"""The rate limiter's fixed window in one Redis round trip (``market.ratelimit``, issue 14).

Against the local Redis (database 14, its own: the shared-store test in test_rate_limits.py
empties database 15), in a separate process as a gunicorn worker would run: the limit is
still enforced and shared, the ``X-RateLimit-*`` headers are still right, and each limited
request costs one Redis command instead of three. Skipped when Redis does not answer,
unless ``REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from tests.reliability.test_rate_limits import redis_client, run_app_process

REDIS_URL = os.environ.get("ONE_TRIP_REDIS_URL", "redis://127.0.0.1:6379/14")

_WORKER = textwrap.dedent(
    """
    import json, sys, uuid
    from pathlib import Path
    import redis.client
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

    commands = []
    execute = redis.client.Redis.execute_command

    def counting(self, *args, **options):
        commands.append(str(args[0]))
        return execute(self, *args, **options)

    redis.client.Redis.execute_command = counting
    client = app.test_client()
    out = []
    for _ in range(requests):
        before = len(commands)
        r = client.post("/api/v1/auth/token",
                        json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.cn",
                              "password": "wrong-password"},
                        environ_base={"REMOTE_ADDR": "127.0.0.14"})
        out.append({"code": r.status_code, "limit": r.headers.get("X-RateLimit-Limit"),
                    "remaining": r.headers.get("X-RateLimit-Remaining"),
                    "reset": r.headers.get("X-RateLimit-Reset"),
                    "retry_after": r.headers.get("Retry-After"),
                    "commands": commands[before:]})
    print(json.dumps({"strategy": type(limiter.limiter).__name__, "requests": out}))
    """
)


def _redis():
    return redis_client(REDIS_URL)


def _worker(instance: Path, requests: int, migrate: bool) -> dict:
    return run_app_process(_WORKER, instance, requests, migrate, url=REDIS_URL, timeout=180)


def test_one_round_trip_enforced_shared_and_with_correct_headers(tmp_path):
    store = _redis()
    for key in store.scan_iter("LIMITS*"):  # only the limiter's keys, only in database 14
        store.delete(key)
    try:
        started = time.time()
        first = _worker(tmp_path, 7, migrate=True)
        assert first["strategy"] == "OneTripFixedWindow"
        rows = first["requests"]
        assert [r["code"] for r in rows] == [401] * 7
        # The login limit is 10 per minute and per address: after the n-th hit, 10 - n left.
        assert [r["remaining"] for r in rows] == [str(10 - n) for n in range(1, 8)]
        assert {r["limit"] for r in rows} == {"10"}
        for r in rows:
            assert started < int(r["reset"]) <= time.time() + 62
            assert 0 <= int(r["retry_after"]) <= 61
        # One command per request (the script), besides loading the script once.
        assert all(r["commands"] == ["EVALSHA"] for r in rows[1:]), rows
        assert rows[0]["commands"][-1] == "EVALSHA" and len(rows[0]["commands"]) <= 3
        # Another process (another worker) shares the counter and is refused past the limit.
        second = _worker(tmp_path, 5, migrate=False)["requests"]
        assert [r["code"] for r in second] == [401] * 3 + [429] * 2
        assert [r["remaining"] for r in second] == ["2", "1", "0", "0", "0"]
        assert all(r["commands"] == ["EVALSHA"] for r in second[1:]), second
        counters = [int(store.get(key)) for key in store.scan_iter("LIMITS*")]
        assert counters == [12]  # every request hit the one shared counter, refused ones too
        assert all(0 < store.ttl(key) <= 60 for key in store.scan_iter("LIMITS*"))
    finally:
        for key in store.scan_iter("LIMITS*"):
            store.delete(key)


def test_the_app_uses_the_one_trip_window(app):
    from market.extensions import limiter
    from market.ratelimit import OneTripFixedWindow

    assert type(limiter.limiter) is OneTripFixedWindow
