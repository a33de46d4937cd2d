"""Applying for a license: statuses, quote checks, admission, blacklist, roles, free licenses."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.licenses_app.conftest import apply


def test_open_data_awaits_payment(client, market):
    quote = market.quote([(market.dataset(), 5_000)])
    r = apply(client, market, quote)
    assert r.status_code == 201
    body = r.get_json()
    assert body["status"] == "awaiting_payment"
    assert body["privacy_budget_remaining"] is None
    assert body["allowed_events"] == ["pay_settled", "revoke"]


def test_expired_quote_is_409(client, market):
    quote = market.quote([(market.dataset(), 5_000)], expires_in=dt.timedelta(seconds=-1))
    r = apply(client, market, quote)
    assert r.status_code == 409
    assert "expired" in r.get_json()["message"]


def test_another_buyers_quote_is_404_and_unknown_quote_too(client, market):
    other = market.party("buyer")
    quote = market.quote([(market.dataset(), 5_000)], buyer=other.org)
    assert apply(client, market, quote).status_code == 404
    r = client.post(
        "/api/v1/licenses",
        json={"quote_id": 999_999, "purpose_statement": "x"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 404
    # The quote's owner can use it.
    assert apply(client, market, quote, party=other).status_code == 201


def test_a_quote_is_used_once(client, market):
    quote = market.quote([(market.dataset(), 5_000)])
    first = apply(client, market, quote)
    assert first.status_code == 201
    r = apply(client, market, quote)
    assert r.status_code == 409
    assert f"license {first.get_json()['id']}" in r.get_json()["message"]


def test_pending_organization_cannot_apply(client, market):
    pending = market.party("buyer", status="pending")
    quote = market.quote([(market.dataset(), 5_000)], buyer=pending.org)
    r = apply(client, market, quote, party=pending)
    assert r.status_code == 403
    assert "admitted" in r.get_json()["message"]


def test_blacklisted_buyer_cannot_apply_and_is_told_why(app, client, market):
    from market.audit.models import AuditEvent
    from market.extensions import db

    quote = market.quote([(market.dataset(), 5_000)])
    r = client.post(
        "/api/v1/blacklist",
        json={"organization_id": market.buyer.org.id, "reason": "fraudulent use"},
        headers=market.regulator.headers,
    )
    assert r.status_code == 201
    r = apply(client, market, quote)
    assert r.status_code == 403
    assert "blacklist" in r.get_json()["message"]
    refused = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "blacklist.refused")
    ).all()
    assert [e.data for e in refused] == [{"action": "apply_license"}]


@pytest.mark.parametrize("kind", ["department", "operator", "regulator", "subject"])
def test_only_buyers_apply(client, market, kind):
    party = market.party(kind)
    quote = market.quote([(market.dataset(), 5_000)])
    r = apply(client, market, quote, party=party)
    assert r.status_code == 403


def test_anonymous_is_401(client, market):
    quote = market.quote([(market.dataset(), 5_000)])
    r = client.post("/api/v1/licenses", json={"quote_id": quote.id, "purpose_statement": "x"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"purpose_statement": "x"}, "quote_id"),
        ({"quote_id": 1}, "purpose_statement"),
        ({"quote_id": 1, "purpose_statement": ""}, "purpose_statement"),
        ({"quote_id": "1x", "purpose_statement": "x"}, "quote_id"),
    ],
)
def test_bad_bodies_are_422(client, market, body, field):
    r = client.post("/api/v1/licenses", json=body, headers=market.buyer.headers)
    assert r.status_code == 422
    assert field in r.get_json()["errors"]


def test_blank_statement_is_422_from_the_service(client, market):
    quote = market.quote([(market.dataset(), 5_000)])
    r = apply(client, market, quote, statement="   ")
    assert r.status_code == 422
    assert "purpose_statement" in r.get_json()["errors"]


def test_restricted_dataset_cannot_be_licensed(client, market):
    quote = market.quote([(market.dataset(grade="restricted"), 5_000)])
    assert apply(client, market, quote).status_code == 409


def test_free_public_welfare_license_is_active_on_approval_without_ledger(app, client, market):
    """Free licenses always go to review (#13.4; tests/licenses_app/test_free_license_review)."""
    from licenses.models import LedgerJournal
    from market.extensions import db

    client.post(
        "/api/v1/public-welfare-bodies",
        json={"organization_id": market.buyer.org.id, "reason": "charity"},
        headers=market.operator.headers,
    )
    for grade in ("open", "conditional"):
        quote = market.quote([(market.dataset(grade=grade), 0)], purpose="public_welfare")
        r = client.post(
            "/api/v1/licenses",
            json={
                "quote_id": quote.id,
                "purpose_statement": "open flood maps",
                "free_use_justification": "published free for residents",
            },
            headers=market.buyer.headers,
        )
        assert r.status_code == 201, r.get_json()
        body = r.get_json()
        assert body["status"] == "pending_review" and not body["has_document"]
        r = client.post(
            f"/api/v1/licenses/{body['id']}/review",
            json={"decision": "approve"},
            headers=market.operator.headers,
        )
        body = r.get_json()
        assert body["status"] == "active" and body["has_document"]
        assert body["price"]["total"] == 0
        doc = client.get(f"/api/v1/licenses/{body['id']}/document", headers=market.buyer.headers)
        assert "duty" not in doc.get_json()["policy"]["permission"][0]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerJournal)) == 0
        r = client.post(
            f"/api/v1/licenses/{body['id']}/payments",
            json={"provider": "invoice"},
            headers=market.buyer.headers,
        )
        assert r.status_code == 409


def test_quote_items_without_a_version_use_the_current_one(app, client, market):
    from market.extensions import db
    from market.quotes.models import Quote

    quote = market.quote([(market.dataset(), 5_000)])
    items = [dict(item, dataset_version=None) for item in quote.items]
    db.session.execute(sa.update(Quote).where(Quote.id == quote.id).values(items=items))
    db.session.commit()
    lic = apply(client, market, quote).get_json()
    assert lic["scope"]["datasets"][0]["dataset_version"] == 1
