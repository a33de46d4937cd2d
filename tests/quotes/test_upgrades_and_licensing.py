"""Upgrade quotes (P(new) − P(old) under the license's original parameters) and the check a
license application makes on its quote."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.accounts.test_api import assert_envelope


@pytest.fixture
def licensed(client, as_role, make_dataset, make_license, quote_body):
    """A buyer with an active one-dataset license on two of the dataset's columns."""
    user, h = as_role("buyer")
    d = make_dataset()
    q = client.post(
        "/api/v1/quotes", headers=h, json=quote_body(d, columns=["industry"], duration=6, quota=500)
    )
    from market.extensions import db
    from market.quotes.models import Quote

    quote = db.session.get(Quote, q.get_json()["id"])
    return {"user": user, "h": h, "dataset": d, "quote": quote, "license": make_license(quote)}


def url(lic) -> str:
    return f"/api/v1/licenses/{lic.id}/upgrade-quotes"


def test_upgrade_quote_is_the_difference(client, licensed, quote_body):
    lic, h, d = licensed["license"], licensed["h"], licensed["dataset"]
    r = client.post(
        url(lic), headers=h, json={"duration_months": 12, "columns": ["industry", "district"]}
    )
    assert r.status_code == 201, r.get_json()
    up = r.get_json()
    assert up["upgrade_of_license_id"] == lic.id
    assert up["previous_total"] == licensed["quote"].total_fen
    # The new total is what a fresh quote for the wider scope costs (same parameters).
    fresh = client.post(
        "/api/v1/quotes",
        headers=h,
        json=quote_body(d, columns=["industry", "district"], duration=12, quota=500),
    ).get_json()
    assert up["new_total"] == fresh["total"]
    assert up["total"] == up["new_total"] - up["previous_total"] > 0
    assert up["items"][0]["previous_amount"] == licensed["quote"].items[0]["amount"]
    assert up["document"]["upgrade_of_license_id"] == lic.id
    assert up["duration_months"] == 12 and up["query_quota"] == 500


def test_upgrade_uses_the_licenses_original_parameter_version(client, as_role, licensed):
    _, operator = as_role("operator")
    client.put(
        "/api/v1/pricing/parameters",
        headers=operator,
        json={"parameters": {"category_coefficients": {"market_supervision": "5"}}},
    )
    up = client.post(
        url(licensed["license"]), headers=licensed["h"], json={"query_quota": 2000}
    ).get_json()
    assert up["params_version"] == 1 and up["previous_total"] == licensed["quote"].total_fen
    assert up["total"] >= 0


def test_columns_null_widens_to_all_and_object_form(client, licensed):
    lic, h, d = licensed["license"], licensed["h"], licensed["dataset"]
    everything = client.post(url(lic), headers=h, json={"columns": None}).get_json()
    assert len(everything["items"][0]["columns"]) == 4
    by_id = client.post(
        url(lic), headers=h, json={"columns": {str(d.id): ["industry", "registered_capital"]}}
    )
    assert by_id.status_code == 201
    assert 0 < by_id.get_json()["total"] < everything["total"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"duration_months": 3}, 422, "duration_months"),  # narrowing
        ({"columns": ["district"]}, 422, "columns"),  # drops industry
        ({}, 422, "upgrade"),  # nothing changes
        ({"duration_months": 6, "query_quota": 500}, 422, "upgrade"),
        ({"columns": ["no_such_column"]}, 422, None),
        ({"columns": {"999999": ["industry"]}}, 422, "columns.999999"),
        ({"columns": "industry"}, 422, "columns"),
        ({"exclusive": True}, 422, "exclusive"),
    ],
)
def test_bad_upgrades(client, licensed, body, code, field):
    errors = assert_envelope(
        client.post(url(licensed["license"]), headers=licensed["h"], json=body), code
    ).get("errors", {})
    if field:
        assert field in errors, errors


def test_upgrade_needs_the_owner_and_an_active_license(app, client, as_role, licensed):
    from market.extensions import db

    _, other = as_role("buyer")
    _, operator = as_role("operator")
    lic = licensed["license"]
    assert_envelope(client.post(url(lic), headers=other, json={"duration_months": 12}), 404)
    # The operator may see the license but does not hold it: the wrong role, so 403 (API.md).
    assert_envelope(client.post(url(lic), headers=operator, json={"duration_months": 12}), 403)
    assert_envelope(
        client.post("/api/v1/licenses/987654/upgrade-quotes", headers=licensed["h"], json={}), 404
    )
    lic.status = "suspended"
    db.session.commit()
    assert_envelope(client.post(url(lic), headers=licensed["h"], json={"duration_months": 12}), 409)


def test_quote_for_license_checks_owner_expiry_kind_use_and_signature(
    app, client, as_role, licensed, make_dataset, quote_body
):
    from market.accounts.actor import Actor
    from market.errors import Conflict, NotFound
    from market.extensions import db
    from market.quotes import services
    from market.quotes.models import Quote

    buyer = Actor.from_user(licensed["user"])
    fresh_id = client.post(
        "/api/v1/quotes", headers=licensed["h"], json=quote_body(make_dataset())
    ).get_json()["id"]
    fresh = services.quote_for_license(db.session, buyer, fresh_id)
    assert fresh.id == fresh_id

    other_user, _ = as_role("buyer")
    with pytest.raises(NotFound):
        services.quote_for_license(db.session, Actor.from_user(other_user), fresh_id)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    from flask_babel import force_locale

    def quote_for_license_en(*args, **kwargs):
        # A service called outside a request speaks the default language, zh.
        with force_locale("en"):
            return services.quote_for_license(*args, **kwargs)

    with pytest.raises(Conflict, match="expired"):
        quote_for_license_en(db.session, buyer, fresh_id, now=later)
    # Already used for the license.
    with pytest.raises(Conflict, match="already"):
        quote_for_license_en(db.session, buyer, licensed["quote"].id)
    # An upgrade quote only upgrades its own license.
    up_id = client.post(
        url(licensed["license"]), headers=licensed["h"], json={"duration_months": 12}
    ).get_json()["id"]
    with pytest.raises(Conflict, match="upgrades license"):
        quote_for_license_en(db.session, buyer, up_id)
    assert (
        quote_for_license_en(db.session, buyer, up_id, upgrade_of=licensed["license"].id).id
        == up_id
    )
    with pytest.raises(Conflict, match="not for an upgrade"):
        quote_for_license_en(db.session, buyer, fresh_id, upgrade_of=licensed["license"].id)
    # A row edited behind the signature's back is refused.
    row = db.session.get(Quote, fresh_id)
    row.total_fen = 1
    db.session.flush()
    with pytest.raises(Conflict, match="signature"):
        quote_for_license_en(db.session, buyer, fresh_id)
