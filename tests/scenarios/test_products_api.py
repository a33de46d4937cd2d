"""Data products (数据产品): one price from the parts, publication, applying under a scenario,
the ordinary license flow, the product's access enforced, revenue by scenario and product."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.scenarios.conftest import approved_scenario, product_body, published_product


def _model_price(world, body: dict) -> int:
    """The product priced by the pure model directly, from the same datasets."""
    import pricing
    from market.extensions import db
    from market.quotes.parameters import current_parameter_set, parameters_of
    from market.quotes.services import priced_dataset

    parts = [
        pricing.ProductPart(
            priced_dataset(db.session, item["dataset_id"], "x").info,
            frozenset(item["columns"]) if item["columns"] is not None else None,
        )
        for item in body["items"]
    ]
    terms = pricing.ProductTerms(body["purpose"], body["duration_months"], body["query_quota"])
    return pricing.price_product(parts, terms, parameters_of(current_parameter_set(db.session))).total


def _pay_and_settle(client, world, lic: dict) -> dict:
    pay = client.post(f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"},
                      headers=world.buyer)
    assert pay.status_code in (200, 201), pay.get_json()
    r = client.post(f"/api/v1/payments/{pay.get_json()['payment_id']}/settle",
                    json={"bank_reference": "BANK-1"}, headers=world.operator)
    assert r.status_code == 200, r.get_json()
    return client.get(f"/api/v1/licenses/{lic['id']}", headers=world.buyer).get_json()


def test_the_product_has_one_price_computed_by_the_model_and_never_above_its_parts(client, world):
    body = product_body(world)
    r = client.post("/api/v1/products", json=body, headers=world.operator)
    assert r.status_code == 201, r.get_json()
    product = r.get_json()
    assert product["status"] == "draft"
    assert product["price"] == _model_price(world, body) > 0
    alone = [
        _model_price(world, {**body, "items": [item]}) for item in body["items"]
    ]
    assert product["price"] <= sum(alone)
    assert [i["amount"] for i in product["items"]] == alone  # items priced alone, then discount


def test_composition_errors_name_the_field(client, world, make_dataset):
    unlisted = make_dataset(status="pending_review")
    cases = [
        ({"items": []}, "items"),
        ({"items": [{"dataset_id": unlisted.id, "columns": None}]}, "items"),
        ({"items": [{"dataset_id": world.tax.id, "columns": ["nope"]}]}, "columns"),
        ({"access": "download"}, "access"),
        ({"purpose": "exclusive"}, "purpose"),
        ({"duration_months": 61}, "duration_months"),
    ]
    for over, field in cases:
        r = client.post("/api/v1/products", json=product_body(world, **over),
                        headers=world.operator)
        assert r.status_code == 422, (over, r.get_json())
        assert field in str(r.get_json()["errors"]), (over, r.get_json())
    for headers in (world.buyer, world.regulator, world.department):
        assert client.post("/api/v1/products", json=product_body(world),
                           headers=headers).status_code == 403


def test_publication_and_visibility(client, world):
    draft = client.post("/api/v1/products", json=product_body(world),
                        headers=world.operator).get_json()
    assert client.get(f"/api/v1/products/{draft['id']}", headers=world.buyer).status_code == 404
    assert client.get("/api/v1/products").get_json()["items"] == []
    assert client.post(f"/api/v1/products/{draft['id']}/status", json={"action": "publish"},
                       headers=world.buyer).status_code == 403
    r = client.post(f"/api/v1/products/{draft['id']}/status", json={"action": "publish"},
                    headers=world.operator)
    assert r.get_json()["status"] == "published"
    assert [p["id"] for p in client.get("/api/v1/products").get_json()["items"]] == [draft["id"]]
    assert client.post(f"/api/v1/products/{draft['id']}/status", json={"action": "publish"},
                       headers=world.operator).status_code == 409
    r = client.post(f"/api/v1/products/{draft['id']}/status", json={"action": "withdraw"},
                    headers=world.operator)
    assert r.get_json()["status"] == "withdrawn"
    assert client.get(f"/api/v1/products/{draft['id']}").status_code == 404


def test_apply_under_a_scenario_runs_the_ordinary_license_flow(client, world):
    from market.audit.models import AuditEvent
    from market.extensions import db

    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    assert [s["id"] for s in product["scenarios"]] == [scenario["id"]]
    r = client.post(f"/api/v1/products/{product['id']}/apply",
                    json={"scenario_id": scenario["id"], "purpose_statement": "小微企业授信审批"},
                    headers=world.buyer)
    assert r.status_code == 201, r.get_json()
    lic = r.get_json()
    assert lic["scenario_id"] == scenario["id"] and lic["product_id"] == product["id"]
    assert lic["status"] == "awaiting_payment"
    assert lic["price"]["total"] == product["price"]
    # Exactly the product's datasets and columns (the entity key always comes along).
    granted = {d["dataset_id"]: sorted(d["columns"]) for d in lic["scope"]["datasets"]}
    assert granted[world.registry.id] == sorted(["enterprise_pseudonym", "industry", "district"])
    assert "registered_capital" not in granted[world.registry.id]
    assert set(granted) == {world.registry.id, world.tax.id}
    active = _pay_and_settle(client, world, lic)
    assert active["status"] == "active"
    (event,) = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "product.applied")
    ).all()
    assert event.data["scenario_id"] == scenario["id"] and event.subject_id == str(lic["id"])


def test_apply_refuses_what_the_scenario_does_not_cover(client, world, make_dataset):
    narrow = approved_scenario(client, world, code="registry-only",
                               dataset_ids=[world.registry.id])
    research = approved_scenario(client, world, code="research-only",
                                 purposes=["research"])
    product = published_product(client, world)
    for scenario in (narrow, research):
        r = client.post(f"/api/v1/products/{product['id']}/apply",
                        json={"scenario_id": scenario["id"], "purpose_statement": "x"},
                        headers=world.buyer)
        assert r.status_code == 409 and "scenario_id" in r.get_json()["errors"]
    pending = client.post("/api/v1/scenarios", json={
        "code": "pending", "title": "待审场景", "description": "x",
        "dataset_ids": [world.registry.id, world.tax.id], "purposes": ["internal_risk_control"],
    }, headers=world.operator).get_json()
    r = client.post(f"/api/v1/products/{product['id']}/apply",
                    json={"scenario_id": pending["id"], "purpose_statement": "x"},
                    headers=world.buyer)
    assert r.status_code == 404
    for headers in (world.operator, world.department, world.regulator):
        r = client.post(f"/api/v1/products/{product['id']}/apply",
                        json={"scenario_id": narrow["id"], "purpose_statement": "x"},
                        headers=headers)
        assert r.status_code == 403


def test_a_lookups_only_product_refuses_sandbox_queries_and_vice_versa(client, world):
    scenario = approved_scenario(client, world)
    lookups = published_product(client, world)
    sandbox_only = published_product(client, world, code="sandbox-only", access="sandbox")
    licenses = {}
    for product in (lookups, sandbox_only):
        lic = client.post(f"/api/v1/products/{product['id']}/apply",
                          json={"scenario_id": scenario["id"], "purpose_statement": "x"},
                          headers=world.buyer).get_json()
        licenses[product["access"]] = _pay_and_settle(client, world, lic)
    r = client.post(f"/api/v1/sandbox/{licenses['lookups']['id']}/queries",
                    json={"sql": "SELECT 1"}, headers=world.buyer)
    assert r.status_code == 403 and r.get_json()["errors"]["rule"] == "product_access"
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    r = client.post("/api/v1/consents", json={
        "license_id": licenses["sandbox"]["id"], "subject_credit_code": "91310115MA1K7D2P0X",
        "purpose": "授信", "valid_until": until,
    }, headers=world.buyer)
    assert r.status_code == 403, r.get_json()
    assert "license_id" in r.get_json()["errors"]


def test_revenue_is_grouped_by_scenario_and_product(client, world):
    from licenses.ledger import period_of

    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    lic = client.post(f"/api/v1/products/{product['id']}/apply",
                      json={"scenario_id": scenario["id"], "purpose_statement": "x"},
                      headers=world.buyer).get_json()
    _pay_and_settle(client, world, lic)
    period = period_of(dt.datetime.now(dt.UTC))
    r = client.get(f"/api/v1/scenarios/revenue?period={period}", headers=world.operator)
    assert r.status_code == 200, r.get_json()
    (row,) = r.get_json()["rows"]
    assert (row["scenario_id"], row["product_id"], row["licenses"]) == (
        scenario["id"], product["id"], 1)
    assert 0 < row["revenue"] <= product["price"]
    # The registry's department sees only its own share; a buyer sees nothing.
    own = client.get(f"/api/v1/scenarios/revenue?period={period}",
                     headers=world.department).get_json()["rows"]
    assert len(own) == 1 and 0 < own[0]["revenue"] < row["revenue"]
    assert client.get(f"/api/v1/scenarios/revenue?period={period}",
                      headers=world.buyer).status_code == 403
