"""A scenario's term and its withdrawal: new licenses are refused under an ended or withdrawn
scenario (a clear rule code), licenses granted before run to their end; the operator and the
regulator withdraw, nobody else; every change is audited."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.scenarios.conftest import approved_scenario, published_product, scenario_body
from tests.scenarios.test_products_api import _pay_and_settle


def _events(type_: str) -> list:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)).all()


def _apply(client, world, product, scenario):
    return client.post(f"/api/v1/products/{product['id']}/apply",
                       json={"scenario_id": scenario["id"], "purpose_statement": "授信审批"},
                       headers=world.buyer)


def test_a_scenario_has_a_term_checked_on_the_way_in(client, world):
    now = dt.datetime.now(dt.UTC)
    r = client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.operator)
    body = r.get_json()
    assert body["starts_at"] and body["ends_at"]  # the default term
    assert body["effective_status"] == "draft"
    bad = scenario_body(world, code="bad-term", starts_at=now.isoformat(),
                        ends_at=(now - dt.timedelta(days=1)).isoformat())
    r = client.post("/api/v1/scenarios", json=bad, headers=world.operator)
    assert r.status_code == 422 and "ends_at" in r.get_json()["errors"]
    past = scenario_body(world, code="past-term",
                         starts_at=(now - dt.timedelta(days=9)).isoformat(),
                         ends_at=(now - dt.timedelta(days=1)).isoformat())
    r = client.post("/api/v1/scenarios", json=past, headers=world.operator)
    assert r.status_code == 422 and "ends_at" in r.get_json()["errors"]
    r = client.post("/api/v1/scenarios", json=scenario_body(world, code="naive",
                    ends_at="2030-01-01T00:00:00"), headers=world.operator)
    assert r.status_code == 422  # a time without its zone is refused


def test_withdrawal_refuses_new_licenses_and_existing_ones_run_to_their_end(client, world):
    scenario = approved_scenario(client, world)
    product = published_product(client, world, access="sandbox")
    lic = _pay_and_settle(client, world, _apply(client, world, product, scenario).get_json())
    assert lic["status"] == "active"
    url = f"/api/v1/scenarios/{scenario['id']}/withdraw"
    # Who: not the buyer nor the department; a reason is needed.
    assert client.post(url, json={"reason": "x"}).status_code == 401
    for headers in (world.buyer, world.department):
        assert client.post(url, json={"reason": "x"}, headers=headers).status_code == 403
    r = client.post(url, json={"reason": ""}, headers=world.operator)
    assert r.status_code == 422 and "reason" in r.get_json()["errors"]

    r = client.post(url, json={"reason": "试点结束"}, headers=world.operator)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "withdrawn"
    assert r.get_json()["withdrawal_reason"] == "试点结束"
    (event,) = _events("scenario.withdrawn")
    assert event.data["by"] == "operator" and event.data["active_licenses"] == 1
    # Final: not withdrawn twice, not decided again, not revised.
    assert client.post(url, json={"reason": "again"}, headers=world.regulator).status_code == 409
    body = scenario_body(world)
    body.pop("code")
    assert client.put(f"/api/v1/scenarios/{scenario['id']}", json=body,
                      headers=world.operator).status_code == 409

    r = _apply(client, world, product, scenario)
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "scenario_withdrawn"
    # The product no longer offers it; the buyer can still read why.
    got = client.get(f"/api/v1/products/{product['id']}", headers=world.buyer).get_json()
    assert got["scenarios"] == []
    got = client.get(f"/api/v1/scenarios/{scenario['id']}", headers=world.buyer).get_json()
    assert got["status"] == "withdrawn"
    # The license granted before keeps running.
    got = client.get(f"/api/v1/licenses/{lic['id']}", headers=world.buyer).get_json()
    assert got["status"] == "active"
    assert client.get(f"/api/v1/sandbox/{lic['id']}/tables",
                      headers=world.buyer).status_code == 200


def test_the_regulator_who_approved_it_may_withdraw_it(client, world):
    scenario = approved_scenario(client, world)
    r = client.post(f"/api/v1/scenarios/{scenario['id']}/withdraw",
                    json={"reason": "违规使用"}, headers=world.regulator)
    assert r.status_code == 200
    (event,) = _events("scenario.withdrawn")
    assert event.data["by"] == "regulator"
    # Only an approved scenario is withdrawn: a draft is simply left.
    draft = client.post("/api/v1/scenarios", json=scenario_body(world, code="a-draft"),
                        headers=world.operator).get_json()
    assert client.post(f"/api/v1/scenarios/{draft['id']}/withdraw", json={"reason": "x"},
                       headers=world.operator).status_code == 409


def test_an_ended_term_refuses_new_licenses(client, world):
    from market.extensions import db
    from market.scenarios.models import Scenario

    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    lic = _apply(client, world, product, scenario)
    assert lic.status_code == 201
    row = db.session.get(Scenario, scenario["id"])
    now = dt.datetime.now(dt.UTC)
    row.starts_at, row.ends_at = now - dt.timedelta(days=30), now - dt.timedelta(minutes=1)
    db.session.commit()
    got = client.get(f"/api/v1/scenarios/{scenario['id']}").get_json()
    assert got["status"] == "approved" and got["effective_status"] == "ended"
    r = _apply(client, world, product, scenario)
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "scenario_ended"
    row.starts_at, row.ends_at = now + dt.timedelta(days=1), now + dt.timedelta(days=30)
    db.session.commit()
    r = _apply(client, world, product, scenario)
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "scenario_not_started"


def test_the_withdraw_form_on_the_scenario_page(client, world, login):
    from tests.scenarios.test_pages import FormClient

    scenario = approved_scenario(client, world)
    client = FormClient(client)
    login(world.users["buyer"])
    page = client.get(f"/scenarios/{scenario['id']}").get_data(as_text=True)
    assert 'data-testid="withdraw-form"' not in page
    assert client.post(f"/scenarios/{scenario['id']}",
                       data={"action": "withdraw", "reason": "x"}).status_code == 403
    login(world.users["regulator"])
    page = client.get(f"/scenarios/{scenario['id']}").get_data(as_text=True)
    assert 'data-testid="withdraw-form"' in page and 'data-testid="scenario-term"' in page
    r = client.post(f"/scenarios/{scenario['id']}", data={"action": "withdraw", "reason": ""})
    assert r.status_code == 422 and 'data-field="reason"' in r.get_data(as_text=True)
    r = client.post(f"/scenarios/{scenario['id']}", data={"action": "withdraw", "reason": "违规"})
    assert r.status_code == 302
    page = client.get(f"/scenarios/{scenario['id']}").get_data(as_text=True)
    assert 'data-testid="scenario-withdrawn"' in page and "违规" in page


def test_a_withdrawn_scenario_reads_in_chinese(client, world):
    scenario = approved_scenario(client, world)
    client.post(f"/api/v1/scenarios/{scenario['id']}/withdraw", json={"reason": "试点结束"},
                headers=world.regulator)
    page = client.get(f"/scenarios/{scenario['id']}",
                      headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "不再据此场景授予新的许可" in page and "试点结束" in page


def test_an_application_pending_review_is_not_granted_once_the_scenario_is_withdrawn(
    client, world
):
    from market.extensions import db

    world.tax.open_grade = "conditional"  # conditional data: the operator reviews it
    db.session.commit()
    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    lic = _apply(client, world, product, scenario).get_json()
    assert lic["status"] == "pending_review", lic
    client.post(f"/api/v1/scenarios/{scenario['id']}/withdraw", json={"reason": "撤回"},
                headers=world.operator)
    r = client.post(f"/api/v1/licenses/{lic['id']}/review",
                    json={"decision": "approve", "comment": ""}, headers=world.operator)
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "scenario_withdrawn"
    r = client.post(f"/api/v1/licenses/{lic['id']}/review",
                    json={"decision": "reject", "comment": "场景已撤回"}, headers=world.operator)
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
