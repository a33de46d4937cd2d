"""#14.3 and #14.4: sessions end on the server, and a login always leaves its audit record.

- A captured ``market_session`` cookie is dead after ``POST /logout`` (pages and API).
- "Log out everywhere" (page button and ``POST /api/v1/auth/logout-everywhere``) ends every
  browser session and revokes every API token of the user, audited.
- ``next`` is checked before the login: an unsafe one is dropped (no 500), and an error page
  never hands out a working session.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.accounts.test_web import csrf_from, login
from tests.conftest import PASSWORD


def _events(type_: str) -> list:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)).all()


def _cookie(client) -> str:
    cookie = client.get_cookie("market_session")
    assert cookie is not None
    return cookie.value


def _replay(app, value: str):
    """A fresh browser that only has the captured cookie."""
    other = app.test_client()
    other.set_cookie("market_session", value)
    return other


def test_a_captured_cookie_dies_at_logout(app, client, make_user):
    user = make_user("buyer")
    assert login(client, user.email).status_code == 302
    captured = _cookie(client)
    assert _replay(app, captured).get("/dashboard").status_code == 200  # it is a live session
    token = csrf_from(client.get("/dashboard").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = _replay(app, captured)
    r = thief.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert _replay(app, captured).get("/api/v1/me").status_code == 401
    assert len(_events("auth.logout")) == 1


def test_log_out_everywhere_from_the_page(app, client, make_user, auth_header):
    user = make_user("regulator")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user.email)
    login(phone, user.email)
    headers = auth_header(user)
    assert phone.get("/dashboard").status_code == 200
    page = laptop.get("/account/security")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="logout-everywhere"' in html
    r = laptop.post("/logout/everywhere", data={"csrf_token": csrf_from(html)})
    assert r.status_code == 302
    for browser in (laptop, phone):
        assert browser.get("/dashboard").status_code == 302
        assert browser.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    (event,) = _events("auth.logout_everywhere")
    assert event.data == {"sessions_ended": 2, "tokens_revoked": 1}


def test_log_out_everywhere_needs_the_csrf_token(app, client, make_user):
    user = make_user("buyer")
    login(client, user.email)
    assert client.post("/logout/everywhere").status_code == 400
    assert client.get("/dashboard").status_code == 200


def test_log_out_everywhere_through_the_api(app, client, make_user, auth_header):
    user = make_user("department")
    browser = app.test_client()
    login(browser, user.email)
    headers, other = auth_header(user), auth_header(user)
    r = client.post("/api/v1/auth/logout-everywhere", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"sessions_ended": 1, "tokens_revoked": 2}
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.get("/api/v1/me", headers=other).status_code == 401
    assert browser.get("/dashboard").status_code == 302
    # Another user's sessions are untouched.
    bystander = make_user("department")
    assert client.get("/api/v1/me", headers=auth_header(bystander)).status_code == 200


def test_an_ended_session_row_is_kept_with_its_reason(app, client, make_user):
    from market.accounts.models import UserSession
    from market.extensions import db

    user = make_user("buyer")
    login(client, user.email)
    token = csrf_from(client.get("/dashboard").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    rows = db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user.id)).all()
    assert [(r.end_reason, r.ended_at is not None) for r in rows] == [("logout", True)]


# ------------------------------------------------------------------------ #14.4 next


@pytest.mark.parametrize(
    "target",
    [
        "/%0D%0A",  # the defect: CR LF reach the Location header
        "/%0D%0ASet-Cookie:%20x=1",
        "//evil.example",
        "/%5Cevil.example",  # /\evil.example: browsers read the backslash as a slash
        "https://evil.example/",
        "javascript:alert(1)",
        "/dash%09board",  # a TAB (NUL itself is refused at the edge: test_nul_bytes.py)
        "dashboard",
    ],
)
def test_an_unsafe_next_is_dropped_before_the_login(app, client, make_user, target):
    user = make_user("buyer")
    page = client.get(f"/login?next={target}")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    r = client.post(f"/login?next={target}",
                    data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    assert r.headers["Location"] == "/dashboard"
    assert len(_events("auth.login")) == 1
    assert client.get("/dashboard").status_code == 200


@pytest.mark.parametrize("target", ["/datasets", "/licenses/3?tab=payments", "/a%20b"])
def test_a_same_site_next_is_followed(app, client, make_user, target):
    user = make_user("buyer")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post(f"/login?next={target}",
                    data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == target


def test_an_error_page_never_hands_out_a_session(app, client, make_user, monkeypatch):
    """Whatever fails after the password was checked, the response carries no session."""
    from market.accounts.models import UserSession
    from market.extensions import db
    from market.web import views

    def broken_redirect(*args, **kwargs):
        raise RuntimeError("redirect failed")

    monkeypatch.setattr(views, "redirect", broken_redirect)
    user = make_user("buyer")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                    "csrf_token": token})
    assert r.status_code == 500
    handed_out = [c for c in r.headers.getlist("Set-Cookie")
                  if c.startswith("market_session=") and not c.startswith("market_session=;")]
    assert handed_out == []
    monkeypatch.undo()
    assert client.get("/dashboard").status_code == 302
    assert client.get("/api/v1/me").status_code == 401
    assert db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user.id)).all() == []
    assert _events("auth.login") == []  # rolled back with the session: nothing half-done
