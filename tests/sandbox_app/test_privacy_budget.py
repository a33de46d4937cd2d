"""The differential-privacy budget: cost shown before running, spent atomically once per
question, repeats answered alike for free, exhaustion refused with 429."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.sandbox_app import data
from tests.sandbox_app.conftest import query

Q1 = "SELECT district, COUNT(*) AS n, AVG(amount) AS mean FROM loans GROUP BY district"
# The same question spelled differently: aliases, case, spacing.
Q1_AGAIN = "select  l.district , count(*) as how_many, avg(l.amount) as m\nFROM loans l GROUP BY l.district"
Q2 = "SELECT industry, SUM(amount) AS total FROM loans GROUP BY industry"
Q3 = "SELECT district, industry, COUNT(*) AS n FROM loans GROUP BY district, industry"


@pytest.fixture
def dp_license(world):
    buyer = world.party()
    world.dataset("loans", dp_budget="5")
    lic = world.license(buyer, ["loans"], budget="1.0", quota=10)
    return buyer, lic


def _license(world, lic_id):
    from licenses.models import License

    world.session.expire_all()
    return world.session.get(License, lic_id)


def cost(client, lic_id, sql, headers):
    return client.post(f"/api/v1/sandbox/{lic_id}/queries/cost", json={"sql": sql}, headers=headers)


def test_cost_is_shown_before_running_and_charges_nothing(world, client, dp_license):
    buyer, lic = dp_license
    r = cost(client, lic.id, Q1, buyer.headers)
    assert r.status_code == 200
    assert r.get_json() == {
        "epsilon_cost": "0.5000",
        "query_epsilon": "0.5000",
        "repeat": False,
        "uses_dp": True,
        "privacy_budget_remaining": "1.0000",
    }
    lic_now = _license(world, lic.id)
    assert (lic_now.quota_remaining, lic_now.privacy_budget_remaining) == (10, Decimal("1.0000"))
    refused = cost(client, lic.id, "SELECT id_no FROM loans", buyer.headers)
    assert (
        refused.status_code == 422 and refused.get_json()["errors"]["rule"] == "identifier_output"
    )
    assert (
        client.get(f"/api/v1/sandbox/{lic.id}/queries", headers=buyer.headers).get_json()["total"]
        == 0
    )
    assert cost(client, lic.id, Q1, world.party().headers).status_code == 404


def test_a_repeat_gets_the_same_answer_and_spends_nothing(world, client, dp_license):
    buyer, lic = dp_license
    first = query(client, lic.id, Q1, buyer.headers).get_json()
    assert first["epsilon_spent"] == "0.5000" and first["privacy_budget_remaining"] == "0.5000"
    assert first["repeat"] is False
    repeat = cost(client, lic.id, Q1_AGAIN, buyer.headers).get_json()
    assert repeat["epsilon_cost"] == "0.0000" and repeat["repeat"] is True
    again = query(client, lic.id, Q1_AGAIN, buyer.headers).get_json()
    assert again["rows"] == first["rows"] and again["repeat"] is True
    assert again["epsilon_spent"] == "0.0000" and again["privacy_budget_remaining"] == "0.5000"
    assert again["quota_remaining"] == 8  # a repeat is still a query


def test_noise_is_added_and_differs_per_license(world, client, dp_license, app):
    buyer, lic = dp_license
    frame = data.loans_frame()
    exact = frame.groupby("district").size()
    noisy = {d: n for d, n, _ in query(client, lic.id, Q1, buyer.headers).get_json()["rows"]}
    assert set(noisy) == set(data.DISTRICTS)
    assert any(noisy[d] != exact[d] for d in noisy)  # Laplace noise on 4 counts, scale 4
    assert all(abs(noisy[d] - exact[d]) < 60 for d in noisy)
    other = world.license(buyer, ["loans"], budget="1.0")
    elsewhere = {d: n for d, n, _ in query(client, other.id, Q1, buyer.headers).get_json()["rows"]}
    assert elsewhere != noisy


def test_budget_exhaustion_is_429_and_charges_nothing(world, client, dp_license):
    from sandbox.models import SandboxQuery

    buyer, lic = dp_license
    assert query(client, lic.id, Q1, buyer.headers).status_code == 200
    assert (
        query(client, lic.id, Q2, buyer.headers).get_json()["privacy_budget_remaining"] == "0.0000"
    )
    r = query(client, lic.id, Q3, buyer.headers)
    assert r.status_code == 429
    body = r.get_json()
    assert (
        body["errors"]["rule"] == "privacy_budget_exhausted" and "privacy budget" in body["message"]
    )
    lic_now = _license(world, lic.id)
    assert (lic_now.quota_remaining, lic_now.privacy_budget_remaining) == (8, Decimal(0))
    # Questions already paid for are still answered.
    assert query(client, lic.id, Q1_AGAIN, buyer.headers).status_code == 200
    spent = world.session.scalars(
        sa.select(SandboxQuery.epsilon_spent)
        .where(SandboxQuery.license_id == lic.id)
        .order_by(SandboxQuery.id)
    ).all()
    assert spent == [Decimal("0.5"), Decimal("0.5"), 0, 0]


def test_a_dp_table_without_budget_on_the_license_is_refused(world, client):
    buyer = world.party()
    world.dataset("loans", dp_budget="5")
    lic = world.license(buyer, ["loans"], budget=None)
    r = query(client, lic.id, Q1, buyer.headers)
    assert r.status_code == 429 and r.get_json()["errors"]["rule"] == "privacy_budget_exhausted"


def test_tables_without_dp_cost_nothing(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans", "firms"], budget="1.0")
    assert cost(client, lic.id, Q1, buyer.headers).get_json()["uses_dp"] is False
    body = query(client, lic.id, Q1, buyer.headers).get_json()
    assert body["epsilon_spent"] == "0.0000" and body["privacy_budget_remaining"] == "1.0000"


def test_a_new_data_version_is_a_new_question(world, client, dp_license):
    """Reusing the old noise on changed data would reveal the exact change, so after a new
    version the same SQL spends budget again (and gets fresh noise)."""
    from market.datasets.models import DatasetColumn, DatasetVersion

    buyer, lic = dp_license
    first = query(client, lic.id, Q1, buyer.headers).get_json()
    ds = world.dataset("loans")
    old = ds.current_version
    new = DatasetVersion(
        dataset_id=ds.id,
        version=2,
        status="listed",
        filename=old.filename,
        parquet_path=old.parquet_path,
    )
    new.columns = [
        DatasetColumn(
            position=c.position,
            name=c.name,
            type=c.type,
            role=c.role,
            treatment=c.treatment,
            lower_bound=c.lower_bound,
            upper_bound=c.upper_bound,
        )
        for c in old.columns
    ]
    world.session.add(new)
    world.session.flush()
    ds.current_version_id = new.id
    world.session.commit()
    assert cost(client, lic.id, Q1, buyer.headers).get_json()["repeat"] is False
    second = query(client, lic.id, Q1, buyer.headers).get_json()
    assert second["repeat"] is False and second["privacy_budget_remaining"] == "0.0000"
    assert second["rows"] != first["rows"]  # same data here, fresh noise
