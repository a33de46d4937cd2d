"""A Bearer token is checked against the database on every request by one Core statement
(``accounts.services.token_caller``), and ``g.user`` / ``g.token`` are loaded only if a view
reads them: nothing about a token is cached, so a revocation, an expiry, a deactivated user or
"log out everywhere" is refused at the very next request (issue 14's throughput work must not
open a window)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

Q1 = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"


def _revoke(session):
    from market.accounts.models import ApiToken

    for t in session.scalars(sa.select(ApiToken)):
        t.revoked_at = dt.datetime.now(dt.UTC)


def _expire(session):
    from market.accounts.models import ApiToken

    for t in session.scalars(sa.select(ApiToken)):
        t.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


def _deactivate(session):
    from market.accounts.models import User

    for u in session.scalars(sa.select(User)):
        u.is_active = False


@pytest.mark.parametrize("change", [_revoke, _expire, _deactivate])
def test_a_token_is_refused_at_the_next_request_after_it_was_used(client, world, change):
    from market.extensions import db

    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    for _ in range(2):  # the second one is the fast path (a stored release)
        assert query(client, lic.id, Q1, buyer.headers).status_code == 200
    assert client.get("/api/v1/me", headers=buyer.headers).status_code == 200
    change(db.session)
    db.session.commit()
    r = query(client, lic.id, Q1, buyer.headers)
    assert r.status_code == 401
    assert client.get("/api/v1/me", headers=buyer.headers).status_code == 401


def test_logout_everywhere_through_the_token_ends_it(client, as_role):
    _, h = as_role("buyer")
    assert client.get("/api/v1/me", headers=h).status_code == 200
    r = client.post("/api/v1/auth/logout-everywhere", headers=h)
    assert r.status_code == 200 and r.get_json()["tokens_revoked"] == 1
    assert client.get("/api/v1/me", headers=h).status_code == 401


def test_views_that_read_g_user_and_g_token_still_get_orm_objects(client, as_role):
    user, h = as_role("buyer")
    me = client.get("/api/v1/me", headers=h)
    assert me.status_code == 200 and me.get_json()["email"] == user.email
    r = client.patch("/api/v1/me", json={"language": "en"}, headers=h)
    assert r.status_code == 200 and r.get_json()["language"] == "en"
    assert client.delete("/api/v1/auth/token", headers=h).status_code == 204  # reads g.token
    assert client.get("/api/v1/me", headers=h).status_code == 401


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_the_users_saved_language_wins_over_accept_language_for_a_token(app, client, as_role):
    from market.extensions import db

    user, h = as_role("buyer")
    user.language = "zh"
    db.session.commit()
    r = client.get("/api/v1/sandbox/999999/tables", headers={**h, "Accept-Language": "en"})
    assert r.status_code == 404 and _has_cjk(r.get_json()["message"])
    user.language = "en"
    db.session.commit()
    r = client.get("/api/v1/sandbox/999999/tables", headers={**h, "Accept-Language": "zh"})
    assert r.status_code == 404 and not _has_cjk(r.get_json()["message"])


def test_a_token_request_loads_no_user_unless_asked(app, as_role):
    from flask import g

    from market.auth import load_caller

    user, h = as_role("buyer")
    with app.test_request_context("/api/v1/licenses", headers=h):
        load_caller()
        assert "user" not in vars(g._get_current_object())
        assert g.actor.user_id == user.id and g.actor.role == "buyer"
        assert g.get("user_id") == user.id
        assert g.user.id == user.id and g.get("user") is g.user  # loaded on first use
        assert g.token.user_id == user.id
