"""A user chooses 中文 or English; the choice is saved on the user and wins over the browser's
Accept-Language and the cookie, and ``?lang=`` still overrides one request (#15)."""

from __future__ import annotations

import re

import pytest

from tests.zh_text import assert_chinese, assert_english


def test_patch_me_saves_the_language(client, as_role):
    user, h = as_role("buyer")
    assert client.get("/api/v1/me", headers=h).get_json()["language"] is None
    r = client.patch("/api/v1/me", json={"language": "en"}, headers=h)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["language"] == "en"
    assert user.language == "en"
    # The saved choice beats the caller's Accept-Language.
    r = client.get("/api/v1/licenses/999999", headers={**h, "Accept-Language": "zh-CN"})
    assert r.status_code == 404
    assert_english(r.get_json()["message"], "saved en, Accept-Language zh")
    # ?lang= is one request's override.
    r = client.get("/api/v1/licenses/999999?lang=zh", headers={**h, "Accept-Language": "en"})
    assert_chinese(r.get_json()["message"], "?lang=zh")
    # null: no choice, back to Accept-Language.
    r = client.patch("/api/v1/me", json={"language": None}, headers=h)
    assert r.get_json()["language"] is None
    r = client.get("/api/v1/licenses/999999", headers={**h, "Accept-Language": "zh-CN"})
    assert_chinese(r.get_json()["message"], "no choice, Accept-Language zh")


def test_changing_the_language_is_audited(client, as_role):
    from sqlalchemy import select

    from market.audit.models import AuditEvent
    from market.extensions import db

    user, h = as_role("subject")
    client.patch("/api/v1/me", json={"language": "en"}, headers=h)
    client.patch("/api/v1/me", json={"language": "en"}, headers=h)  # no change, no event
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.type == "accounts.language_changed")
    ).all()
    assert [(e.subject_id, e.data) for e in events] == [
        (str(user.id), {"from": None, "to": "en"})
    ] or [(int(e.subject_id), e.data) for e in events] == [(user.id, {"from": None, "to": "en"})]


@pytest.mark.parametrize("lang, text", [("zh", "必须是以下之一"), ("en", "Must be one of")])
def test_an_unknown_language_is_refused_in_the_callers_language(client, as_role, lang, text):
    _, h = as_role("buyer")
    r = client.patch("/api/v1/me", json={"language": "fr"}, headers={**h, "Accept-Language": lang})
    assert r.status_code == 422
    assert text in r.get_json()["errors"]["language"][0]


def test_anonymous_cannot_patch_me(client):
    assert client.patch("/api/v1/me", json={"language": "en"}).status_code == 401


def _browser(client, user):
    """A browser session for ``user`` on ``client`` (as the login form opens it)."""
    from market.auth import session_values
    from market.extensions import db

    values = session_values(user)
    db.session.commit()
    with client.session_transaction() as session:
        session.clear()
        session.permanent = True
        session.update(values)
    return client


def _token(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_the_switcher_needs_the_csrf_token(client):
    assert client.post("/language", data={"lang": "en", "next": "/login"}).status_code == 400


def test_the_switcher_saves_the_choice_on_the_user(client, make_user):
    """A signed-in user's switch is a POST that saves the language and returns to the page
    (without a stale ?lang); the saved choice beats the cookie; ?lang still wins once."""
    user = make_user("buyer")
    _browser(client, user)
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'name="lang" value="en"' in page  # Chinese page, offers English
    r = client.post("/language", data={
        "lang": "en", "next": "/dashboard?lang=zh&x=1", "csrf_token": _token(client, "/dashboard"),
    })
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/dashboard?x=1")
    assert "lang=en" in r.headers.get("Set-Cookie", "")
    assert user.language == "en"
    client.delete_cookie("lang")  # another browser: the user's choice still holds
    page = client.get("/dashboard").get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign out" in page
    client.set_cookie("lang", "zh")  # a stale cookie does not beat the saved choice
    assert '<html lang="en">' in client.get("/dashboard").get_data(as_text=True)
    assert "退出登录" in client.get("/dashboard?lang=zh").get_data(as_text=True)


def test_the_switcher_for_anonymous_sets_the_cookie_only(client):
    r = client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": _token(client)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert "Sign in" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_the_switcher_never_redirects_off_site(client, target):
    r = client.post("/language", data={"lang": "en", "next": target, "csrf_token": _token(client)})
    assert r.status_code == 302
    assert "evil" not in r.headers["Location"]


def test_the_switcher_ignores_an_unknown_language(client):
    r = client.post("/language", data={"lang": "fr", "next": "/login", "csrf_token": _token(client)})
    assert r.status_code == 302 and "Set-Cookie" not in r.headers
