"""Self-registration (API and page) and the operator's admission queue."""

from __future__ import annotations

import sqlalchemy as sa

from tests.accounts.test_web import csrf_from, login
from tests.conftest import valid_uscc


def test_register_via_api_then_admit(client, as_role):
    code = valid_uscc(9001)
    r = client.post("/api/v1/register", json={"organization_name": "上海小微科技", "credit_code": code, "kind": "subject", "email": "boss@sme.cn", "password": "a-long-password"})
    assert r.status_code == 201, r.get_json()
    org = r.get_json()
    assert org["status"] == "pending" and org["kind"] == "subject"
    # A pending organization can sign in.
    token = client.post("/api/v1/auth/token", json={"email": "boss@sme.cn", "password": "a-long-password"})
    assert token.status_code == 201
    me = client.get("/api/v1/me", headers={"Authorization": "Bearer " + token.get_json()["token"]}).get_json()
    assert me["organization"]["status"] == "pending"
    _, op = as_role("operator")
    r = client.post(f"/api/v1/organizations/{org['id']}/admission", headers=op, json={"decision": "admit", "reason": "checked the licence"})
    assert r.status_code == 200 and r.get_json()["status"] == "active"
    # Deciding twice conflicts.
    assert client.post(f"/api/v1/organizations/{org['id']}/admission", headers=op, json={"decision": "refuse", "reason": "x"}).status_code == 409


def test_register_refuses_other_kinds_and_bad_codes(client):
    base = {"organization_name": "X", "email": "a@b.cn", "password": "a-long-password"}
    r = client.post("/api/v1/register", json={**base, "credit_code": valid_uscc(9002), "kind": "operator"})
    assert r.status_code == 422 and "kind" in r.get_json()["errors"]
    bad = valid_uscc(9003)
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")
    r = client.post("/api/v1/register", json={**base, "credit_code": bad, "kind": "buyer"})
    assert r.status_code == 422 and "credit_code" in r.get_json()["errors"]


def test_bad_email_leaves_no_orphan_organization(app, client):
    from market.accounts.models import Organization
    from market.extensions import db

    r = client.post("/api/v1/register", json={"organization_name": "Orphan", "credit_code": valid_uscc(9004), "kind": "buyer", "email": "not-an-email", "password": "a-long-password"})
    assert r.status_code == 422
    assert db.session.scalar(sa.select(Organization).where(Organization.name == "Orphan")) is None


def test_admission_is_operator_only_and_refusal_needs_reason(client, as_role, make_org):
    org = make_org("buyer", status="pending")
    _, buyer = as_role("buyer")
    assert client.post(f"/api/v1/organizations/{org.id}/admission", headers=buyer, json={"decision": "admit"}).status_code == 403
    _, op = as_role("operator")
    r = client.post(f"/api/v1/organizations/{org.id}/admission", headers=op, json={"decision": "refuse"})
    assert r.status_code == 422 and "reason" in r.get_json()["errors"]
    r = client.post(f"/api/v1/organizations/{org.id}/admission", headers=op, json={"decision": "refuse", "reason": "licence expired"})
    assert r.get_json()["status"] == "refused"


def test_register_page_shows_errors_next_to_fields_and_signs_in(client):
    page = client.get("/register")
    token = csrf_from(page.get_data(as_text=True))
    r = client.post("/register", data={"csrf_token": token, "organization_name": "甲", "credit_code": "123", "kind": "buyer", "email": "x@y.cn", "password": "a-long-password", "confirm": "different-pass"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'data-field="credit_code"' in html and 'data-field="confirm"' in html
    code = valid_uscc(9005)
    r = client.post("/register", data={"csrf_token": token, "organization_name": "甲银行", "credit_code": code, "kind": "buyer", "email": "x@y.cn", "password": "a-long-password", "confirm": "a-long-password"})
    assert r.status_code == 302
    dash = client.get("/dashboard").get_data(as_text=True)
    assert "甲银行" in dash and "等待运营方准入审核" in dash


def test_admission_queue_page(client, make_user, make_org):
    pending = make_org("subject", name="待审核企业", status="pending")
    op = make_user("operator")
    login(client, op.email)
    page = client.get("/admin/admissions").get_data(as_text=True)
    assert "待审核企业" in page
    token = csrf_from(page)
    r = client.post("/admin/admissions", data={"csrf_token": token, "org_id": pending.id, "decision": "admit", "reason": ""})
    assert r.status_code == 302
    assert 'data-testid="admissions-empty"' in client.get("/admin/admissions").get_data(as_text=True)


def test_admission_pages_are_operator_only(client, make_user):
    buyer = make_user("buyer")
    login(client, buyer.email)
    assert client.get("/admin/admissions").status_code == 403
    assert client.get("/admin/organizations").status_code == 403


def test_operator_creates_org_and_user_in_the_browser_form(client, make_user):
    op = make_user("operator")
    login(client, op.email)
    page = client.get("/admin/organizations").get_data(as_text=True)
    token = csrf_from(page)
    r = client.post("/admin/organizations", data={"org-csrf_token": token, "org-name": "新部门", "org-kind": "department", "org-credit_code": "91350100M000100Y44"})
    assert r.status_code == 200 and 'data-field="credit_code"' in r.get_data(as_text=True)
    r = client.post("/admin/organizations", data={"org-csrf_token": token, "org-name": "新部门", "org-kind": "department", "org-credit_code": valid_uscc(9006)})
    assert r.status_code == 302
    assert "新部门" in client.get("/admin/organizations").get_data(as_text=True)
