"""Privacy settings of a dataset: declared at upload (``metadata.privacy``), changed through
``PUT /api/v1/datasets/{id}/privacy`` (department; the operator only tightens) and the dataset
page; validated field by field; audited. Clamp bounds are never derived from the data. The
regulator reads the spending per buyer."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.datasets.conftest import csv_bytes, metadata, multipart, sample_rows
from tests.sandbox_app.conftest import query

TAX = "纳税额(元)"


def _upload(client, headers, meta):
    body, content_type = multipart(
        [("metadata", json.dumps(meta, ensure_ascii=False)),
         ("file", (csv_bytes(sample_rows()), "data.csv"))]
    )
    return client.post("/api/v1/datasets", data=body, headers=headers, content_type=content_type)


def _events(session, dataset_id: int, type_: str) -> list:
    from market.audit.models import AuditEvent

    session.expire_all()
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.type == type_, AuditEvent.subject_id == str(dataset_id))
            .order_by(AuditEvent.seq)
        )
    )


def _privacy_url(dataset_id: int) -> str:
    return f"/api/v1/datasets/{dataset_id}/privacy"


def test_upload_metadata_declares_privacy_and_no_percentile_is_kept(client, as_role, app):
    from market.datasets.models import DatasetColumn, DatasetVersion
    from market.extensions import db

    _, headers = as_role("department")
    privacy = {
        "epsilon_budget": "3",
        "version_budget": 12,
        "epsilon_per_query": "0.25",
        "delta": "1e-7",
        "max_groups_per_entity": 2,
        "max_rows_per_entity": 12,
        "ranges": {TAX: [0, "6000"]},
    }
    r = _upload(client, headers, metadata(privacy=privacy))
    assert r.status_code == 202, r.get_json()
    dataset_id = r.get_json()["id"]
    got = client.get(_privacy_url(dataset_id), headers=headers).get_json()
    assert got["differential_privacy"] is True
    assert got["settings"] == {
        "epsilon_budget": "3.0000",
        "version_budget": "12.0000",
        "epsilon_per_query": "0.2500",
        "delta": "0.0000001",
        "max_groups_per_entity": 2,
        "max_rows_per_entity": 12,
        "ranges": {TAX: ["0", "6000"]},
    }
    # No bound derived from the data anywhere: the column rows hold none, the API shows only
    # the declared range.
    cols = db.session.scalars(
        sa.select(DatasetColumn)
        .join(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
    ).all()
    assert cols and all(c.lower_bound is None and c.upper_bound is None for c in cols)
    shown = client.get(f"/api/v1/datasets/{dataset_id}", headers=headers).get_json()
    assert shown["privacy"]["epsilon_budget"] == "3.0000"
    for col in shown["columns"]:
        if col["name"] == TAX and col["role"] == "measure":
            assert (col["lower_bound"], col["upper_bound"]) == ("0", "6000")
        elif col["name"] != TAX:
            assert col["lower_bound"] is None and col["upper_bound"] is None
    [event] = _events(db.session, dataset_id, "dataset.uploaded")
    assert event.data["privacy"]["epsilon_per_query"] == "0.2500"


@pytest.mark.parametrize(
    ("privacy", "field"),
    [
        ({"epsilon_per_query": "0"}, "epsilon_per_query"),
        ({"epsilon_per_query": "11"}, "epsilon_per_query"),
        ({"epsilon_per_query": "0.123456"}, "epsilon_per_query"),
        ({"epsilon_budget": "abc"}, "epsilon_budget"),
        ({"epsilon_budget": "0.1", "epsilon_per_query": "0.5"}, "epsilon_budget"),
        ({"delta": "0.5"}, "delta"),
        ({"delta": True}, "delta"),
        ({"max_groups_per_entity": 0}, "max_groups_per_entity"),
        ({"max_rows_per_entity": "12"}, "max_rows_per_entity"),
        ({"ranges": {TAX: [10, 1]}}, "ranges"),
        ({"ranges": {TAX: ["NaN", 1]}}, "ranges"),
        ({"ranges": [1, 2]}, "ranges"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_upload_privacy_is_validated_naming_the_field(client, as_role, privacy, field):
    _, headers = as_role("department")
    r = _upload(client, headers, metadata(privacy=privacy))
    assert r.status_code == 422, r.get_json()
    messages = r.get_json()["errors"]["privacy"]
    assert any(m.startswith(field) for m in messages), messages


@pytest.fixture
def owned(world, as_role):
    """A listed conditional dataset and (user, headers) of its department."""
    dept_user, dept_headers = as_role("department")
    ds = world.dataset("loans")
    ds.department_id = dept_user.organization_id
    world.session.commit()
    ds.owner = dept_user  # for the page test's login
    return ds, dept_headers


def test_the_department_sets_privacy_and_it_is_audited(world, client, owned):
    ds, headers = owned
    r = client.put(
        _privacy_url(ds.id),
        json={"epsilon_per_query": "0.2", "epsilon_budget": "4", "ranges": {"amount": [0, 50000]}},
        headers=headers,
    )
    assert r.status_code == 200, r.get_json()
    settings = r.get_json()["settings"]
    assert settings["epsilon_per_query"] == "0.2000" and settings["epsilon_budget"] == "4.0000"
    assert settings["ranges"] == {"amount": ["0", "50000"]}
    [event] = _events(world.session, ds.id, "dataset.privacy_changed")
    assert event.data["before"]["epsilon_per_query"] == "0.5000"
    assert event.data["after"]["epsilon_per_query"] == "0.2000" and event.data["by"] == "department"
    # The sandbox uses them at once: the declared range is the clamp bound.
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    tables = client.get(f"/api/v1/sandbox/{lic.id}/tables", headers=buyer.headers).get_json()
    [amount] = [c for c in tables["items"][0]["columns"] if c["name"] == "amount"]
    assert (amount["lower_bound"], amount["upper_bound"]) == ("0", "50000")
    r = client.post(
        f"/api/v1/sandbox/{lic.id}/queries/cost",
        json={"sql": "SELECT COUNT(*) AS n FROM loans"},
        headers=buyer.headers,
    )
    assert r.get_json()["epsilon_cost"] == "0.2000"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"epsilon_per_query": "-1"}, "privacy.epsilon_per_query"),
        ({"ranges": {"district": [0, 1]}}, "privacy.ranges.district"),  # not a measure
        ({"ranges": {"nope": [0, 1]}}, "privacy.ranges.nope"),
        ({"version_budget": "0.1"}, "privacy.version_budget"),  # below one query
        ({"delta": "0.001"}, "privacy.delta"),
    ],
)
def test_invalid_settings_are_422_naming_the_field(client, owned, body, field):
    ds, headers = owned
    r = client.put(_privacy_url(ds.id), json=body, headers=headers)
    assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()


def test_the_operator_may_only_tighten(world, client, owned, as_role):
    ds, _ = owned
    _, operator = as_role("operator")
    looser = client.put(_privacy_url(ds.id), json={"epsilon_budget": "500"}, headers=operator)
    assert looser.status_code == 422
    assert "privacy.epsilon_budget" in looser.get_json()["errors"]
    wider = client.put(
        _privacy_url(ds.id), json={"ranges": {"amount": [0, 10**7]}}, headers=operator
    )
    assert wider.status_code == 422 and "privacy.ranges.amount" in wider.get_json()["errors"]
    tighter = client.put(
        _privacy_url(ds.id),
        json={"epsilon_budget": "50", "ranges": {"amount": [0, 5000]}},
        headers=operator,
    )
    assert tighter.status_code == 200, tighter.get_json()
    [event] = _events(world.session, ds.id, "dataset.privacy_changed")
    assert event.data["by"] == "operator"


def test_who_may_change_privacy(world, client, owned, as_role):
    ds, _ = owned
    for role in ("department", "buyer", "regulator"):
        _, headers = as_role(role)
        r = client.put(_privacy_url(ds.id), json={"epsilon_budget": "1"}, headers=headers)
        assert r.status_code == 403, (role, r.get_json())
    assert client.put(_privacy_url(ds.id), json={"epsilon_budget": "1"}).status_code == 401
    # The settings themselves are public metadata of a listed dataset.
    assert client.get(_privacy_url(ds.id)).status_code == 200
    assert client.get(_privacy_url(10**6)).status_code == 404
    open_ds = world.dataset("firms")
    _, operator = as_role("operator")
    r = client.put(_privacy_url(open_ds.id), json={"epsilon_budget": "1"}, headers=operator)
    assert r.status_code == 403
    assert client.get(_privacy_url(open_ds.id)).get_json()["differential_privacy"] is False


def test_the_regulator_sees_spending_per_buyer(world, client, owned, as_role):
    ds, dept_headers = owned
    a, b = world.party(), world.party()
    for party in (a, b):
        lic = world.license(party, ["loans"])
        sql = f"SELECT industry, COUNT(*) AS n FROM loans WHERE district <> 'x{party.org_id}' " \
              "GROUP BY industry"
        assert query(client, lic.id, sql, party.headers).status_code == 200
    url = f"/api/v1/privacy/spending?dataset_id={ds.id}"
    for role in ("regulator", "operator"):
        _, headers = as_role(role)
        r = client.get(url, headers=headers)
        assert r.status_code == 200
        [item] = r.get_json()["items"]
        spent = {row["buyer_org_id"]: row for row in item["buyers"]}
        assert set(spent) == {a.org_id, b.org_id}
        assert all(Decimal(row["epsilon_spent"]) == Decimal("0.5") for row in spent.values())
        assert item["versions"][0]["epsilon_spent"] == "1.0000"
        assert item["versions"][0]["releases"] == 2
    assert client.get(url, headers=dept_headers).status_code == 200
    _, stranger = as_role("department")
    assert client.get(url, headers=stranger).status_code == 404
    assert client.get("/api/v1/privacy/spending", headers=stranger).get_json()["items"] == []
    assert client.get(url, headers=a.headers).status_code == 403
    assert client.get(url).status_code == 401


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_the_dataset_page_shows_and_saves_privacy_settings(world, client, owned):
    from types import SimpleNamespace

    from tests.sandbox_app.test_web import login

    ds, _ = owned
    login(client, SimpleNamespace(user=ds.owner))
    page = client.get(f"/datasets/{ds.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="privacy-form"' in html
    assert 'data-range="amount"' in html
    form = {
        "csrf_token": _csrf(html),
        "dp_epsilon_budget": "6",
        "dp_version_budget": "30",
        "dp_epsilon_per_query": "0.3",
        "dp_delta": "0.000001",
        "dp_max_groups_per_entity": "1",
        "dp_max_rows_per_entity": "12",
        "dp_ranges": "amount: 0, 80000",
    }
    r = client.post(f"/datasets/{ds.id}/privacy", data=form)
    assert r.status_code == 302
    world.session.expire_all()
    assert world.session.get(type(ds), ds.id).dp_epsilon_per_query == Decimal("0.3")
    bad = client.post(
        f"/datasets/{ds.id}/privacy", data={**form, "dp_epsilon_per_query": "zero"}
    )
    assert bad.status_code == 422
    assert 'data-error-for="dp_epsilon_per_query"' in bad.get_data(as_text=True)
    # A visitor sees the settings, not the form.
    anonymous = world.app.test_client().get(f"/datasets/{ds.id}").get_data(as_text=True)
    assert 'data-testid="privacy-settings"' in anonymous
    assert 'data-testid="privacy-form"' not in anonymous


def test_the_regulator_dashboard_shows_spending_per_buyer(world, client):
    from types import SimpleNamespace

    from tests.sandbox_app.test_web import login

    world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    assert query(client, lic.id, "SELECT COUNT(*) AS n FROM loans", buyer.headers).status_code == 200
    regulator = world.party("regulator")
    login(client, SimpleNamespace(user=regulator.user))
    page = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert 'data-testid="privacy-spending"' in page
    assert f'data-buyer="{buyer.org_id}"' in page and "0.5000 / 100.0000" in page
