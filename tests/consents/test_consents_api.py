"""Consents through the API: request, decide, record a paper letter, revoke, read; the
per-object checks and the audit trail."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.consents import data
from tests.consents.conftest import events, future


def ask(client, buyer, lic, i: int = 0, **over):
    body = {
        "license_id": lic.id,
        "subject_credit_code": data.CODES[i],
        "purpose": "Working-capital loan credit check",
        "valid_until": future(),
        **over,
    }
    return client.post("/api/v1/consents", json=body, headers=buyer.headers)


def test_a_bank_requests_consent_and_it_is_audited(world, client):
    buyer, subject = world.party(), world.subject(0)
    lic = world.license(buyer)
    r = ask(client, buyer, lic, subject_credit_code=data.CODES[0].lower())
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["status"] == "requested" and body["license_id"] == lic.id
    assert body["subject"] == {"credit_code": data.CODES[0], "name": None}  # not disclosed yet
    assert body["buyer"]["id"] == buyer.org_id and body["via"] is None

    from market.consents.models import Consent

    row = world.session.get(Consent, body["id"])
    assert row.subject_org_id == subject.org_id  # the registered enterprise with that code
    (event,) = events(world.session, "consent.requested")
    assert event.subject_type == "consent" and event.subject_id == str(row.id)
    assert event.data["subject_org_id"] == subject.org_id and len(event.data["subject_ref"]) == 16
    assert data.CODES[0] not in json.dumps(event.data)


def test_an_unregistered_enterprise_can_be_asked(world, client):
    buyer = world.party()
    lic = world.license(buyer)
    r = ask(client, buyer, lic, 2)
    assert r.status_code == 201
    from market.consents.models import Consent

    assert world.session.get(Consent, r.get_json()["id"]).subject_org_id is None


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"subject_credit_code": "91310115MA1K7D2P0Y"}, "subject_credit_code"),  # bad check char
        ({"subject_credit_code": "not-a-code"}, "subject_credit_code"),
        ({"valid_until": "2020-01-01T00:00:00Z"}, "valid_until"),
        ({"valid_until": future(400)}, "valid_until"),  # after the license ends (180 days)
        ({"purpose": "   "}, "purpose"),
        ({"valid_until": "tomorrow"}, "valid_until"),
    ],
)
def test_invalid_requests_name_the_field(world, client, over, field):
    buyer = world.party()
    lic = world.license(buyer)
    r = ask(client, buyer, lic, **over)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]


def test_request_refusals(world, client):
    from licenses.models import BlacklistEntry

    buyer, other = world.party(), world.party()
    lic = world.license(buyer)
    assert ask(client, other, lic).status_code == 404  # another bank's license
    assert ask(client, world.subject(0), lic).status_code == 403  # not a buyer
    pending = world.party(status="pending")
    assert ask(client, pending, world.license(pending)).status_code == 403

    suspended = world.license(buyer, status="suspended")
    r = ask(client, buyer, suspended)
    assert r.status_code == 403 and "suspended" in r.get_json()["message"]

    world.session.add(BlacklistEntry(organization_id=buyer.org_id, reason="fraud"))
    world.session.commit()
    r = ask(client, buyer, lic)
    assert r.status_code == 403 and "blacklist" in r.get_json()["message"]


def test_only_one_open_request_per_license_and_enterprise(world, client):
    buyer = world.party()
    lic = world.license(buyer)
    first = ask(client, buyer, lic).get_json()["id"]
    r = ask(client, buyer, lic)
    assert r.status_code == 409 and str(first) in r.get_json()["message"]
    assert ask(client, buyer, lic, 1).status_code == 201  # another enterprise is fine


def test_the_enterprise_grants_and_only_once(world, client):
    buyer, subject = world.party(), world.subject(0)
    lic = world.license(buyer)
    cid = ask(client, buyer, lic).get_json()["id"]
    r = client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "grant"},
                    headers=subject.headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "granted" and body["via"] == "platform"
    assert body["subject"]["name"] == subject.org.name  # the enterprise answered itself
    assert [e.data["subject_org_id"] for e in events(world.session, "consent.granted")] == [
        subject.org_id
    ]
    again = client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "deny"},
                        headers=subject.headers)
    assert again.status_code == 409


def test_the_enterprise_denies(world, client):
    buyer, subject = world.party(), world.subject(0)
    cid = ask(client, buyer, world.license(buyer)).get_json()["id"]
    r = client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "deny"},
                    headers=subject.headers)
    assert r.status_code == 200 and r.get_json()["status"] == "denied"
    assert len(events(world.session, "consent.denied")) == 1


def test_who_may_decide(world, client):
    buyer, operator = world.party(), world.party("operator")
    cid = ask(client, buyer, world.license(buyer)).get_json()["id"]
    url = f"/api/v1/consents/{cid}/decision"
    grant = {"decision": "grant"}
    # Another enterprise does not even learn that the consent exists.
    other = world.subject(1)
    assert client.post(url, json=grant, headers=other.headers).status_code == 404
    assert client.post("/api/v1/consents/999999/decision", json=grant,
                       headers=other.headers).status_code == 404
    # The bank and the operator see the consent but do not decide it.
    assert client.post(url, json=grant, headers=buyer.headers).status_code == 403
    assert client.post(url, json=grant, headers=operator.headers).status_code == 403
    # An enterprise awaiting admission has not proven it owns the code.
    pending = world.subject(0, status="pending")
    r = client.post(url, json=grant, headers=pending.headers)
    assert r.status_code == 403 and "awaiting admission" in r.get_json()["message"]
    assert client.get(f"/api/v1/consents/{cid}", headers=pending.headers).status_code == 403
    assert client.get("/api/v1/consents", headers=pending.headers).status_code == 403
    # The caller comes first (#14.8): only the deciding enterprise learns the field rules.
    bad = client.post(url, json={"decision": "maybe"}, headers=buyer.headers)
    assert bad.status_code == 403 and not bad.get_json().get("errors")


def test_an_unknown_decision_names_the_field(world, client):
    buyer, subject = world.party(), world.subject(0)
    cid = ask(client, buyer, world.license(buyer)).get_json()["id"]
    bad = client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "maybe"},
                      headers=subject.headers)
    assert bad.status_code == 422 and "decision" in bad.get_json()["errors"]


def test_a_decision_after_the_requested_validity_conflicts(world, client):
    from market.consents.models import Consent

    buyer, subject = world.party(), world.subject(0)
    cid = ask(client, buyer, world.license(buyer)).get_json()["id"]
    world.session.get(Consent, cid).valid_until = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    world.session.commit()
    r = client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "grant"},
                    headers=subject.headers)
    assert r.status_code == 409 and "ask again" in r.get_json()["message"]


def test_the_operator_records_a_paper_letter(world, client):
    buyer, operator = world.party(), world.party("operator")
    cid = ask(client, buyer, world.license(buyer), 2).get_json()["id"]  # unregistered firm
    url = f"/api/v1/consents/{cid}/record"
    letter = {"authorization_reference": "SQS-2026-0042"}
    assert client.post(url, json=letter, headers=buyer.headers).status_code == 403
    assert client.post(url, json=letter, headers=world.party("regulator").headers).status_code == 403
    empty = client.post(url, json={"authorization_reference": ""}, headers=operator.headers)
    assert empty.status_code == 422 and "authorization_reference" in empty.get_json()["errors"]
    r = client.post(url, json=letter, headers=operator.headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "granted" and body["via"] == "paper"
    assert body["authorization_reference"] == "SQS-2026-0042"
    (event,) = events(world.session, "consent.recorded")
    assert event.data["authorization_reference"] == "SQS-2026-0042"
    assert client.post(url, json=letter, headers=operator.headers).status_code == 409
    assert client.post("/api/v1/consents/999999/record", json=letter,
                       headers=operator.headers).status_code == 404


def test_the_enterprise_revokes(world, client):
    buyer, subject = world.party(), world.subject(0)
    lic = world.license(buyer)
    cid = ask(client, buyer, lic).get_json()["id"]
    url = f"/api/v1/consents/{cid}/revoke"
    assert client.post(url, headers=subject.headers).status_code == 409  # still requested
    client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "grant"},
                headers=subject.headers)
    assert client.post(url, headers=world.subject(1).headers).status_code == 404
    assert client.post(url, headers=buyer.headers).status_code == 403
    r = client.post(url, headers=subject.headers)
    assert r.status_code == 200 and r.get_json()["status"] == "revoked"
    assert r.get_json()["revoked_at"]
    assert len(events(world.session, "consent.revoked")) == 1
    assert client.post(url, headers=subject.headers).status_code == 409
    # Revoked, the bank may ask again.
    assert ask(client, buyer, lic).status_code == 201


def test_who_sees_which_consents(world, client):
    bank_a, bank_b = world.party(), world.party()
    subject0 = world.subject(0)
    a0 = ask(client, bank_a, world.license(bank_a), 0).get_json()["id"]
    lic_b = world.license(bank_b)
    b0 = ask(client, bank_b, lic_b, 0).get_json()["id"]
    b1 = ask(client, bank_b, lic_b, 1).get_json()["id"]

    def ids(party, **params):
        r = client.get("/api/v1/consents", query_string=params, headers=party.headers)
        assert r.status_code == 200
        return sorted(item["id"] for item in r.get_json()["items"])

    assert ids(bank_a) == [a0]
    assert ids(bank_b) == sorted([b0, b1])
    assert ids(subject0) == sorted([a0, b0])
    assert ids(world.subject(2)) == []
    everyone = sorted([a0, b0, b1])
    assert ids(world.party("operator")) == everyone == ids(world.party("regulator"))

    assert client.get(f"/api/v1/consents/{a0}", headers=bank_a.headers).status_code == 200
    assert client.get(f"/api/v1/consents/{a0}", headers=bank_b.headers).status_code == 404
    assert client.get(f"/api/v1/consents/{b1}", headers=subject0.headers).status_code == 404
    assert client.get(f"/api/v1/consents/{b0}", headers=subject0.headers).status_code == 200
    dept = world.party("department")
    assert client.get("/api/v1/consents", headers=dept.headers).status_code == 403
    assert client.get(f"/api/v1/consents/{a0}", headers=dept.headers).status_code == 404


def test_expired_is_derived_and_filterable(world, client):
    buyer = world.party()
    lic = world.license(buyer)
    live = world.consent(lic, 0)
    old = world.consent(lic, 1, valid_for=-dt.timedelta(minutes=1))

    def statuses(**params):
        r = client.get("/api/v1/consents", query_string=params, headers=buyer.headers)
        return {item["id"]: item["status"] for item in r.get_json()["items"]}

    assert statuses() == {live.id: "granted", old.id: "expired"}
    assert statuses(status="expired") == {old.id: "expired"}
    assert statuses(status="granted") == {live.id: "granted"}


def test_nothing_stores_the_pseudonym(world, client):
    """The consent names the enterprise by code; no pseudonym lands in the platform DB."""
    from market.audit.models import AuditEvent
    from market.consents.models import Consent
    from market.pipeline import pseudonym

    buyer, subject = world.party(), world.subject(0)
    lic = world.license(buyer)
    cid = ask(client, buyer, lic).get_json()["id"]
    client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "grant"},
                headers=subject.headers)
    assert client.post("/api/v1/lookups", json={"license_id": lic.id,
                       "subject_credit_code": data.CODES[0]}, headers=buyer.headers).status_code == 200
    secret = pseudonym(world.key, "credit_code", data.CODES[0])
    dumped = json.dumps(
        [e.data for e in world.session.scalars(sa.select(AuditEvent))]
        + [c.purpose for c in world.session.scalars(sa.select(Consent))],
        ensure_ascii=False,
    )
    assert secret not in dumped and secret[4:] not in dumped
    assert data.CODES[0] not in dumped
