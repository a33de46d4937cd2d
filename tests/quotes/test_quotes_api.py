"""POST/GET /api/v1/quotes: explained, signed, expiring quotes for listed datasets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from math import ceil

import pytest
import sqlalchemy as sa

from tests.accounts.test_api import assert_envelope


def factor_product(factors: dict[str, str]) -> Decimal:
    product = Decimal(1)
    for value in factors.values():
        product *= Decimal(value)
    return product


def test_quote_happy_path_is_explained_and_signed(client, as_role, make_dataset, quote_body):
    from market.crypto import load_public_key, verify

    _, h = as_role("buyer")
    a, b = make_dataset(), make_dataset(category="tax", quality=95)
    r = client.post("/api/v1/quotes", headers=h, json=quote_body(a, b, duration=24, quota=5000))
    assert r.status_code == 201, r.get_json()
    q = r.get_json()
    assert q["currency"] == "CNY" and q["id"] > 0
    assert [i["dataset_id"] for i in q["items"]] == sorted([a.id, b.id])
    for item in q["items"]:
        assert isinstance(item["amount"], int) and item["amount"] > 0
        # The factors reproduce the amount: their exact product, rounded up to a fen.
        assert ceil(factor_product(item["factors"])) == item["amount"]
        assert set(item["factors"]) >= {
            "base_fen",
            "quality",
            "category",
            "purpose",
            "scope",
        }
        # The scope factor is the shares-weighted sum of its three parts (model revision 2).
        parts = item["scope_parts"]
        assert Decimal(item["factors"]["scope"]) == sum(
            Decimal(p["share"]) * Decimal(p["value"]) for p in parts.values()
        )
    assert q["total"] == sum(i["amount"] for i in q["items"]) - q["bundle_discount"]
    assert q["subtotal"] == sum(i["amount"] for i in q["items"])
    assert q["model_version"] == f"v2-p{q['params_version']}" and q["params_version"] == 1

    # The signature verifies with the published key, over the returned document.
    keys = {k["id"]: k for k in client.get("/api/v1/keys").get_json()["keys"]}
    assert q["public_key_id"] in keys
    public = load_public_key(keys[q["public_key_id"]]["public_key"])
    assert verify(public, q["document"], q["signature"])
    assert q["document"]["total"] == q["total"] and q["document"]["id"] == q["id"]
    tampered = {**q["document"], "total": q["total"] - 1}
    assert not verify(public, tampered, q["signature"])

    # The buyer reads it back unchanged.
    again = client.get(f"/api/v1/quotes/{q['id']}", headers=h)
    assert again.status_code == 200
    assert (
        again.get_json()["signature"] == q["signature"] and again.get_json()["total"] == q["total"]
    )


def test_public_welfare_is_free(client, as_role, make_dataset, quote_body):
    _, h = as_role("buyer")
    d = make_dataset()
    q = client.post(
        "/api/v1/quotes", headers=h, json=quote_body(d, purpose="public_welfare")
    ).get_json()
    assert q["total"] == 0 and q["items"][0]["amount"] == 0
    assert Decimal(q["items"][0]["factors"]["purpose"]) == 0


def test_columns_null_means_all_and_entity_key_is_always_included(
    client, as_role, make_dataset, quote_body
):
    _, h = as_role("buyer")
    d = make_dataset()
    everything = client.post("/api/v1/quotes", headers=h, json=quote_body(d)).get_json()["items"][0]
    # The suppressed column carries no data: neither priced nor licensed.
    assert everything["columns"] == sorted(
        ["enterprise_pseudonym", "industry", "district", "registered_capital"]
    )
    assert Decimal(everything["scope_parts"]["columns"]["value"]) == 1
    one = client.post(
        "/api/v1/quotes", headers=h, json=quote_body(d, columns=["industry"])
    ).get_json()["items"][0]
    assert one["columns"] == ["enterprise_pseudonym", "industry"]
    assert one["amount"] < everything["amount"]
    # weights: key 1 + industry 2 out of 1 + 2 + 1.5 + 3
    assert Decimal(one["scope_parts"]["columns"]["value"]) == (
        Decimal(3) / Decimal("7.5")
    ).quantize(Decimal("1e-10"))


def test_expiry_is_stored_and_configurable(app, client, as_role, make_dataset, quote_body):
    from market.extensions import db
    from market.quotes.models import Quote

    _, h = as_role("buyer")
    d = make_dataset()
    before = dt.datetime.now(dt.UTC)
    q = client.post("/api/v1/quotes", headers=h, json=quote_body(d)).get_json()
    row = db.session.get(Quote, q["id"])
    assert dt.timedelta(days=7) <= row.expires_at - before <= dt.timedelta(days=7, minutes=1)
    assert q["expires_at"] == row.expires_at.isoformat() and q["expired"] is False
    assert row.document["expires_at"].endswith("Z")
    app.config["MARKET_QUOTE_VALID_DAYS"] = 2
    try:
        q2 = client.post("/api/v1/quotes", headers=h, json=quote_body(d)).get_json()
    finally:
        del app.config["MARKET_QUOTE_VALID_DAYS"]
    assert db.session.get(Quote, q2["id"]).expires_at - before <= dt.timedelta(days=2, minutes=1)


def test_quote_is_audited_without_personal_data(app, client, as_role, make_dataset, quote_body):
    from market.audit.models import AuditEvent
    from market.extensions import db

    user, h = as_role("buyer")
    d = make_dataset()
    q = client.post("/api/v1/quotes", headers=h, json=quote_body(d)).get_json()
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "quote.created")
    ).one()
    assert event.subject_id == str(q["id"]) and event.actor_user_id == user.id
    assert event.data == {
        "total": q["total"],
        "currency": "CNY",
        "params_version": 1,
        "purpose": "internal_risk_control",
        "datasets": [d.id],
    }


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda b, ctx: b["items"].append({"dataset_id": 999_999, "columns": None}),
            "items[1].dataset_id",
        ),
        (
            lambda b, ctx: b["items"].append({"dataset_id": ctx["unlisted"].id}),
            "items[1].dataset_id",
        ),
        (lambda b, ctx: b.update(purpose="speculation"), "purpose"),
        (
            lambda b, ctx: b["items"][0].update(columns=["industry", "no_such_column"]),
            "items[0].columns",
        ),
        (lambda b, ctx: b["items"][0].update(columns=["legal_rep_name"]), "items[0].columns"),
        (lambda b, ctx: b["items"][0].update(columns=[]), "items[0].columns"),
        (lambda b, ctx: b.update(exclusive=True), "exclusive"),
        (lambda b, ctx: b["items"][0].update(exclusivity=True), "items"),
        (lambda b, ctx: b.update(duration_months=61), "duration_months"),
        (lambda b, ctx: b.update(query_quota=0), "query_quota"),
        (lambda b, ctx: b.update(duration_months="12"), "duration_months"),
        (lambda b, ctx: b.update(items=[]), "items"),
        (lambda b, ctx: b["items"].append(dict(b["items"][0])), "items[1].dataset_id"),
        (lambda b, ctx: b["items"].append({"dataset_id": ctx["low"].id}), "items[1].dataset_id"),
        (
            lambda b, ctx: b["items"].append({"dataset_id": ctx["unscored"].id}),
            "items[1].dataset_id",
        ),
    ],
    ids=[
        "unknown-dataset",
        "unlisted-dataset",
        "bad-purpose",
        "unknown-column",
        "suppressed-column",
        "no-columns",
        "exclusive",
        "item-exclusivity",
        "too-long",
        "zero-quota",
        "string-duration",
        "no-items",
        "same-dataset-twice",
        "below-quality-floor",
        "no-quality-score",
    ],
)
def test_validation_errors_name_the_item(client, as_role, make_dataset, quote_body, mutate, field):
    _, h = as_role("buyer")
    ctx = {
        "listed": make_dataset(),
        "unlisted": make_dataset(status="pending_review"),
        "low": make_dataset(quality=40),
        "unscored": make_dataset(quality=None),
    }
    body = quote_body(ctx["listed"])
    mutate(body, ctx)
    r = client.post("/api/v1/quotes", headers=h, json=body)
    errors = assert_envelope(r, 422)["errors"]
    assert field in errors, errors


def test_exclusivity_is_refused_with_a_reason(client, as_role, make_dataset, quote_body):
    _, h = as_role("buyer")
    body = assert_envelope(
        client.post("/api/v1/quotes", headers=h, json=quote_body(make_dataset(), exclusive=True)),
        422,
    )
    assert "never licensed exclusively" in body["errors"]["exclusive"][0]


def test_only_buyers_ask_for_quotes_and_pending_buyers_may(
    client, as_role, make_dataset, quote_body
):
    d = make_dataset()
    for role in ("operator", "regulator", "department", "subject"):
        _, h = as_role(role)
        assert_envelope(client.post("/api/v1/quotes", headers=h, json=quote_body(d)), 403)
    assert_envelope(client.post("/api/v1/quotes", json=quote_body(d)), 401)
    _, pending = as_role("buyer", status="pending")
    assert client.post("/api/v1/quotes", headers=pending, json=quote_body(d)).status_code == 201


def test_another_buyer_gets_404(client, as_role, make_dataset, quote_body):
    _, mine = as_role("buyer")
    _, theirs = as_role("buyer")
    _, operator = as_role("operator")
    q = client.post("/api/v1/quotes", headers=mine, json=quote_body(make_dataset())).get_json()
    assert_envelope(client.get(f"/api/v1/quotes/{q['id']}", headers=theirs), 404)
    assert_envelope(client.get(f"/api/v1/quotes/{q['id']}", headers=operator), 404)
    assert_envelope(client.get("/api/v1/quotes/987654", headers=mine), 404)


def test_quote_list_is_per_organization(
    client, as_role, make_user, auth_header, make_dataset, quote_body
):
    me, h = as_role("buyer")
    colleague = auth_header(make_user("buyer", org=me.organization))
    _, other = as_role("buyer")
    d = make_dataset()
    ids = [
        client.post("/api/v1/quotes", headers=hh, json=quote_body(d)).get_json()["id"]
        for hh in (h, colleague)
    ]
    client.post("/api/v1/quotes", headers=other, json=quote_body(d))
    page = client.get("/api/v1/quotes?per_page=10", headers=h).get_json()
    assert page["total"] == 2 and sorted(i["id"] for i in page["items"]) == sorted(ids)
    # A colleague in the same organization sees the organization's quote.
    assert client.get(f"/api/v1/quotes/{ids[0]}", headers=colleague).status_code == 200


def test_rate_limit_gives_429_in_the_envelope(app, client, as_role, make_dataset, quote_body):
    from market.extensions import limiter

    _, h = as_role("buyer")
    d = make_dataset()
    app.config["MARKET_QUOTE_RATE_LIMIT"] = "2 per minute"
    limiter.enabled = True
    try:
        codes = [
            client.post("/api/v1/quotes", headers=h, json=quote_body(d)).status_code
            for _ in range(2)
        ]
        r = client.post("/api/v1/quotes", headers=h, json=quote_body(d))
        # Another user has a budget of their own.
        _, h2 = as_role("buyer")
        other = client.post("/api/v1/quotes", headers=h2, json=quote_body(d)).status_code
    finally:
        limiter.enabled = False
        del app.config["MARKET_QUOTE_RATE_LIMIT"]
    assert codes == [201, 201] and other == 201
    body = assert_envelope(r, 429)
    assert "Too many requests" in body["message"]


def test_openapi_describes_the_pricing_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/quotes",
        "/api/v1/quotes/{quote_id}",
        "/api/v1/pricing/parameters",
        "/api/v1/pricing/revenue-caps",
        "/api/v1/licenses/{license_id}/upgrade-quotes",
    ):
        assert path in paths, path
