"""Credit notes (invoice refunds) paid back to the buyer by the operator."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.licenses_app.conftest import active_license


def _revoked_with_credit_note(client, market, amount: int = 123_457) -> dict:
    """A license paid by invoice, then revoked mid-term: its refund is a pending credit note."""
    from licenses.models import License
    from market.extensions import db

    lic = active_license(client, market, amount=amount)
    now = dt.datetime.now(dt.UTC)
    db.session.execute(
        sa.update(License)
        .where(License.id == lic["id"])
        .values(starts_at=now - dt.timedelta(days=100), ends_at=now + dt.timedelta(days=265))
    )
    db.session.commit()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "department withdrew the data"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    pending = client.get("/api/v1/refunds?status=pending", headers=market.operator.headers)
    assert pending.status_code == 200
    items = pending.get_json()["items"]
    assert len(items) == 1 and items[0]["license_id"] == lic["id"]
    return items[0]


def _balance(account: str) -> int:
    from licenses.ledger import account_balances
    from market.extensions import db

    return account_balances(db.session).get(account, 0)


def test_the_operator_pays_a_credit_note_back(app, client, market):
    from licenses.models import LedgerJournal
    from market.audit.models import AuditEvent
    from market.extensions import db

    note = _revoked_with_credit_note(client, market)
    assert note["status"] == "pending" and note["credit_note_number"].startswith("CN-")
    account = f"credit_notes:buyer:{market.buyer.org.id}"
    assert _balance(account) == -note["amount"]  # a liability: owed to the buyer
    cash_before = _balance("cash")

    r = client.post(
        f"/api/v1/refunds/{note['id']}/pay",
        json={"reference": "  TRANSFER-2026-0042 "},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "paid" and body["paid_reference"] == "TRANSFER-2026-0042"
    assert body["paid_at"] is not None

    # the ledger: the credit note is settled from cash, and the books still balance
    assert _balance(account) == 0
    assert _balance("cash") == cash_before - note["amount"]
    journal = db.session.scalar(
        sa.select(LedgerJournal).where(LedgerJournal.kind == "credit_note_paid")
    )
    assert journal.reference == f"credit_note:{note['id']}" and journal.refund_id == note["id"]
    assert sum(line.debit_fen for line in journal.lines) == note["amount"]
    assert sum(line.credit_fen for line in journal.lines) == note["amount"]
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.type == "refund.credit_note_paid")
    )
    assert event.subject_id == str(note["id"]) and event.data["amount"] == note["amount"]

    # paying it twice is refused, and nothing more is posted
    again = client.post(
        f"/api/v1/refunds/{note['id']}/pay",
        json={"reference": "TRANSFER-2026-0043"},
        headers=market.operator.headers,
    )
    assert again.status_code == 409
    assert _balance("cash") == cash_before - note["amount"]
    listed = client.get("/api/v1/refunds?status=paid", headers=market.regulator.headers)
    assert [i["id"] for i in listed.get_json()["items"]] == [note["id"]]
    assert client.get("/api/v1/refunds?status=pending", headers=market.operator.headers).get_json()[
        "items"
    ] == []


def test_only_the_operator_pays_and_a_reference_is_required(app, client, market):
    note = _revoked_with_credit_note(client, market)
    url = f"/api/v1/refunds/{note['id']}/pay"
    for party in (market.buyer, market.regulator):
        r = client.post(url, json={"reference": "X-1"}, headers=party.headers)
        assert r.status_code == 403, r.get_json()
    assert client.get("/api/v1/refunds", headers=market.buyer.headers).status_code == 403
    assert client.post(url, json={"reference": ""}, headers=market.operator.headers).status_code == 422
    assert client.post(url, json={"reference": "   "}, headers=market.operator.headers).status_code == 422
    assert client.post(url, json={}, headers=market.operator.headers).status_code == 422
    missing = client.post(
        "/api/v1/refunds/999999/pay", json={"reference": "X-1"}, headers=market.operator.headers
    )
    assert missing.status_code == 404


def test_a_stripe_refund_has_no_credit_note_to_pay(app, client, market):
    from licenses.models import Refund
    from market.extensions import db

    note = _revoked_with_credit_note(client, market)
    refund = db.session.get(Refund, note["id"])
    refund.credit_note_number = None
    refund.status = "succeeded"
    db.session.commit()
    r = client.post(
        f"/api/v1/refunds/{note['id']}/pay",
        json={"reference": "X-1"},
        headers=market.operator.headers,
    )
    assert r.status_code == 409


def test_the_operator_pays_a_credit_note_back_in_the_browser(app, client, market):
    from licenses.models import Refund
    from market.extensions import db
    from tests.licenses_app.test_web import login

    note = _revoked_with_credit_note(client, market)
    token = login(client, market.operator)
    page = client.get("/payments/settlements").get_data(as_text=True)
    assert f'data-testid="credit-note-{note["credit_note_number"]}"' in page
    url = f"/payments/credit-notes/{note['id']}/pay"

    empty = client.post(url, data={"reference": "", "csrf_token": token}, follow_redirects=True)
    assert db.session.get(Refund, note["id"]).status == "pending"
    assert "请填写银行转账流水号。" in empty.get_data(as_text=True)  # the UI is Chinese by default
    forged = client.post(url, data={"reference": "X-1"})  # no CSRF token
    assert forged.status_code == 400
    db.session.expire_all()
    assert db.session.get(Refund, note["id"]).status == "pending"

    done = client.post(
        url, data={"reference": "ICBC-REFUND-7", "csrf_token": token}, follow_redirects=True
    )
    assert done.status_code == 200
    body = done.get_data(as_text=True)
    assert note["credit_note_number"] in body  # the success message names it
    assert f'data-testid="credit-note-{note["credit_note_number"]}"' not in body
    db.session.expire_all()
    refund = db.session.get(Refund, note["id"])
    assert refund.status == "paid" and refund.paid_reference == "ICBC-REFUND-7"
    detail = client.get(f"/licenses/{note['license_id']}").get_data(as_text=True)
    assert "ICBC-REFUND-7" in detail

    # a buyer cannot reach the form
    client.post("/logout", data={"csrf_token": token})
    buyer_token = login(client, market.buyer)
    refused = client.post(url, data={"reference": "X-2", "csrf_token": buyer_token})
    assert refused.status_code == 403
