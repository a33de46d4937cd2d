"""Privacy settings of a LISTED dataset go through the operator's review like category and
costs (``market.datasets.lifecycle``): the department's looser values are a change request and
never apply before approval; its stricter values apply at once. Audited."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.sandbox_app.data import AMOUNT_HI


def _url(dataset_id: int) -> str:
    return f"/api/v1/datasets/{dataset_id}/privacy"


def _types(session, dataset_id: int) -> list[str]:
    from market.audit.models import AuditEvent

    session.expire_all()
    return list(session.scalars(
        sa.select(AuditEvent.type)
        .where(AuditEvent.subject_type == "dataset", AuditEvent.subject_id == str(dataset_id))
        .order_by(AuditEvent.seq)
    ))


def _settings(client, dataset_id: int) -> dict:
    return client.get(_url(dataset_id)).get_json()["settings"]


@pytest.fixture
def owned(world, as_role):
    dept_user, dept_headers = as_role("department")
    ds = world.dataset("loans")
    ds.department_id = dept_user.organization_id
    world.session.commit()
    ds.owner = dept_user
    return ds, dept_headers


def _cost(client, world, lic, headers) -> str:
    r = client.post(f"/api/v1/sandbox/{lic.id}/queries/cost",
                    json={"sql": "SELECT COUNT(*) AS n FROM loans"}, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["epsilon_cost"]


def test_loosening_waits_for_approval_and_applies_then(world, client, owned, as_role):
    ds, headers = owned
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    assert _cost(client, world, lic, buyer.headers) == "0.5000"
    r = client.put(_url(ds.id), json={"epsilon_per_query": "2"}, headers=headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["applied"] == []
    assert body["change_request"]["status"] == "pending"
    assert body["change_request"]["changes"] == {"privacy": {"epsilon_per_query": "2"}}
    assert body["change_request"]["before"]["privacy"]["epsilon_per_query"] == "0.5000"
    # Nothing looser is in force: not the settings, not the sandbox.
    assert body["settings"]["epsilon_per_query"] == "0.5000"
    assert _settings(client, ds.id)["epsilon_per_query"] == "0.5000"
    assert _cost(client, world, lic, buyer.headers) == "0.5000"
    assert _types(world.session, ds.id)[-1] == "dataset.change_proposed"
    assert "dataset.privacy_changed" not in _types(world.session, ds.id)
    # The department cannot approve its own change.
    r = client.post(f"/api/v1/datasets/{ds.id}/changes/review", json={"decision": "approve"},
                    headers=headers)
    assert r.status_code == 403
    _, operator = as_role("operator")
    r = client.post(f"/api/v1/datasets/{ds.id}/changes/review", json={"decision": "approve"},
                    headers=operator)
    assert r.status_code == 200, r.get_json()
    assert _settings(client, ds.id)["epsilon_per_query"] == "2.0000"
    assert _cost(client, world, lic, buyer.headers) == "2.0000"
    assert _types(world.session, ds.id)[-2:] == ["dataset.change_reviewed", "dataset.privacy_changed"]


def test_stricter_applies_at_once_looser_waits_and_reject_keeps_the_old(
    world, client, owned, as_role
):
    ds, headers = owned
    r = client.put(
        _url(ds.id),
        json={"epsilon_budget": "50", "ranges": {"amount": [0, AMOUNT_HI * 10]}},
        headers=headers,
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["applied"] == ["epsilon_budget"]
    assert body["settings"]["epsilon_budget"] == "50.0000"
    assert body["settings"]["ranges"] == {"amount": ["0", str(AMOUNT_HI)]}
    assert set(body["change_request"]["changes"]["privacy"]) == {"ranges"}
    types = _types(world.session, ds.id)
    assert types[-2:] == ["dataset.privacy_changed", "dataset.change_proposed"]
    _, operator = as_role("operator")
    review = f"/api/v1/datasets/{ds.id}/changes/review"
    assert client.post(review, json={"decision": "reject"}, headers=operator).status_code == 422
    r = client.post(review, json={"decision": "reject", "comment": "too wide"}, headers=operator)
    assert r.status_code == 200
    assert _settings(client, ds.id)["ranges"] == {"amount": ["0", str(AMOUNT_HI)]}
    assert client.post(review, json={"decision": "approve"}, headers=operator).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"ranges": {"amount": [-1, AMOUNT_HI]}},  # wider below
        {"ranges": {"amount": [0, AMOUNT_HI + 1]}},  # wider above
        {"delta": "0.00001"},
        {"max_rows_per_entity": 13},
        {"epsilon_budget": "100.5"},
    ],
)
def test_every_kind_of_loosening_is_reviewed(world, client, owned, body):
    ds, headers = owned
    before = _settings(client, ds.id)
    r = client.put(_url(ds.id), json=body, headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["change_request"] is not None
    assert _settings(client, ds.id) == before


def test_a_later_stricter_edit_supersedes_the_pending_looser_value(world, client, owned, as_role):
    ds, headers = owned
    client.put(_url(ds.id), json={"epsilon_per_query": "2", "epsilon_budget": "200"},
               headers=headers)
    # The department changes its mind on one setting: the approval must not loosen it.
    r = client.put(_url(ds.id), json={"epsilon_per_query": "0.25"}, headers=headers)
    assert r.status_code == 200 and r.get_json()["applied"] == ["epsilon_per_query"]
    assert r.get_json()["change_request"]["changes"] == {"privacy": {"epsilon_budget": "200"}}
    # And once nothing is left, the request is closed.
    r = client.put(_url(ds.id), json={"epsilon_budget": "90"}, headers=headers)
    assert r.status_code == 200 and r.get_json()["change_request"] is None
    assert "dataset.change_superseded" in _types(world.session, ds.id)
    _, operator = as_role("operator")
    r = client.post(f"/api/v1/datasets/{ds.id}/changes/review", json={"decision": "approve"},
                    headers=operator)
    assert r.status_code == 409
    got = _settings(client, ds.id)
    assert (got["epsilon_per_query"], got["epsilon_budget"]) == ("0.2500", "90.0000")


def test_a_privacy_proposal_keeps_a_pending_category_change(world, client, owned, as_role):
    from market.datasets.models import Dataset

    ds, headers = owned
    world.session.get(Dataset, ds.id).listed_at = ds.created_at
    world.session.commit()
    r = client.put(f"/api/v1/datasets/{ds.id}/metadata", json={"category": "tax"},
                   headers=headers)
    assert r.status_code == 200 and r.get_json()["change_request"], r.get_json()
    r = client.put(_url(ds.id), json={"epsilon_per_query": "1"}, headers=headers)
    assert set(r.get_json()["change_request"]["changes"]) == {"category", "privacy"}
    _, operator = as_role("operator")
    r = client.post(f"/api/v1/datasets/{ds.id}/changes/review", json={"decision": "approve"},
                    headers=operator)
    assert r.status_code == 200
    world.session.expire_all()
    assert world.session.get(Dataset, ds.id).category == "tax"
    assert world.session.get(Dataset, ds.id).dp_epsilon_per_query == Decimal("1")


def test_the_operator_tightens_at_once_and_cannot_loosen(world, client, owned, as_role):
    ds, _ = owned
    _, operator = as_role("operator")
    r = client.put(_url(ds.id), json={"epsilon_per_query": "0.1"}, headers=operator)
    assert r.status_code == 200 and r.get_json()["change_request"] is None
    assert client.put(_url(ds.id), json={"epsilon_per_query": "3"},
                      headers=operator).status_code == 422


def test_a_withdrawn_dataset_takes_no_privacy_change(world, client, owned):
    from market.db import utcnow

    ds, headers = owned
    ds.withdrawn_at = utcnow()
    world.session.commit()
    r = client.put(_url(ds.id), json={"epsilon_per_query": "0.1"}, headers=headers)
    assert r.status_code == 409


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_the_page_proposes_looser_settings_and_the_operator_approves_there(
    world, client, owned, as_role
):
    from tests.sandbox_app.test_web import login

    ds, _ = owned
    login(client, SimpleNamespace(user=ds.owner))
    html = client.get(f"/datasets/{ds.id}").get_data(as_text=True)
    assert 'data-testid="privacy-review-note"' in html
    form = {
        "csrf_token": _csrf(html), "dp_epsilon_budget": "100", "dp_version_budget": "1000",
        "dp_epsilon_per_query": "0.8", "dp_delta": "0.000001", "dp_max_groups_per_entity": "1",
        "dp_max_rows_per_entity": "12", "dp_ranges": f"amount: 0, {AMOUNT_HI}",
    }
    r = client.post(f"/datasets/{ds.id}/privacy", data=form)
    assert r.status_code == 302 and r.headers["Location"].endswith("#change-request")
    page = client.get(f"/datasets/{ds.id}").get_data(as_text=True)
    assert 'data-testid="change-request"' in page and 'data-setting="epsilon_per_query"' in page
    assert 'data-testid="privacy-epsilon-per-query">0.5000<' in page
    # Resubmitting the form with the values in force keeps the proposal.
    form["dp_epsilon_per_query"] = "0.5"
    form["dp_epsilon_budget"] = "90"
    assert client.post(f"/datasets/{ds.id}/privacy", data=form).status_code == 302
    page = client.get(f"/datasets/{ds.id}").get_data(as_text=True)
    assert 'data-setting="epsilon_per_query"' in page
    assert 'data-testid="privacy-epsilon-budget">90.0000<' in page
