"""Scenarios (场景机会清单): the operator drafts and submits, the regulator decides; who sees
what; every change audited in the same transaction."""

from __future__ import annotations

import sqlalchemy as sa

from tests.scenarios.conftest import approved_scenario, scenario_body


def _events(type_: str) -> list:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_)).all()


def test_draft_submit_approve_is_audited(client, world):
    r = client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.operator)
    assert r.status_code == 201
    body = r.get_json()
    assert body["status"] == "draft"
    assert [d["id"] for d in body["datasets"]] == sorted([world.registry.id, world.tax.id])
    sid = body["id"]
    r = client.post(f"/api/v1/scenarios/{sid}/submit", headers=world.operator)
    assert r.get_json()["status"] == "pending"
    r = client.post(f"/api/v1/scenarios/{sid}/decision", json={"decision": "approve",
                    "comment": "符合要求"}, headers=world.regulator)
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    for type_ in ("scenario.created", "scenario.submitted", "scenario.approved"):
        (event,) = _events(type_)
        assert event.subject_type == "scenario" and str(event.subject_id) == str(sid)
    assert _events("scenario.approved")[0].data["comment"] == "符合要求"


def test_rejection_needs_a_comment_and_a_rejected_scenario_can_be_revised(client, world):
    sid = client.post("/api/v1/scenarios", json=scenario_body(world),
                      headers=world.operator).get_json()["id"]
    client.post(f"/api/v1/scenarios/{sid}/submit", headers=world.operator)
    r = client.post(f"/api/v1/scenarios/{sid}/decision", json={"decision": "reject"},
                    headers=world.regulator)
    assert r.status_code == 422 and "comment" in r.get_json()["errors"]
    r = client.post(f"/api/v1/scenarios/{sid}/decision",
                    json={"decision": "reject", "comment": "用途过宽"}, headers=world.regulator)
    assert r.get_json()["status"] == "rejected"
    revised = scenario_body(world, dataset_ids=[world.registry.id], purposes=["research"])
    revised.pop("code")
    r = client.put(f"/api/v1/scenarios/{sid}", json=revised, headers=world.operator)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "draft"
    assert [d["id"] for d in r.get_json()["datasets"]] == [world.registry.id]
    assert r.get_json()["purposes"] == ["research"]
    assert _events("scenario.revised")[0].data["previous_status"] == "rejected"


def test_an_approved_scenario_is_never_changed_nor_decided_twice(client, world):
    scenario = approved_scenario(client, world)
    sid = scenario["id"]
    body = scenario_body(world)
    body.pop("code")
    assert client.put(f"/api/v1/scenarios/{sid}", json=body,
                      headers=world.operator).status_code == 409
    assert client.post(f"/api/v1/scenarios/{sid}/decision", json={"decision": "reject",
                       "comment": "x"}, headers=world.regulator).status_code == 409
    assert client.post(f"/api/v1/scenarios/{sid}/submit",
                       headers=world.operator).status_code == 409


def test_roles_are_checked(client, world):
    r = client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.buyer)
    assert r.status_code == 403
    r = client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.regulator)
    assert r.status_code == 403
    sid = client.post("/api/v1/scenarios", json=scenario_body(world),
                      headers=world.operator).get_json()["id"]
    assert client.post(f"/api/v1/scenarios/{sid}/submit",
                       headers=world.buyer).status_code == 403
    client.post(f"/api/v1/scenarios/{sid}/submit", headers=world.operator)
    # The operator cannot approve its own scenario: the regulator decides.
    for headers in (world.operator, world.buyer, world.department):
        r = client.post(f"/api/v1/scenarios/{sid}/decision", json={"decision": "approve"},
                        headers=headers)
        assert r.status_code == 403


def test_only_approved_scenarios_are_visible_to_buyers_and_the_public(client, world):
    draft = client.post("/api/v1/scenarios", json=scenario_body(world, code="draft-one"),
                        headers=world.operator).get_json()
    approved = approved_scenario(client, world)
    for headers in ({}, world.buyer, world.department):
        listed = client.get("/api/v1/scenarios", headers=headers).get_json()
        assert [s["id"] for s in listed["items"]] == [approved["id"]]
        assert client.get(f"/api/v1/scenarios/{draft['id']}",
                          headers=headers).status_code == 404
    seen = client.get("/api/v1/scenarios?status=draft", headers=world.regulator).get_json()
    assert [s["id"] for s in seen["items"]] == [draft["id"]]


def test_bad_input_names_the_field(client, world, make_dataset):
    unlisted = make_dataset(status="pending_review")
    cases = [
        ({"dataset_ids": []}, "dataset_ids"),
        ({"dataset_ids": [unlisted.id]}, "dataset_ids"),
        ({"dataset_ids": [world.tax.id, world.tax.id]}, "dataset_ids"),
        ({"purposes": ["exclusive"]}, "purposes"),
        ({"purposes": []}, "purposes"),
        ({"code": "有空格 code"}, "code"),
    ]
    for over, field in cases:
        r = client.post("/api/v1/scenarios", json=scenario_body(world, **over),
                        headers=world.operator)
        assert r.status_code == 422, (over, r.get_json())
        assert field in str(r.get_json()["errors"]), (over, r.get_json())
    client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.operator)
    r = client.post("/api/v1/scenarios", json=scenario_body(world), headers=world.operator)
    assert r.status_code == 409
