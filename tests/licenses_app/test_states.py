"""The state machine through the API: review, suspend, reinstate, revoke; 409s; audit; roles."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.licenses_app.conftest import active_license, apply


def _events(license_id: int) -> list[str]:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(
        sa.select(AuditEvent.type)
        .where(AuditEvent.subject_type == "license", AuditEvent.subject_id == str(license_id))
        .order_by(AuditEvent.seq)
    ).all()


def _pending(client, market) -> dict:
    quote = market.quote([(market.dataset(grade="conditional"), 8_000)])
    return apply(client, market, quote).get_json()


def test_reject_needs_a_reason_and_is_final(client, market):
    lic = _pending(client, market)
    url = f"/api/v1/licenses/{lic['id']}/review"
    r = client.post(url, json={"decision": "reject"}, headers=market.operator.headers)
    assert r.status_code == 422 and "comment" in r.get_json()["errors"]
    r = client.post(
        url,
        json={"decision": "reject", "comment": "purpose too vague"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "rejected" and body["review_comment"] == "purpose too vague"
    r = client.post(url, json={"decision": "approve"}, headers=market.operator.headers)
    assert r.status_code == 409
    assert "cannot approve a licence that is rejected" in r.get_json()["message"]
    assert _events(lic["id"]) == ["license.applied", "license.rejected"]


@pytest.mark.parametrize("kind", ["buyer", "department", "regulator"])
def test_only_the_operator_reviews(client, market, kind):
    lic = _pending(client, market)
    party = market.buyer if kind == "buyer" else market.party(kind)
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/review", json={"decision": "approve"}, headers=party.headers
    )
    assert r.status_code == 403


def test_review_of_an_awaiting_payment_license_is_409(client, market):
    lic = apply(client, market, market.quote([(market.dataset(), 8_000)])).get_json()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/review",
        json={"decision": "approve"},
        headers=market.operator.headers,
    )
    assert r.status_code == 409


def test_suspend_reinstate_and_their_409s(client, market):
    lic = active_license(client, market)
    base = f"/api/v1/licenses/{lic['id']}"
    reg = market.regulator.headers

    assert (
        client.post(
            f"{base}/suspend", json={"reason": "x"}, headers=market.operator.headers
        ).status_code
        == 403
    )
    assert client.post(f"{base}/suspend", json={}, headers=reg).status_code == 422
    r = client.post(
        f"{base}/suspend", json={"reason": "complaint under investigation"}, headers=reg
    )
    assert r.status_code == 200 and r.get_json()["status"] == "suspended"
    assert r.get_json()["status_reason"] == "complaint under investigation"
    assert client.post(f"{base}/suspend", json={"reason": "again"}, headers=reg).status_code == 409
    r = client.post(f"{base}/reinstate", json={"reason": "cleared"}, headers=reg)
    assert r.status_code == 200 and r.get_json()["status"] == "active"
    assert client.post(f"{base}/reinstate", json={"reason": "x"}, headers=reg).status_code == 409
    assert _events(lic["id"]) == [
        "license.applied",
        "license.activated",
        "license.suspended",
        "license.reinstated",
    ]


def test_revoked_is_terminal(client, market):
    lic = _pending(client, market)
    base = f"/api/v1/licenses/{lic['id']}"
    r = client.post(
        f"{base}/revoke", json={"reason": "applicant withdrew"}, headers=market.operator.headers
    )
    assert r.status_code == 200 and r.get_json()["status"] == "revoked"
    for action, headers in (
        ("revoke", market.regulator.headers),
        ("suspend", market.regulator.headers),
        ("reinstate", market.regulator.headers),
    ):
        assert (
            client.post(f"{base}/{action}", json={"reason": "x"}, headers=headers).status_code
            == 409
        )
    assert (
        client.post(
            f"{base}/review", json={"decision": "approve"}, headers=market.operator.headers
        ).status_code
        == 409
    )
    assert (
        client.post(
            f"{base}/revoke", json={"reason": "x"}, headers=market.buyer.headers
        ).status_code
        == 403
    )
    assert _events(lic["id"]) == ["license.applied", "license.revoked"]


def test_settling_after_revocation_is_409(client, market):
    lic = apply(client, market, market.quote([(market.dataset(), 8_000)])).get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "x"},
        headers=market.regulator.headers,
    )
    r = client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "B1"},
        headers=market.operator.headers,
    )
    assert r.status_code == 409
    assert (
        client.post(
            f"/api/v1/payments/{pay['payment_id']}/settle",
            json={"bank_reference": "B1"},
            headers=market.buyer.headers,
        ).status_code
        == 403
    )


def test_settling_twice_is_409(client, market):
    lic = apply(client, market, market.quote([(market.dataset(), 8_000)])).get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    url = f"/api/v1/payments/{pay['payment_id']}/settle"
    assert (
        client.post(url, json={"bank_reference": "B1"}, headers=market.operator.headers).status_code
        == 200
    )
    r = client.post(url, json={"bank_reference": "B2"}, headers=market.operator.headers)
    assert r.status_code == 409 and "already settled" in r.get_json()["message"]
    assert (
        client.post(
            "/api/v1/payments/424242/settle",
            json={"bank_reference": "B"},
            headers=market.operator.headers,
        ).status_code
        == 404
    )


def test_who_sees_a_license(client, market):
    lic = apply(client, market, market.quote([(market.dataset(), 8_000)])).get_json()
    url = f"/api/v1/licenses/{lic['id']}"
    for headers in (market.buyer.headers, market.operator.headers, market.regulator.headers):
        assert client.get(url, headers=headers).status_code == 200
    for kind in ("buyer", "department", "subject"):
        r = client.get(url, headers=market.party(kind).headers)
        assert r.status_code == 404, kind
    assert client.get("/api/v1/licenses/999999", headers=market.buyer.headers).status_code == 404
    other = market.party("buyer")
    assert (
        client.post(
            f"{url}/payments", json={"provider": "invoice"}, headers=other.headers
        ).status_code
        == 404
    )
    assert client.get(f"{url}/document", headers=other.headers).status_code == 404
    # No document before activation.
    assert client.get(f"{url}/document", headers=market.buyer.headers).status_code == 409


def test_lists_are_scoped_and_filtered(client, market):
    mine = apply(client, market, market.quote([(market.dataset(), 8_000)])).get_json()
    other = market.party("buyer")
    theirs = apply(
        client,
        market,
        market.quote([(market.dataset(grade="conditional"), 8_000)], buyer=other.org),
        party=other,
    ).get_json()
    page = client.get("/api/v1/licenses", headers=market.buyer.headers).get_json()
    assert [i["id"] for i in page["items"]] == [mine["id"]]
    assert (page["total"], page["page"], page["per_page"]) == (1, 1, 20)
    page = client.get(
        "/api/v1/licenses?status=pending_review", headers=market.operator.headers
    ).get_json()
    assert [i["id"] for i in page["items"]] == [theirs["id"]]
    page = client.get("/api/v1/licenses", headers=market.regulator.headers).get_json()
    assert page["total"] == 2
    assert (
        client.get("/api/v1/licenses?status=bogus", headers=market.buyer.headers).status_code == 422
    )
    assert (
        client.get("/api/v1/licenses", headers=market.party("department").headers).status_code
        == 403
    )


def test_active_license_for(app, client, market):
    from licenses import services
    from market.accounts.actor import Actor
    from market.errors import Forbidden, NotFound
    from market.extensions import db

    lic = active_license(client, market)
    buyer = Actor.from_user(market.buyer.user)
    assert services.active_license_for(db.session, lic["id"], buyer).id == lic["id"]
    with pytest.raises(NotFound):
        services.active_license_for(
            db.session, lic["id"], Actor.from_user(market.party("buyer").user)
        )
    with pytest.raises(Forbidden):
        services.active_license_for(db.session, lic["id"], Actor.from_user(market.operator.user))
    with pytest.raises(NotFound):
        services.active_license_for(db.session, 999_999, buyer)

    client.post(
        f"/api/v1/licenses/{lic['id']}/suspend",
        json={"reason": "check"},
        headers=market.regulator.headers,
    )
    from flask_babel import force_locale

    with force_locale("en"), pytest.raises(Forbidden, match="suspended"):
        services.active_license_for(db.session, lic["id"], buyer)
    client.post(
        f"/api/v1/licenses/{lic['id']}/reinstate",
        json={"reason": "ok"},
        headers=market.regulator.headers,
    )
    client.post(
        "/api/v1/blacklist",
        json={"organization_id": market.buyer.org.id, "reason": "r"},
        headers=market.regulator.headers,
    )
    with force_locale("en"), pytest.raises(Forbidden, match="blacklist"):
        services.active_license_for(db.session, lic["id"], buyer)
