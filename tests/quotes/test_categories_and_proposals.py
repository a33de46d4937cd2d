"""Issue #13 items 3 and 5: one category vocabulary with foreign-key-like checks, and
ceilings and revenue caps proposed by the operator, approved by the regulator, published."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import pricing
from tests.accounts.test_api import assert_envelope
from tests.accounts.test_web import csrf_from

# -- one category vocabulary ----------------------------------------------------------------


def test_every_place_uses_the_one_vocabulary():
    from market.datasets.dcat import THEMES
    from market.datasets.forms import CATEGORY_LABELS, UploadForm
    from market.demo.data import _DEPARTMENTS

    assert list(CATEGORY_LABELS) == list(pricing.CATEGORIES)
    choices = [c.value for c in UploadForm.category.kwargs["choices"] if c.value]
    assert choices == list(pricing.CATEGORIES)
    demo = {spec[4].category for spec in _DEPARTMENTS}
    assert len(demo) == len(_DEPARTMENTS) == 10  # the Shanghai pilot's ten departments
    assert demo <= set(pricing.CATEGORIES), demo - set(pricing.CATEGORIES)
    assert set(pricing.CATEGORIES) <= set(THEMES)
    # The demo's ten categories each get their own coefficient: none falls back silently
    # (before, 4 of 7 were priced with the default 1.0).
    defaults = pricing.PricingParameters.default()
    assert demo <= set(defaults.category_coefficients)


def test_upload_metadata_with_an_unknown_category_is_refused():
    import marshmallow as ma

    from market.datasets.schemas import DatasetPublishMetadataSchema

    base = {
        "title": "t",
        "category": "enterprise",
        "open_grade": "open",
        "confidential": False,
        "entity_key": "k",
        "update_frequency": "monthly",
        "costs": {"collection": 1, "processing": 1, "storage_monthly": 1},
    }
    with pytest.raises(ma.ValidationError) as err:
        DatasetPublishMetadataSchema().load(base)
    assert "category" in err.value.messages
    DatasetPublishMetadataSchema().load({**base, "category": "enterprise_registry"})


@pytest.mark.parametrize(
    "field",
    ["category_coefficients", "category_ceilings_fen", "category_query_ceilings_fen"],
)
def test_put_parameters_with_an_unknown_category_key_is_a_422_naming_it(client, as_role, field):
    _, h = as_role("operator")
    value = "2" if field == "category_coefficients" else 5_000
    r = client.put(
        "/api/v1/pricing/parameters",
        headers=h,
        json={"parameters": {field: {"ecology_environment": value}}},
    )
    body = assert_envelope(r, 422)
    assert f"{field}.ecology_environment" in body["errors"]
    assert "ecology_environment" in body["message"]


def test_the_environment_coefficient_now_applies(client, as_role, make_dataset, quote_body):
    """The demo's environment dataset was priced with 1.0 because the key did not match."""
    _, h = as_role("buyer")
    env = make_dataset(category="environment")
    item = client.post("/api/v1/quotes", headers=h, json=quote_body(env)).get_json()["items"][0]
    assert item["factors"]["category"] == "0.9"


# -- proposal -> approval -> publication -----------------------------------------------------


def _events(type_: str) -> list:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)).all()


def test_ceilings_and_caps_apply_only_once_the_regulator_approves(client, as_role):
    _, op = as_role("operator")
    _, reg = as_role("regulator")

    # Saving a ceiling directly is refused, naming the field.
    r = client.put(
        "/api/v1/pricing/parameters",
        headers=op,
        json={"parameters": {"category_ceilings_fen": {"tax": 1_000}}},
    )
    assert "category_ceilings_fen" in assert_envelope(r, 422)["errors"]

    # Only ceilings and caps can be proposed.
    r = client.post(
        "/api/v1/pricing/proposals", headers=op, json={"changes": {"reasonable_return": "0.2"}}
    )
    assert "reasonable_return" in assert_envelope(r, 422)["errors"]

    changes = {
        "category_ceilings_fen": {"tax": 1_000_000},
        "default_revenue_cap_fen": 300_000_000,
        "over_cap_reduction": "0.3",
    }
    r = client.post(
        "/api/v1/pricing/proposals", headers=op, json={"changes": changes, "note": "年度核定"}
    )
    assert r.status_code == 201, r.get_json()
    proposal = r.get_json()
    assert proposal["status"] == "pending" and proposal["based_on_version"] == 1
    assert len(_events("pricing.proposal_created")) == 1

    # Not in force yet: the published parameters are unchanged.
    published = client.get("/api/v1/pricing/parameters").get_json()
    assert published["version"] == 1
    assert published["parameters"]["category_ceilings_fen"]["tax"] == 30_000_000

    # The operator cannot approve its own proposal; only the regulator decides.
    pid = proposal["id"]
    assert_envelope(
        client.post(f"/api/v1/pricing/proposals/{pid}/approve", headers=op, json={}), 403
    )
    _, buyer = as_role("buyer")
    assert_envelope(client.get("/api/v1/pricing/proposals", headers=buyer), 403)
    listed = client.get("/api/v1/pricing/proposals", headers=reg).get_json()
    assert [p["id"] for p in listed["items"]] == [pid]

    r = client.post(f"/api/v1/pricing/proposals/{pid}/approve", headers=reg, json={"note": "同意"})
    assert r.status_code == 200, r.get_json()
    decided = r.get_json()
    assert decided["status"] == "approved" and decided["result_version"] == 2

    # Published: anyone reads the approved values as the current version.
    published = client.get("/api/v1/pricing/parameters").get_json()
    assert published["version"] == 2
    assert published["parameters"]["category_ceilings_fen"]["tax"] == 1_000_000
    assert published["parameters"]["default_revenue_cap_fen"] == 300_000_000
    assert published["parameters"]["over_cap_reduction"] == "0.3"
    assert len(_events("pricing.proposal_approved")) == 1
    updated = _events("pricing.parameters_updated")
    assert updated and updated[-1].data["proposal_id"] == pid

    # A decision is final: approving or rejecting again is a conflict.
    assert_envelope(
        client.post(f"/api/v1/pricing/proposals/{pid}/reject", headers=reg, json={}), 409
    )
    assert_envelope(client.get("/api/v1/pricing/proposals/999999", headers=reg), 404)


