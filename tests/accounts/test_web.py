"""Browser sessions: login, CSRF, cookie flags, rotation, language, dashboards."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client, email: str, password: str = PASSWORD):
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_login_requires_csrf(client, make_user):
    user = make_user("buyer")
    client.get("/login")
    r = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert r.status_code in (400, 200)
    assert client.get("/dashboard").status_code == 302  # still not signed in


def test_login_logout_and_dashboard_per_role(client, make_user):
    for role in ("department", "buyer", "operator", "regulator", "subject"):
        user = make_user(role)
        r = login(client, user.email)
        assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
        page = client.get("/dashboard").get_data(as_text=True)
        assert user.organization.name in page
        token = csrf_from(page)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/dashboard").status_code == 302


def test_wrong_password_shows_error_and_is_audited(app, client, make_user):
    import sqlalchemy as sa

    from market.audit.models import AuditEvent
    from market.extensions import db

    user = make_user("buyer")
    r = login(client, user.email, "not-the-password")
    assert r.status_code == 401
    assert 'data-testid="login-error"' in r.get_data(as_text=True)
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "auth.login_failed"))


def test_session_cookie_flags(app, client, make_user):
    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        user = make_user("buyer")
        r = login(client, user.email)
        cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("market_session="))
        assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False


def test_session_rotates_on_login(client, make_user):
    """A session value planted before login does not survive it (no fixation)."""
    user = make_user("buyer")
    client.get("/login")
    with client.session_transaction() as s:
        s["planted"] = "attacker"
    login(client, user.email)
    with client.session_transaction() as s:
        assert "planted" not in s and s["sid"]


def test_session_dies_when_epoch_moves(app, client, make_user):
    from market.extensions import db

    user = make_user("buyer")
    login(client, user.email)
    assert client.get("/dashboard").status_code == 200
    user.session_epoch += 1
    db.session.commit()
    assert client.get("/dashboard").status_code == 302


def test_open_redirect_refused(client, make_user):
    user = make_user("buyer")
    page = client.get("/login?next=https://evil.example/")
    token = csrf_from(page.get_data(as_text=True))
    r = client.post("/login?next=https://evil.example/", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"].endswith("/dashboard")


def test_api_with_session_cookie_needs_csrf_header(client, make_user):
    user = make_user("operator")
    login(client, user.email)
    body = {"name": "n", "kind": "buyer", "credit_code": "91350100M000100Y43"}
    r = client.post("/api/v1/organizations", json=body)
    assert r.status_code == 400 and r.get_json()["code"] == 400
    token = csrf_from(client.get("/dashboard").get_data(as_text=True))
    r = client.post("/api/v1/organizations", json=body, headers={"X-CSRFToken": token})
    assert r.status_code == 201


@pytest.mark.parametrize("lang, text", [("zh", "登录"), ("en", "Sign in")])
def test_language_switch(client, lang, text):
    r = client.get(f"/login?lang={lang}")
    assert text in r.get_data(as_text=True)
    # The choice sticks through the cookie.
    assert text in client.get("/login").get_data(as_text=True)


def test_chinese_is_the_default(client):
    assert "登录" in client.get("/login").get_data(as_text=True)
