"""Identity endpoints, the error envelope and the OpenAPI document."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import PASSWORD, valid_uscc


def assert_envelope(response, code: int) -> dict:
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_health_checks_database(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ok" and r.get_json()["database"] == "ok"
    assert r.get_json()["version"]


def test_token_me_and_revoke(client, make_user):
    user = make_user("buyer")
    r = client.post("/api/v1/auth/token", json={"email": user.email.upper(), "password": PASSWORD})
    assert r.status_code == 201
    token = r.get_json()["token"]
    assert token.startswith("mk_") and r.get_json()["expires_at"].endswith("+00:00")
    h = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/v1/me", headers=h).get_json()
    assert me["email"] == user.email
    assert me["organization"]["kind"] == "buyer"
    assert client.delete("/api/v1/auth/token", headers=h).status_code == 204
    assert_envelope(client.get("/api/v1/me", headers=h), 401)


def test_tokens_are_stored_hashed(app, client, make_user):
    from market.accounts.models import ApiToken
    from market.extensions import db

    user = make_user("buyer")
    token = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD}).get_json()["token"]
    stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_expired_token_is_refused(app, client, make_user, auth_header):
    import datetime as dt

    from market.accounts.models import ApiToken
    from market.extensions import db

    user = make_user("buyer")
    h = auth_header(user)
    for t in db.session.scalars(sa.select(ApiToken)):
        t.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    assert_envelope(client.get("/api/v1/me", headers=h), 401)


def test_bad_login_is_401_and_audited(app, client, make_user):
    from market.audit.models import AuditEvent
    from market.extensions import db

    user = make_user("buyer")
    body = assert_envelope(client.post("/api/v1/auth/token", json={"email": user.email, "password": "wrong-password"}), 401)
    assert "password" in body["message"]
    assert_envelope(client.post("/api/v1/auth/token", json={"email": "nobody@x.cn", "password": "whatever12"}), 401)
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "auth.login_failed")).all()
    assert [e.data["reason"] for e in events] == ["bad_password", "unknown_user"]
    # The attempted login name is fingerprinted, never stored in clear.
    assert all("nobody@x.cn" not in str(e.data) for e in events)


def test_missing_fields_give_422_with_field_errors(client):
    body = assert_envelope(client.post("/api/v1/auth/token", json={"email": "a@b.cn"}), 422)
    assert "password" in body["errors"]


def test_malformed_authorization_header(client):
    assert_envelope(client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401)
    assert_envelope(client.get("/api/v1/me", headers={"Authorization": "Bearer mk_nope"}), 401)
    assert_envelope(client.get("/api/v1/me"), 401)


def test_operator_creates_organization_and_user(client, as_role):
    _, h = as_role("operator")
    code = valid_uscc(777)
    r = client.post("/api/v1/organizations", headers=h, json={"name": "浦发银行", "kind": "buyer", "credit_code": code})
    assert r.status_code == 201, r.get_json()
    org = r.get_json()
    assert org["credit_code"] == code and org["kind"] == "buyer" and org["status"] == "active"
    r = client.post("/api/v1/users", headers=h, json={"email": "Analyst@Bank.cn", "password": "long-enough-pw", "organization_id": org["id"]})
    assert r.status_code == 201
    assert r.get_json()["email"] == "analyst@bank.cn"
    assert "password" not in r.get_json() and "password_hash" not in r.get_json()
    # Duplicates conflict.
    assert_envelope(client.post("/api/v1/organizations", headers=h, json={"name": "浦发银行", "kind": "buyer", "credit_code": valid_uscc(778)}), 409)
    assert_envelope(client.post("/api/v1/users", headers=h, json={"email": "analyst@bank.cn", "password": "long-enough-pw", "organization_id": org["id"]}), 409)


def test_credit_code_check_character_is_validated(client, as_role):
    _, h = as_role("operator")
    good = valid_uscc(779)
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    body = assert_envelope(client.post("/api/v1/organizations", headers=h, json={"name": "X", "kind": "buyer", "credit_code": bad}), 422)
    assert "credit_code" in body["errors"]
    body = assert_envelope(client.post("/api/v1/organizations", headers=h, json={"name": "X", "kind": "bank", "credit_code": good}), 422)
    assert "kind" in body["errors"]


def test_weak_password_refused(client, as_role, make_org):
    _, h = as_role("operator")
    org = make_org("buyer")
    body = assert_envelope(client.post("/api/v1/users", headers=h, json={"email": "a@b.cn", "password": "short", "organization_id": org.id}), 422)
    assert "password" in body["errors"]


def test_lists_paginate(client, as_role, make_org):
    _, h = as_role("operator")
    for _ in range(3):
        make_org("buyer")
    page = client.get("/api/v1/organizations?per_page=2&page=1&kind=buyer", headers=h).get_json()
    assert set(page) == {"items", "total", "page", "per_page"}
    assert page["per_page"] == 2 and len(page["items"]) == 2 and page["total"] >= 3
    page2 = client.get("/api/v1/organizations?per_page=2&page=2&kind=buyer", headers=h).get_json()
    assert {o["id"] for o in page["items"]}.isdisjoint({o["id"] for o in page2["items"]})
    assert_envelope(client.get("/api/v1/organizations?per_page=1000", headers=h), 422)
    users = client.get("/api/v1/users", headers=h).get_json()
    assert users["total"] >= 1


def test_organization_read_is_per_object(client, as_role, make_org):
    buyer, h = as_role("buyer")
    other = make_org("buyer")
    assert client.get(f"/api/v1/organizations/{buyer.organization_id}", headers=h).status_code == 200
    assert_envelope(client.get(f"/api/v1/organizations/{other.id}", headers=h), 404)
    _, rh = as_role("regulator")
    assert client.get(f"/api/v1/organizations/{other.id}", headers=rh).status_code == 200


def test_error_envelope_for_404_405_and_500(client, as_role, monkeypatch):
    assert_envelope(client.get("/api/v1/does-not-exist"), 404)
    assert_envelope(client.delete("/api/v1/health"), 405)
    _, h = as_role("operator")

    def boom(*a, **k):
        raise RuntimeError("secret engine detail 13812345678")

    monkeypatch.setattr("market.accounts.api.services.get_organization", boom)
    body = assert_envelope(client.get("/api/v1/organizations/1", headers=h), 500)
    assert "13812345678" not in body["message"] and "engine" not in body["message"]


def test_too_large_body_is_413_envelope(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        assert_envelope(client.post("/api/v1/auth/token", data=b"x" * 5000, content_type="application/json"), 413)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 512 * 1024 * 1024


def test_html_clients_get_pages(client):
    r = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.content_type.startswith("text/html")
    r = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.get_json()["code"] == 404


def test_openapi_describes_every_api_route(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = set(spec["paths"])
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith("/api/v1/") or path in ("/api/v1/openapi.json", "/api/v1/docs"):
            continue
        converted = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path)
        assert converted.removeprefix("/api/v1") in documented or converted in documented, path
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger-ui-bundle.js" in docs.data
    with client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200


def test_keys_endpoint_publishes_ed25519_key(client):
    keys = client.get("/api/v1/keys").get_json()["keys"]
    assert keys and keys[0]["alg"] == "Ed25519" and len(keys[0]["id"]) == 16
