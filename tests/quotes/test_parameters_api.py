"""GET/PUT /api/v1/pricing/parameters: versioned, operator-edited, never retroactive."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import pricing
from tests.accounts.test_api import assert_envelope


def test_first_read_seeds_the_default_version(app, client):
    from market.audit.models import AuditEvent
    from market.extensions import db

    r = client.get("/api/v1/pricing/parameters")  # anyone, even anonymous
    assert r.status_code == 200
    body = r.get_json()
    assert body["version"] == 1 and body["created_at"]
    assert body["parameters"] == pricing.PricingParameters.default().to_dict()
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 1  # seeded once
    seeded = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "pricing.parameters_seeded")
    ).all()
    assert len(seeded) == 1


def test_operator_saves_a_new_version_and_it_is_audited(app, client, as_role):
    from market.audit.models import AuditEvent
    from market.extensions import db

    user, h = as_role("operator")
    r = client.put(
        "/api/v1/pricing/parameters",
        headers=h,
        json={
            "parameters": {"reasonable_return": "0.1", "category_coefficients": {"tax": "2"}},
            "note": "季度复核",
        },
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == 2 and body["note"] == "季度复核"
    assert body["parameters"]["reasonable_return"] == "0.1"
    assert body["parameters"]["category_coefficients"] == {"tax": "2"}
    # Fields not sent keep their value.
    assert (
        body["parameters"]["horizon_months"] == pricing.PricingParameters.default().horizon_months
    )
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 2
    r = client.put(
        "/api/v1/pricing/parameters", headers=h, json={"parameters": {"expected_licenses": 30}}
    )
    assert r.get_json()["version"] == 3
    history = client.get("/api/v1/pricing/parameters/versions").get_json()
    assert [v["version"] for v in history["items"]] == [3, 2, 1]
    assert (
        client.get("/api/v1/pricing/parameters/versions/2").get_json()["parameters"][
            "reasonable_return"
        ]
        == "0.1"
    )
    assert_envelope(client.get("/api/v1/pricing/parameters/versions/99"), 404)

    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.type == "pricing.parameters_updated")
        .order_by(AuditEvent.seq)
    ).all()
    assert [e.data["version"] for e in events] == [2, 3]
    assert events[0].data["changed"] == ["category_coefficients", "reasonable_return"]
    assert events[0].actor_user_id == user.id


@pytest.mark.parametrize("role", ["buyer", "department", "regulator", "subject"])
def test_only_the_operator_edits(client, as_role, role):
    _, h = as_role(role)
    r = client.put(
        "/api/v1/pricing/parameters", headers=h, json={"parameters": {"reasonable_return": "0.1"}}
    )
    assert_envelope(r, 403)
    assert_envelope(client.put("/api/v1/pricing/parameters", json={"parameters": {}}), 401)


def test_a_pending_operator_cannot_edit(client, as_role):
    _, h = as_role("operator", status="pending")
    assert_envelope(
        client.put(
            "/api/v1/pricing/parameters",
            headers=h,
            json={"parameters": {"reasonable_return": "0.1"}},
        ),
        403,
    )


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"reasonable_return": "1.5"}, "reasonable_return"),
        ({"reasonable_return": 0.08}, "reasonable_return"),  # floats are refused: send "0.08"
        ({"duration_exponent": "1"}, "duration_exponent"),
        (
            {
                "purpose_coefficients": {
                    "public_welfare": "0.1",
                    "research": "0.3",
                    "internal_risk_control": "0.7",
                    "commercial_product": "1",
                }
            },
            "purpose_coefficients.public_welfare",
        ),
        ({"category_ceilings_fen": {"tax": -5}}, "category_ceilings_fen.tax"),
        (
            {
                "bundle_discount_brackets": [
                    {"from_fen": 0, "rate": "0.1"},
                    {"from_fen": 10, "rate": "0.05"},
                ]
            },
            "bundle_discount_brackets[1].rate",
        ),
        ({"no_such_parameter": 1}, "no_such_parameter"),
        ({"horizon_months": "36"}, "horizon_months"),
    ],
)
def test_invalid_parameters_give_422_naming_the_field(client, as_role, parameters, field):
    _, h = as_role("operator")
    body = assert_envelope(
        client.put("/api/v1/pricing/parameters", headers=h, json={"parameters": parameters}), 422
    )
    assert field in body["errors"], body
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 1


def test_nothing_changed_and_stale_base_version(client, as_role):
    _, h = as_role("operator")
    same = {"parameters": {"reasonable_return": "0.08"}}
    assert (
        "parameters"
        in assert_envelope(client.put("/api/v1/pricing/parameters", headers=h, json=same), 422)[
            "errors"
        ]
    )
    ok = client.put(
        "/api/v1/pricing/parameters",
        headers=h,
        json={"parameters": {"reasonable_return": "0.09"}, "base_version": 1},
    )
    assert ok.status_code == 200
    stale = client.put(
        "/api/v1/pricing/parameters",
        headers=h,
        json={"parameters": {"reasonable_return": "0.1"}, "base_version": 1},
    )
    assert "base_version" in assert_envelope(stale, 409)["errors"]


def test_issued_quotes_keep_their_price_and_version(app, client, as_role, make_dataset, quote_body):
    from market.extensions import db
    from market.quotes import services
    from market.quotes.models import Quote

    _, buyer = as_role("buyer")
    _, operator = as_role("operator")
    d = make_dataset()
    before = client.post("/api/v1/quotes", headers=buyer, json=quote_body(d)).get_json()
    assert before["params_version"] == 1
    r = client.put(
        "/api/v1/pricing/parameters",
        headers=operator,
        json={"parameters": {"category_coefficients": {"market_supervision": "2.4"}}},
    )
    assert r.get_json()["version"] == 2
    after = client.post("/api/v1/quotes", headers=buyer, json=quote_body(d)).get_json()
    assert after["params_version"] == 2 and after["model_version"] == "v2-p2"
    assert after["total"] > before["total"]
    again = client.get(f"/api/v1/quotes/{before['id']}", headers=buyer).get_json()
    assert (again["total"], again["params_version"], again["signature"]) == (
        before["total"],
        1,
        before["signature"],
    )
    assert services.verify_quote(db.session.get(Quote, before["id"]))
