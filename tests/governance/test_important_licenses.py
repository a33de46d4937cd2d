"""A license over important data (重要数据) needs the regulator's approval as well as the
operator's: the operator cannot approve first; the regulator's rejection ends it; the ODRL
policy names the level and links each target to its DCAT dataset."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from market.audit.models import AuditEvent
from market.extensions import db
from tests.licenses_app.conftest import apply


@pytest.fixture
def important(market):
    dataset = market.dataset(grade="conditional")
    dataset.security_level = "important"
    db.session.commit()
    return dataset


def _pending(client, market, dataset):
    lic = apply(client, market, market.quote([(dataset, 50_000)])).get_json()
    assert lic["status"] == "pending_review", lic
    return lic["id"]


def _operator_review(client, market, lic_id, decision="approve", comment=""):
    return client.post(f"/api/v1/licenses/{lic_id}/review", headers=market.operator.headers,
                       json={"decision": decision, "comment": comment})


def _regulator_review(client, market, lic_id, decision="approve", comment="", headers=None):
    return client.post(f"/api/v1/licenses/{lic_id}/regulator-review",
                       headers=headers or market.regulator.headers,
                       json={"decision": decision, "comment": comment})


def test_operator_cannot_approve_before_the_regulator(client, market, important):
    lic_id = _pending(client, market, important)
    r = _operator_review(client, market, lic_id)
    assert r.status_code == 409 and "decision" in r.get_json()["errors"]
    assert client.get(f"/api/v1/licenses/{lic_id}",
                      headers=market.buyer.headers).get_json()["status"] == "pending_review"


def test_both_approvals_then_payment(client, market, important):
    lic_id = _pending(client, market, important)
    r = _regulator_review(client, market, lic_id)
    assert r.status_code == 200 and r.get_json()["decision"] == "approve"
    r = _operator_review(client, market, lic_id)
    assert r.status_code == 200 and r.get_json()["status"] == "awaiting_payment"
    types = [e.type for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.subject_id == str(lic_id),
                                    AuditEvent.subject_type == "license")
        .order_by(AuditEvent.seq))]
    assert types.index("license.regulator_approved") < types.index("license.approved")


def test_regulator_rejection_ends_the_application(client, market, important):
    lic_id = _pending(client, market, important)
    assert _regulator_review(client, market, lic_id, "reject").status_code == 422  # no reason
    r = _regulator_review(client, market, lic_id, "reject", "用途与重要数据管理要求不符")
    assert r.status_code == 200
    got = client.get(f"/api/v1/licenses/{lic_id}", headers=market.buyer.headers).get_json()
    assert got["status"] == "rejected" and got["review_comment"] == "用途与重要数据管理要求不符"
    assert _regulator_review(client, market, lic_id).status_code == 409


def test_operator_may_still_reject_alone(client, market, important):
    lic_id = _pending(client, market, important)
    r = _operator_review(client, market, lic_id, "reject", "材料不全")
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"


def test_general_data_needs_no_regulator(client, market):
    dataset = market.dataset(grade="conditional")
    lic_id = _pending(client, market, dataset)
    assert _regulator_review(client, market, lic_id).status_code == 409
    assert _operator_review(client, market, lic_id).status_code == 200


@pytest.mark.parametrize("kind", ["buyer", "operator", "department", "subject"])
def test_only_the_regulator_decides(client, market, important, kind):
    lic_id = _pending(client, market, important)
    party = market.buyer if kind == "buyer" else (
        market.operator if kind == "operator" else market.party(kind))
    r = _regulator_review(client, market, lic_id, headers=party.headers)
    assert r.status_code == 403


def test_queues_show_the_second_step(client, market, important, login):
    lic_id = _pending(client, market, important)
    login(market.operator.user)
    assert f'data-testid="awaits-regulator-{lic_id}"' in client.get(
        "/licenses/review").get_data(as_text=True)
    login(market.regulator.user)
    page = client.get("/governance/license-approvals").get_data(as_text=True)
    assert f'data-testid="regulator-approve-{lic_id}"' in page
    _regulator_review(client, market, lic_id)
    login(market.operator.user)
    assert f'data-testid="awaits-regulator-{lic_id}"' not in client.get(
        "/licenses/review").get_data(as_text=True)


def test_odrl_names_the_level_and_the_dcat_dataset(client, market, important):
    lic_id = _pending(client, market, important)
    _regulator_review(client, market, lic_id)
    _operator_review(client, market, lic_id)
    pay = client.post(f"/api/v1/licenses/{lic_id}/payments", json={"provider": "invoice"},
                      headers=market.buyer.headers).get_json()
    r = client.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                    json={"bank_reference": "BANK-IMP"}, headers=market.operator.headers)
    assert r.status_code == 200, r.get_json()
    doc = client.get(f"/api/v1/licenses/{lic_id}/document",
                     headers=market.buyer.headers).get_json()
    (target,) = doc["policy"]["target"]
    assert target["market:securityLevel"] == "important"
    from market.datasets.dcat import dataset_iri

    assert target["dct:isVersionOf"] == {"@id": dataset_iri(important.id)}
    verified = client.post("/api/v1/licenses/verify", json={"policy": doc["policy"],
                                                            "signature": doc["signature"]})
    assert verified.get_json()["valid"] is True


def test_odrl_refuses_core_data():
    from datetime import UTC, datetime

    from licenses.errors import InvalidPolicy
    from licenses.odrl import LicensedAsset, PolicyParty, build_policy

    with pytest.raises(InvalidPolicy):
        build_policy(
            license_id=1, assigner=PolicyParty(1, "op"), assignee=PolicyParty(2, "bank"),
            assets=[LicensedAsset(3, 1, ["a"], security_level="core")],
            purpose="research", starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            ends_at=datetime(2027, 1, 1, tzinfo=UTC), query_quota=10,
        )
