"""The end-to-end suite: the real app under gunicorn, driven over HTTP with ``requests``.

One server per test session (shared by every e2e test): a throwaway database (SQLite by
default, PostgreSQL under ``MARKET_TEST_DB=postgres``), seeded by ``market demo --no-serve``,
served by gunicorn on a free loopback port, with localstripe standing in for Stripe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests.conftest import _new_database_url
from tests.e2e import harness
from tests.licenses.conftest import localstripe  # noqa: F401

WEBHOOK_SECRET = "whsec_e2e_suite"

ACCOUNTS = {
    "operator": ("operator@demo.market", "demo-operator-2026"),
    "regulator": ("regulator@demo.market", "demo-regulator-2026"),
    "buyer": ("buyer@demo.market", "demo-buyer-2026"),
    "buyer2": ("buyer2@demo.market", "demo-buyer-2026"),
    "subject": ("subject@demo.market", "demo-subject-2026"),
    "department": ("market-supervision@demo.market", "demo-department-2026"),
    "environment": ("environment@demo.market", "demo-department-2026"),
}


class Api:
    """A ``requests`` session that speaks the API as one account (Bearer token, English)."""

    def __init__(self, base: str, token: str | None = None):
        self.base = base
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.http.request(method, self.base + path, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def ok(self, method: str, path: str, status: int | tuple[int, ...] = (200, 201, 202), **kw):
        """The JSON of a request that must succeed (the body is in the failure message)."""
        r = self.request(method, path, **kw)
        expected = (status,) if isinstance(status, int) else status
        assert r.status_code in expected, f"{method} {path} → {r.status_code}: {r.text[:800]}"
        return r.json() if r.content else None


@dataclass
class Live:
    url: str
    server: harness.LiveServer
    stripe: object
    backend: str
    seed_output: str = ""
    apis: dict[str, Api] = field(default_factory=dict)

    def api(self, role: str) -> Api:
        if role not in self.apis:
            email, password = ACCOUNTS[role]
            r = requests.post(f"{self.url}/api/v1/auth/token",
                              json={"email": email, "password": password}, timeout=30)
            assert r.status_code in (200, 201), r.text
            self.apis[role] = Api(self.url, r.json()["token"])
        return self.apis[role]

    def anonymous(self) -> Api:
        return Api(self.url)


@pytest.fixture(scope="session")
def live(tmp_path_factory, localstripe) -> Iterator[Live]:  # noqa: F811
    """The app under gunicorn on a seeded database of its own; stopped after the session."""
    from tests.conftest import BACKEND

    url, cleanup = _new_database_url(tmp_path_factory, "e2edb")
    instance = tmp_path_factory.mktemp("e2e-instance")
    env = harness.instance_env(
        instance,
        url if BACKEND == "postgres" else None,
        STRIPE_API_KEY=localstripe.api_key,
        STRIPE_API_BASE=localstripe.base_url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        MARKET_QUOTE_RATE_LIMIT="100000 per minute",
        MARKET_SANDBOX_RATE_LIMIT="100000 per minute",
        MARKET_AUDIT_CHECKPOINT_EVERY="25",
    )
    server = None
    try:
        seeded = harness.seed_demo(env, rows=60)
        server = harness.start_gunicorn(env, instance / "gunicorn.log")
        localstripe.register_webhook(
            f"e2e-{harness.free_port()}",
            f"{server.url}/api/v1/payments/stripe/webhook",
            WEBHOOK_SECRET,
            events=["payment_intent.succeeded", "payment_intent.payment_failed"],
        )
        yield Live(server.url, server, localstripe, BACKEND, seeded)
    finally:
        if server is not None:
            server.stop()
        cleanup()


def month(offset: int = 0) -> str:
    """This month (Asia/Shanghai), or ``offset`` months from it, as YYYY-MM."""
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    y, m = divmod(today.year * 12 + today.month - 1 + offset, 12)
    return f"{y:04d}-{m + 1:02d}"
