"""#13.4: a free (public-welfare) license is never granted on the buyer's word.

Rule: every free license (price 0) goes to the operator's review, with the buyer's written
justification (required), and only an eligible organization may apply: one whose Unified
Social Credit Code says it is a public body (registration authority ``1`` 机构编制: organs
and public institutions; ``5`` 民政: social organizations, foundations), or one on the
operator's whitelist of public-welfare bodies. A bank (``9`` 工商) is eligible only through
the whitelist. Eligibility is checked again when the operator approves.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import valid_uscc

JUSTIFICATION = "Free flood-risk maps for the district's residents, published openly."


def _apply(client, market, quote, party=None, justification: str | None = JUSTIFICATION):
    body = {"quote_id": quote.id, "purpose_statement": "public flood-risk maps"}
    if justification is not None:
        body["free_use_justification"] = justification
    return client.post("/api/v1/licenses", json=body, headers=(party or market.buyer).headers)


def _whitelist(client, market, org_id: int, reason: str = "registered charity"):
    return client.post(
        "/api/v1/public-welfare-bodies",
        json={"organization_id": org_id, "reason": reason},
        headers=market.operator.headers,
    )


def _free_quote(market, party=None, grade: str = "open"):
    return market.quote(
        [(market.dataset(grade=grade), 0)],
        purpose="public_welfare",
        duration_months=36,
        buyer=(party or market.buyer).org,
    )


def test_a_bank_is_not_eligible_on_its_word(client, market):
    r = _apply(client, market, _free_quote(market))
    assert r.status_code == 403, r.get_json()
    assert "public-welfare" in r.get_json()["message"]


def test_a_whitelisted_body_waits_for_review_then_is_active(app, client, market):
    from licenses.models import LedgerJournal
    from market.extensions import db

    assert _whitelist(client, market, market.buyer.org.id).status_code == 201
    r = _apply(client, market, _free_quote(market))
    assert r.status_code == 201, r.get_json()
    lic = r.get_json()
    assert lic["status"] == "pending_review"  # never active on application
    assert lic["free_use_justification"] == JUSTIFICATION
    # The buyer cannot use it yet.
    queue = client.get("/api/v1/licenses?status=pending_review", headers=market.operator.headers)
    assert lic["id"] in [item["id"] for item in queue.get_json()["items"]]
    approved = client.post(
        f"/api/v1/licenses/{lic['id']}/review",
        json={"decision": "approve"},
        headers=market.operator.headers,
    )
    assert approved.status_code == 200 and approved.get_json()["status"] == "active"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerJournal)) == 0


def test_the_justification_is_required(client, market):
    _whitelist(client, market, market.buyer.org.id)
    for text in (None, "", "   "):
        r = _apply(client, market, _free_quote(market), justification=text)
        assert r.status_code == 422, r.get_json()
        assert "free_use_justification" in r.get_json()["errors"]


@pytest.mark.parametrize(("prefix", "eligible"), [("12310000", True), ("53310000", True),
                                                  ("91310000", False)])
def test_eligibility_by_organization_kind_in_the_credit_code(
    app, client, market, prefix, eligible
):
    from market.accounts.models import Organization
    from market.extensions import db

    party = market.party("buyer")
    org = db.session.get(Organization, party.org.id)
    org.credit_code = valid_uscc(org.id + 555_000, prefix=prefix)
    db.session.commit()
    r = _apply(client, market, _free_quote(market, party), party=party)
    assert r.status_code == (201 if eligible else 403), r.get_json()
    if eligible:
        assert r.get_json()["status"] == "pending_review"


def test_approval_rechecks_eligibility(client, market):
    _whitelist(client, market, market.buyer.org.id)
    lic = _apply(client, market, _free_quote(market)).get_json()
    r = client.delete(
        f"/api/v1/public-welfare-bodies/{market.buyer.org.id}",
        json={"reason": "no longer a charity"},
        headers=market.operator.headers,
    )
    assert r.status_code == 204
    approved = client.post(
        f"/api/v1/licenses/{lic['id']}/review",
        json={"decision": "approve"},
        headers=market.operator.headers,
    )
    assert approved.status_code == 409, approved.get_json()
    # Rejecting is still possible.
    rejected = client.post(
        f"/api/v1/licenses/{lic['id']}/review",
        json={"decision": "reject", "comment": "not eligible"},
        headers=market.operator.headers,
    )
    assert rejected.get_json()["status"] == "rejected"


def test_paid_licenses_need_no_justification(client, market):
    quote = market.quote([(market.dataset(), 5_000)])
    r = client.post(
        "/api/v1/licenses",
        json={"quote_id": quote.id, "purpose_statement": "risk scoring"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 201 and r.get_json()["status"] == "awaiting_payment"


def test_only_the_operator_keeps_the_whitelist(client, market):
    org_id = market.buyer.org.id
    for party in (market.buyer, market.regulator):
        r = client.post(
            "/api/v1/public-welfare-bodies",
            json={"organization_id": org_id, "reason": "x"},
            headers=party.headers,
        )
        assert r.status_code == 403
    assert _whitelist(client, market, org_id).status_code == 201
    assert _whitelist(client, market, org_id).status_code == 409
    assert _whitelist(client, market, market.operator.org.id).status_code == 422
    assert _whitelist(client, market, org_id, reason=" ").status_code == 422
    listed = client.get("/api/v1/public-welfare-bodies", headers=market.regulator.headers)
    assert [e["organization"]["id"] for e in listed.get_json()["items"]] == [org_id]
    assert client.get("/api/v1/public-welfare-bodies", headers=market.buyer.headers).status_code == 403


def test_the_review_queue_shows_the_justification_and_eligibility(client, market):
    from tests.licenses_app.test_web import login

    _whitelist(client, market, market.buyer.org.id)
    lic = _apply(client, market, _free_quote(market)).get_json()
    login(client, market.operator)
    page = client.get("/licenses/review").get_data(as_text=True)
    assert f'data-testid="justification-{lic["id"]}"' in page
    assert "Free flood-risk maps for the district" in page
    assert f'data-testid="eligibility-{lic["id"]}"' in page


def test_the_apply_page_asks_for_the_justification(client, market):
    from market.extensions import db
    from tests.licenses_app.test_web import login

    _whitelist(client, market, market.buyer.org.id)
    quote = _free_quote(market)
    token = login(client, market.buyer)
    page = client.get(f"/licenses/apply/{quote.id}").get_data(as_text=True)
    assert 'name="free_use_justification"' in page
    r = client.post(
        f"/licenses/apply/{quote.id}",
        data={"purpose_statement": "flood maps", "csrf_token": token},
    )
    assert r.status_code == 422
    r = client.post(
        f"/licenses/apply/{quote.id}",
        data={
            "purpose_statement": "flood maps",
            "free_use_justification": JUSTIFICATION,
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    from licenses.models import License

    lic = db.session.scalar(sa.select(License).where(License.quote_id == quote.id))
    assert lic.status == "pending_review" and lic.free_use_justification == JUSTIFICATION


def test_the_license_page_shows_the_justification(client, market):
    from tests.licenses_app.test_web import login

    _whitelist(client, market, market.buyer.org.id)
    lic = _apply(client, market, _free_quote(market)).get_json()
    login(client, market.buyer)
    page = client.get(f"/licenses/{lic['id']}").get_data(as_text=True)
    assert 'data-testid="free-use-justification"' in page
