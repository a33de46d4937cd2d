"""The whole flow: quote → license → review → invoice → settlement → active → signed ODRL."""

from __future__ import annotations

import copy

import sqlalchemy as sa

from tests.licenses_app.conftest import apply


def test_quote_to_verifiable_signed_document(app, client, market):
    from licenses.models import LedgerJournal, LedgerLine
    from market.audit.models import AuditEvent
    from market.extensions import db

    dept_a, dept_b = market.department("Tax bureau"), market.department("Market supervision")
    open_ds = market.dataset(dept_a, columns=("enterprise_key", "district", "tax_grade"))
    cond_ds = market.dataset(dept_b, grade="conditional", dp_budget="2.5")
    quote = market.quote([(open_ds, 60_000, ["tax_grade"]), (cond_ds, 40_000)])

    r = apply(client, market, quote, "Credit scoring of SME loan applicants")
    assert r.status_code == 201, r.get_json()
    lic = r.get_json()
    assert lic["status"] == "pending_review"
    assert lic["price"] == {"total": 100_000, "currency": "CNY"}
    assert lic["buyer"]["id"] == market.buyer.org.id
    assert lic["quota_remaining"] == 1000 and lic["privacy_budget_remaining"] == "2.5000"
    scope = lic["scope"]
    assert (scope["duration_months"], scope["purpose"], scope["query_quota"]) == (
        12,
        "internal_risk_control",
        1000,
    )
    # The entity key is always licensed; "all columns" is resolved to the version's list.
    assert scope["datasets"][0]["columns"] == ["enterprise_key", "tax_grade"]
    assert scope["datasets"][1]["columns"] == ["enterprise_key", "district", "industry", "revenue"]
    assert lic["starts_at"] is None and lic["has_document"] is False

    # Not payable before review.
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 409

    r = client.post(
        f"/api/v1/licenses/{lic['id']}/review",
        json={"decision": "approve", "comment": "purpose fits"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200 and r.get_json()["status"] == "awaiting_payment"

    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 201, r.get_json()
    pay = r.get_json()
    assert pay["amount"] == 100_000 and pay["invoice_number"].startswith("INV-")
    # Asking again gives the same invoice.
    again = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    )
    assert again.status_code == 200
    assert again.get_json()["invoice_number"] == pay["invoice_number"]

    r = client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "ICBC-20250301-0042"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "settled"

    lic = client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()
    assert lic["status"] == "active" and lic["has_document"]
    assert lic["starts_at"] and lic["ends_at"]

    doc = client.get(f"/api/v1/licenses/{lic['id']}/document", headers=market.buyer.headers)
    assert doc.status_code == 200
    doc = doc.get_json()
    assert doc["policy"]["uid"] == f"urn:market:license:{lic['id']}"
    assert doc["policy"]["assignee"]["uid"] == f"urn:market:org:{market.buyer.org.id}"
    assert doc["policy"]["assigner"]["uid"] == f"urn:market:org:{market.operator.org.id}"
    keys = client.get("/api/v1/keys").get_json()["keys"]
    assert doc["public_key_id"] in {k["id"] for k in keys}

    verify = client.post(
        "/api/v1/licenses/verify", json={"policy": doc["policy"], "signature": doc["signature"]}
    )
    assert verify.status_code == 200 and verify.get_json() == {"valid": True}
    tampered = copy.deepcopy(doc["policy"])
    tampered["permission"][0]["constraint"][3]["rightOperand"] = 10**9
    verify = client.post(
        "/api/v1/licenses/verify", json={"policy": tampered, "signature": doc["signature"]}
    )
    assert verify.get_json() == {"valid": False}

    # The ledger: the invoice, then the settlement; it balances.
    kinds = db.session.scalars(sa.select(LedgerJournal.kind).order_by(LedgerJournal.id)).all()
    assert kinds == ["invoice_issued", "payment_settled"]
    debit, credit = db.session.execute(
        sa.select(sa.func.sum(LedgerLine.debit_fen), sa.func.sum(LedgerLine.credit_fen))
    ).one()
    assert debit == credit
    types = db.session.scalars(
        sa.select(AuditEvent.type)
        .where(AuditEvent.subject_type.in_(["license", "payment"]))
        .order_by(AuditEvent.seq)
    ).all()
    assert types == [
        "license.applied",
        "license.approved",
        "payment.created",
        "payment.settled",
        "license.activated",
    ]