def test_a_rejected_proposal_changes_nothing_and_invalid_values_are_refused(client, as_role):
    _, op = as_role("operator")
    _, reg = as_role("regulator")
    r = client.post(
        "/api/v1/pricing/proposals",
        headers=op,
        json={"changes": {"revenue_caps_fen": {"no_such_category": 5}}},
    )
    assert "revenue_caps_fen.no_such_category" in assert_envelope(r, 422)["errors"]
    r = client.post(
        "/api/v1/pricing/proposals", headers=op, json={"changes": {"default_ceiling_fen": 7}}
    )
    pid = r.get_json()["id"]
    r = client.post(f"/api/v1/pricing/proposals/{pid}/reject", headers=reg, json={"note": "过低"})
    assert r.get_json()["status"] == "rejected" and r.get_json()["result_version"] is None
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 1
    assert len(_events("pricing.proposal_rejected")) == 1
    # Proposing what is already in force changes nothing.
    current = client.get("/api/v1/pricing/parameters").get_json()["parameters"]
    r = client.post(
        "/api/v1/pricing/proposals",
        headers=op,
        json={"changes": {"default_ceiling_fen": current["default_ceiling_fen"]}},
    )
    assert_envelope(r, 422)


def test_the_pricing_page_proposes_and_the_regulator_approves(client, app, make_user):
    """The minimal page section: the operator's propose button, the regulator's decision."""
    import re

    from tests.quotes.test_web import signed_in

    signed_in(client, make_user, "operator")
    page = client.get("/pricing/parameters").get_data(as_text=True)
    assert 'data-testid="propose"' in page
    form = {"csrf_token": csrf_from(page), "action": "propose", "note": "提议"}
    state = pricing.PricingParameters.default().to_dict()
    from market.quotes.forms import SCALARS, ParameterFormState

    fields = ParameterFormState.from_params(state)
    for name in SCALARS:
        form[name] = fields.scalars[name]
    for p, v in fields.purposes.items():
        form[f"purpose-{p}"] = v
    for i, row in enumerate(fields.categories):
        for col, value in row.items():
            form[f"cat-{i}-{col}"] = value
    for i, row in enumerate(fields.brackets):
        for col, value in row.items():
            form[f"bracket-{i}-{col}"] = value
    form["default_ceiling_fen"] = "12345678"
    r = client.post("/pricing/parameters", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 1

    client.post("/logout", data={"csrf_token": csrf_from(page)})
    signed_in(client, make_user, "regulator")
    page = client.get("/pricing/parameters").get_data(as_text=True)
    m = re.search(r'action="/pricing/proposals/(\d+)/decide"', page)
    assert m, "the regulator sees the pending proposal with its decision form"
    token = csrf_from(page)
    r = client.post(
        f"/pricing/proposals/{m.group(1)}/decide",
        data={"csrf_token": token, "decision": "approve", "note": ""},
    )
    assert r.status_code == 302
    published = client.get("/api/v1/pricing/parameters").get_json()
    assert (
        published["version"] == 2 and published["parameters"]["default_ceiling_fen"] == 12_345_678
    )


def test_the_migration_brings_stored_versions_to_the_vocabulary():
    """Stored version 1 rows were keyed ``ecology_environment`` and carried scarcity and
    freshness; after the migration they load and price the environment category."""
    import importlib.util
    from pathlib import Path

    path = next(Path("migrations/versions").glob("20261207_0720_*.py"))
    spec = importlib.util.spec_from_file_location("m0720", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    legacy = pricing.PricingParameters.default().to_dict()
    legacy["category_coefficients"] = {"ecology_environment": "0.9", "tax": "1.5"}
    legacy.update(scarcity_min="0.8", scarcity_max="1.5", freshness_min="0.8", freshness_max="1.2")
    upgraded = module._upgrade_params(legacy)
    assert upgraded == pricing.upgrade_legacy(legacy)
    params = pricing.PricingParameters.from_dict(upgraded)
    assert params.category_coefficient(
        "environment"
    ) == pricing.PricingParameters.default().category_coefficient("environment")
