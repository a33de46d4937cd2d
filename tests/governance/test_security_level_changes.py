"""Changing a dataset's security level (GB/T 43697-2024) after upload: raising applies at once
under the stricter rules; lowering needs both the operator and the regulator; core is
refused as on upload; licenses already granted keep running and new ones need the regulator."""

from __future__ import annotations

import sqlalchemy as sa

from market.audit.models import AuditEvent
from market.extensions import db
from tests.licenses_app.conftest import apply


def _types(dataset_id: int) -> list[str]:
    return list(db.session.scalars(
        sa.select(AuditEvent.type)
        .where(AuditEvent.subject_type == "dataset", AuditEvent.subject_id == str(dataset_id))
        .order_by(AuditEvent.seq)
    ))


def _owner(market, make_user, auth_header, grade="conditional"):
    dept = market.department()
    dataset = market.dataset(dept, grade=grade)
    user = make_user("department", org=dept)
    return dataset, auth_header(user)


def _ask(client, dataset_id, headers, to_level, reason="重新定级"):
    return client.post(f"/api/v1/datasets/{dataset_id}/security-level",
                       json={"to_level": to_level, "reason": reason}, headers=headers)


def _decide(client, change_id, headers, decision="approve", comment=None):
    return client.post(f"/api/v1/security-level-changes/{change_id}/decision",
                       json={"decision": decision, "comment": comment}, headers=headers)


def test_who_may_ask(client, market, make_user, auth_header, as_role):
    dataset, owner = _owner(market, make_user, auth_header)
    _, other_dept = as_role("department")
    assert _ask(client, dataset.id, {}, "important").status_code == 401
    for headers in (other_dept, market.buyer.headers, market.operator.headers,
                    market.regulator.headers):
        assert _ask(client, dataset.id, headers, "important").status_code == 403
    assert _ask(client, 999_999, owner, "important").status_code == 404
    r = _ask(client, dataset.id, owner, "important", reason="")
    assert r.status_code == 422 and "reason" in r.get_json()["errors"]
    r = _ask(client, dataset.id, owner, "secret")
    assert r.status_code == 422 and "to_level" in r.get_json()["errors"]
    r = _ask(client, dataset.id, owner, "general")
    assert r.status_code == 409  # already general


def test_core_is_refused_as_on_upload(client, market, make_user, auth_header):
    dataset, owner = _owner(market, make_user, auth_header)
    r = _ask(client, dataset.id, owner, "core")
    assert r.status_code == 422 and r.get_json()["errors"]["rule"] == "core_data"
    db.session.refresh(dataset)
    assert dataset.security_level == "general"
    assert not any("security_level" in t for t in _types(dataset.id))


def test_raising_applies_at_once_licenses_run_and_new_ones_need_the_regulator(
    client, market, make_user, auth_header
):
    dataset, owner = _owner(market, make_user, auth_header)
    # A license granted while the data was general.
    running = apply(client, market, market.quote([(dataset, 50_000)])).get_json()
    assert client.post(f"/api/v1/licenses/{running['id']}/review",
                       headers=market.operator.headers,
                       json={"decision": "approve", "comment": ""}).status_code == 200
    pay = client.post(f"/api/v1/licenses/{running['id']}/payments", json={"provider": "invoice"},
                      headers=market.buyer.headers).get_json()
    assert client.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                       json={"bank_reference": "B-9"},
                       headers=market.operator.headers).status_code == 200
    # An application still pending review when the level is raised.
    pending = apply(client, market, market.quote([(dataset, 40_000)])).get_json()

    r = _ask(client, dataset.id, owner, "important", reason="涉及重要数据目录")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "applied"
    db.session.refresh(dataset)
    assert dataset.security_level == "important"
    assert dataset.k_min >= 20  # the important defaults, tightened
    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.type == "dataset.security_level_raised")).one()
    assert event.data["active_licenses"] == 1 and event.data["to"] == "important"

    # The license granted before keeps running...
    got = client.get(f"/api/v1/licenses/{running['id']}", headers=market.buyer.headers)
    assert got.get_json()["status"] == "active"
    # ...the pending one and every new one need the regulator first.
    for lic_id in (pending["id"], apply(client, market, market.quote([(dataset, 30_000)]))
                   .get_json()["id"]):
        r = client.post(f"/api/v1/licenses/{lic_id}/review", headers=market.operator.headers,
                        json={"decision": "approve", "comment": ""})
        assert r.status_code == 409, r.get_json()
        r = client.post(f"/api/v1/licenses/{lic_id}/regulator-review",
                        headers=market.regulator.headers,
                        json={"decision": "approve", "comment": ""})
        assert r.status_code == 200


