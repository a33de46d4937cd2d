"""#14.5: brute force. Per-account backoff shared by the form and the API (and by every app
server: it lives in the database), audited, and never a long lockout; the client address and
scheme come from the trusted proxy (``MARKET_TRUSTED_PROXIES``) and https gets HSTS."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.accounts.test_web import csrf_from
from tests.conftest import PASSWORD


def _api(client, email, password="wrong-password", ip="10.0.0.1"):
    return client.post("/api/v1/auth/token", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def _form(client, email, password="wrong-password", ip="10.0.0.2"):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def _events(type_: str) -> list:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)).all()


def _unblock(email: str | None = None) -> None:
    """Let the current block run out (as if its seconds had passed)."""
    from market.accounts.models import LoginThrottle
    from market.extensions import db

    for row in db.session.scalars(sa.select(LoginThrottle)).all():
        if row.blocked_until is not None:
            row.blocked_until = row.blocked_until - dt.timedelta(hours=1)
    db.session.commit()


def test_the_form_and_the_api_share_one_backoff_per_account(app, client, make_user):
    """Five wrong passwords, from different addresses and both entrances; the sixth attempt,
    even with the right password, waits (429, Retry-After) and is audited."""
    free = app.config["MARKET_LOGIN_FREE_ATTEMPTS"]
    user = make_user("regulator")
    codes = []
    for n in range(free):
        send = _api if n % 2 else _form
        codes.append(send(client, user.email, ip=f"10.1.0.{n}").status_code)
    assert codes == [401] * free
    for send in (_api, _form):
        r = send(client, user.email, password=PASSWORD, ip="10.9.9.9")
        assert r.status_code == 429, r.get_data(as_text=True)[:300]
        assert int(r.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in _api(client, user.email).get_json()["message"]
    events = _events("auth.login_throttled")
    assert len(events) == 3
    assert {str(e.subject_id) for e in events} == {str(user.id)}
    assert all(user.email not in str(e.data) for e in events)
    # Another account is not affected by this one's backoff.
    other = make_user("buyer")
    assert _api(client, other.email, password=PASSWORD).status_code == 201


def test_the_block_runs_out_and_a_success_resets_the_count(app, client, make_user):
    free = app.config["MARKET_LOGIN_FREE_ATTEMPTS"]
    user = make_user("buyer")
    for _ in range(free):
        _api(client, user.email)
    assert _api(client, user.email, password=PASSWORD).status_code == 429
    _unblock()
    assert _api(client, user.email, password=PASSWORD).status_code == 201
    # Reset: the next failures start from zero again.
    assert [_api(client, user.email).status_code for _ in range(free)] == [401] * free


def test_unknown_names_back_off_exactly_like_known_ones(app, client):
    """The throttle reveals nothing about which accounts exist."""
    free = app.config["MARKET_LOGIN_FREE_ATTEMPTS"]
    codes = [_api(client, "nobody-here@example.cn").status_code for _ in range(free + 1)]
    assert codes == [401] * free + [429]


def test_the_backoff_doubles_and_is_capped(app, client, make_user):
    """Each failure past the free ones doubles the block, up to the cap: an attacker who
    keeps guessing keeps the owner waiting at most MARKET_LOGIN_BACKOFF_MAX_SECONDS."""
    from market.accounts.models import LoginThrottle
    from market.extensions import db

    free, cap = app.config["MARKET_LOGIN_FREE_ATTEMPTS"], app.config["MARKET_LOGIN_BACKOFF_MAX_SECONDS"]
    user = make_user("buyer")
    waits = []
    for _ in range(free + 12):
        r = _api(client, user.email)
        if r.status_code == 429:
            _unblock()
            r = _api(client, user.email)
        assert r.status_code == 401
        row = db.session.scalars(sa.select(LoginThrottle)).one()
        waits.append(0 if row.blocked_until is None
                     else round((row.blocked_until - row.last_failure_at).total_seconds()))
    assert waits[: free - 1] == [0] * (free - 1)
    assert waits[free - 1 : free + 4] == [1, 2, 4, 8, 16]
    assert max(waits) == cap and waits[-1] == cap


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0), (4, 0), (5, 1), (6, 2), (10, 32), (13, 256), (14, 300), (10_000, 300)],
)
def test_backoff_seconds(failures, wait):
    from market.accounts.sessions import ThrottlePolicy, backoff_seconds

    assert backoff_seconds(failures, ThrottlePolicy(free=5, max_seconds=300)) == wait


def test_old_failures_are_forgotten(app, client, make_user):
    from market.accounts.models import LoginThrottle
    from market.extensions import db

    free = app.config["MARKET_LOGIN_FREE_ATTEMPTS"]
    user = make_user("buyer")
    for _ in range(free - 1):
        _api(client, user.email)
    row = db.session.scalars(sa.select(LoginThrottle)).one()
    row.last_failure_at = row.last_failure_at - dt.timedelta(hours=2)
    db.session.commit()
    assert _api(client, user.email).status_code == 401
    db.session.refresh(row)
    assert row.failures == 1 and row.blocked_until is None


# ---------------------------------------------------------------- proxies and HSTS


def test_without_trusted_proxies_forwarded_headers_are_ignored(app, client):
    r = client.get("/login", headers={"X-Forwarded-Proto": "https",
                                      "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" not in r.headers


def test_behind_one_trusted_proxy_https_gets_hsts(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MARKET_TRUSTED_PROXIES", 1)
    r = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    r = client.get("/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in r.headers


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "addr"),
    [
        (0, "198.51.100.7, 203.0.113.9", "127.0.0.1"),
        # Only the last hop's entry is believed: a client cannot choose its own address.
        (1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.7, 203.0.113.9", "198.51.100.7"),
    ],
)
def test_the_client_address_comes_from_the_trusted_hops_only(app, monkeypatch, hops,
                                                             forwarded_for, addr):
    from werkzeug.test import EnvironBuilder

    from market import TrustedProxies

    seen = {}

    def inner(environ, start_response):
        seen["addr"], seen["scheme"] = environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]
        start_response("204 No Content", [])
        return []

    monkeypatch.setitem(app.config, "MARKET_TRUSTED_PROXIES", hops)
    environ = EnvironBuilder(path="/", headers={"X-Forwarded-For": forwarded_for,
                                                "X-Forwarded-Proto": "https, https"},
                             environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
    TrustedProxies(app, inner)(environ, lambda *a: None)
    assert seen == {"addr": addr, "scheme": "https" if hops else "http"}


def test_behind_the_proxy_the_per_address_limit_is_per_client(app, client, rate_limits, monkeypatch):
    """The regulator is not locked out by somebody else's guesses from the same proxy."""
    monkeypatch.setitem(app.config, "MARKET_TRUSTED_PROXIES", 1)
    for n in range(10):
        r = client.post("/api/v1/auth/token",
                        json={"email": f"guess{n}@example.cn", "password": "wrong-password"},
                        headers={"X-Forwarded-For": "198.51.100.66"})
        assert r.status_code == 401
    blocked = client.post("/api/v1/auth/token",
                          json={"email": "guess-x@example.cn", "password": "wrong-password"},
                          headers={"X-Forwarded-For": "198.51.100.66"})
    assert blocked.status_code == 429
    other = client.post("/api/v1/auth/token",
                        json={"email": "guess-y@example.cn", "password": "wrong-password"},
                        headers={"X-Forwarded-For": "198.51.100.77"})
    assert other.status_code == 401
