"""#14.8 for the sandbox: a caller who may not use a license learns nothing about the SQL.

Another buyer (404), the operator, the regulator, a department (403) get the same answer
whatever they send: a valid query, a query the policy refuses, or a body that fails
validation. Their refusal is audited without the text or hash of what they sent. The
license's buyer still gets the field rules (422) for an invalid body and the policy's rule
for a refused query.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

VALID = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"
REFUSED_BY_POLICY = "SELECT * FROM read_parquet('/etc/passwd')"
INVALID_BODIES = [{"sql": 5}, {"sql": None}, {"nope": "SELECT 1"}, {"sql": "SELECT 1", "x": 1}]
ENDPOINTS = ["/api/v1/sandbox/{id}/queries", "/api/v1/sandbox/{id}/queries/cost"]


def _events(session, license_id: int) -> list:
    from market.audit.models import AuditEvent

    session.expire_all()
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.type == "sandbox.query", AuditEvent.subject_id == str(license_id))
            .order_by(AuditEvent.seq)
        )
    )


def _log_count(session, license_id: int) -> int:
    from sandbox.models import SandboxQuery

    return session.scalar(
        sa.select(sa.func.count()).select_from(SandboxQuery)
        .where(SandboxQuery.license_id == license_id)
    )


def _callers(world, as_role):
    """(name, headers, expected status, expected rule) of everyone who may not use it."""
    stranger = world.party()
    out = [("another buyer", stranger.headers, 404, "not_found")]
    for role in ("operator", "regulator", "department"):
        _, headers = as_role(role)
        out.append((role, headers, 403, "not_buyer"))
    return out


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_outsider_gets_the_same_refusal_whatever_the_body(world, client, as_role, endpoint):
    owner = world.party()
    lic = world.license(owner, ["loans"], quota=5)
    url = endpoint.format(id=lic.id)
    bodies = [{"sql": VALID}, {"sql": REFUSED_BY_POLICY}, *INVALID_BODIES]
    for name, headers, status, rule in _callers(world, as_role):
        answers = set()
        for body in bodies:
            r = client.post(url, json=body, headers=headers)
            payload = r.get_json()
            assert r.status_code == status, (name, body, payload)
            assert payload["errors"] == {"rule": rule}, (name, body, payload)
            answers.add((r.status_code, payload["message"]))
        assert len(answers) == 1, (name, answers)  # nothing in the answer depends on the SQL
    assert _log_count(world.session, lic.id) == 0


def test_an_outsiders_refusal_is_audited_without_what_they_sent(world, client, as_role):
    owner = world.party()
    lic = world.license(owner, ["loans"], quota=5)
    callers = _callers(world, as_role)
    for _name, headers, _status, _rule in callers:
        query(client, lic.id, VALID, headers)
        client.post(f"/api/v1/sandbox/{lic.id}/queries", json={"sql": 5}, headers=headers)
    events = _events(world.session, lic.id)
    assert len(events) == 2 * len(callers)
    for event in events:
        assert event.data["decision"] == "refused"
        assert event.data["rule"] in ("not_found", "not_buyer")
        assert event.data["sql"] is None and event.data["sql_hash"] is None, event.data


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", INVALID_BODIES)
def test_the_licenses_buyer_gets_the_field_rules(world, client, endpoint, body):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=5)
    r = client.post(endpoint.format(id=lic.id), json=body, headers=buyer.headers)
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]
    assert errors and "rule" not in errors  # the schema's field rules, not a policy rule
    assert _log_count(world.session, lic.id) == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_licenses_buyer_gets_the_policy_rule(world, client, endpoint):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=5)
    r = client.post(endpoint.format(id=lic.id), json={"sql": REFUSED_BY_POLICY},
                    headers=buyer.headers)
    assert r.status_code == 422
    assert r.get_json()["errors"]["rule"] in ("forbidden_table", "forbidden_function")


def test_a_buyer_of_a_suspended_license_is_told_so_before_the_body_is_read(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], status="suspended", quota=5)
    r = client.post(f"/api/v1/sandbox/{lic.id}/queries", json={"sql": 5}, headers=buyer.headers)
    assert r.status_code == 403 and r.get_json()["errors"] == {"rule": "license_not_active"}
    (event,) = _events(world.session, lic.id)
    assert event.data["sql"] is None  # the invalid body was never read
    # A text query on the same license is refused the same way and kept in its history.
    r = query(client, lic.id, VALID, buyer.headers)
    assert r.status_code == 403
    assert _log_count(world.session, lic.id) == 1