def test_raising_open_data_to_important_is_refused(client, market, make_user, auth_header):
    dataset, owner = _owner(market, make_user, auth_header, grade="open")
    r = _ask(client, dataset.id, owner, "important")
    assert r.status_code == 422 and "open_grade" in r.get_json()["errors"]


def test_lowering_needs_the_operator_and_the_regulator(client, market, make_user, auth_header):
    dataset, owner = _owner(market, make_user, auth_header)
    assert _ask(client, dataset.id, owner, "important").status_code == 201
    r = _ask(client, dataset.id, owner, "general", reason="已从重要数据目录移出")
    assert r.status_code == 201 and r.get_json()["status"] == "pending"
    change = r.get_json()["id"]
    assert _ask(client, dataset.id, owner, "general").status_code == 409  # one at a time
    # Neither the department nor a buyer decides.
    assert _decide(client, change, owner).status_code == 403
    assert _decide(client, change, market.buyer.headers).status_code == 403
    r = _decide(client, change, market.regulator.headers)
    assert r.status_code == 200 and r.get_json()["status"] == "pending"
    assert _decide(client, change, market.regulator.headers).status_code == 409  # once each
    db.session.refresh(dataset)
    assert dataset.security_level == "important"  # one approval is not enough
    r = _decide(client, change, market.operator.headers)
    assert r.status_code == 200 and r.get_json()["status"] == "applied"
    db.session.refresh(dataset)
    assert dataset.security_level == "general"
    types = _types(dataset.id)
    assert types[-3:] == ["dataset.security_level_change_approved",
                          "dataset.security_level_change_approved",
                          "dataset.security_level_lowered"]
    # Listed for the department, the operator and the regulator.
    rows = client.get("/api/v1/security-level-changes", headers=owner).get_json()["items"]
    assert [r["status"] for r in rows] == ["applied", "applied"]
    assert client.get("/api/v1/security-level-changes",
                      headers=market.buyer.headers).status_code == 403


def test_either_party_rejects_with_a_comment(client, market, make_user, auth_header):
    dataset, owner = _owner(market, make_user, auth_header)
    _ask(client, dataset.id, owner, "important")
    change = _ask(client, dataset.id, owner, "general").get_json()["id"]
    assert _decide(client, change, market.operator.headers, "reject").status_code == 422
    r = _decide(client, change, market.operator.headers, "reject", "仍属重要数据")
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert _decide(client, change, market.regulator.headers).status_code == 409
    db.session.refresh(dataset)
    assert dataset.security_level == "important"
    assert "dataset.security_level_change_rejected" in _types(dataset.id)


def test_the_page(client, market, make_user, auth_header):
    from tests.licenses_app.conftest import Party
    from tests.licenses_app.test_web import login

    dept = market.department()
    dataset = market.dataset(dept, grade="conditional")
    user = make_user("department", org=dept)
    token = login(client, Party(user, {}))
    page = client.get("/security-levels").get_data(as_text=True)
    assert 'data-testid="level-request-form"' in page
    r = client.post("/security-levels", data={"csrf_token": token, "dataset_id": dataset.id,
                                              "to_level": "core", "reason": "x"})
    assert r.status_code == 422 and 'data-field="to_level"' in r.get_data(as_text=True)
    r = client.post("/security-levels", data={"csrf_token": token, "dataset_id": dataset.id,
                                              "to_level": "important", "reason": "升级"})
    assert r.status_code == 302
    db.session.refresh(dataset)
    assert dataset.security_level == "important"
    r = client.post("/security-levels", data={"csrf_token": token, "dataset_id": dataset.id,
                                              "to_level": "general", "reason": "降级"})
    assert r.status_code == 302
    token = login(client, market.regulator)
    page = client.get("/security-levels").get_data(as_text=True)
    change = db.session.scalars(sa.text("SELECT id FROM security_level_changes "
                                        "WHERE status = 'pending'")).one()
    assert f'data-testid="level-decide-{change}"' in page
    r = client.post(f"/security-levels/{change}/decision",
                    data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 302


def test_the_pages_read_in_chinese(client, market, make_user, auth_header):
    from tests.licenses_app.conftest import Party
    from tests.licenses_app.test_web import login

    dept = market.department()
    market.dataset(dept, grade="conditional")
    login(client, Party(make_user("department", org=dept), {}))
    zh = {"Accept-Language": "zh-CN"}
    page = client.get("/security-levels", headers=zh).get_data(as_text=True)
    assert "申请变更" in page and "安全级别" in page
    page = client.get("/agreements/keys", headers=zh).get_data(as_text=True)
    assert "协议签名密钥" in page
