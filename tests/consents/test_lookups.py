"""Consented lookups: exactly the consenting enterprise's rows, only licensed columns; every
refusal; quota; rate limit; the enterprise's access log; the audit trail."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.consents import data
from tests.consents.conftest import events


def look(client, buyer, lic, code: str):
    return client.post(
        "/api/v1/lookups",
        json={"license_id": lic.id, "subject_credit_code": code},
        headers=buyer.headers,
    )


def quota(world, lic) -> int:
    from licenses.models import License

    return world.session.scalar(sa.select(License.quota_remaining).where(License.id == lic.id))


def test_a_bank_reads_exactly_the_consenting_enterprise(world, client):
    buyer, subject = world.party(), world.subject(1)
    lic = world.license(buyer, quota=10)
    consent = world.consent(lic, 1, subject=subject.org)
    r = look(client, buyer, lic, data.CODES[1])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["subject"] == {"credit_code": data.CODES[1], "name": subject.org.name}
    assert body["quota_remaining"] == 9 and quota(world, lic) == 9
    assert body["consent_id"] == consent.id and body["row_limit"] == 500
    assert set(body["records"]) == {"ct_tax", "ct_hrss", "ct_registry"}

    tax = body["records"]["ct_tax"]
    assert [row["所属期"] for row in tax] == data.PERIODS
    assert [Decimal(row["纳税额(元)"]) for row in tax] == [data.tax(1, m) for m in range(3)]
    assert {row["纳税信用等级"] for row in tax} == {"B"}  # enterprise 1's rows only
    assert {row["联系电话"] for row in tax} == {"138****0001"}  # masked, as stored
    # Only licensed columns; the entity key and pseudonymized identifiers are never returned.
    tables = {t["slug"]: t for t in body["tables"]}
    assert tables["ct_tax"]["columns"] == ["所属期", "纳税额(元)", "纳税信用等级", "联系电话"]
    assert tables["ct_tax"]["omitted_columns"] == ["法定代表人身份证号"]
    assert all(set(row) == set(tables["ct_tax"]["columns"]) for row in tax)
    assert "备注" not in json.dumps(body, ensure_ascii=False)
    assert [row["参保人数"] for row in body["records"]["ct_hrss"]] == [
        data.headcount(1, m) for m in range(3)
    ]
    assert body["records"]["ct_registry"] == [{"企业名称": data.NAMES[1], "所属区": "徐汇区"}]
    assert all(not t["truncated"] and t["row_count"] == len(body["records"][s])
               for s, t in tables.items())

    from market.consents.models import Lookup

    (entry,) = world.session.scalars(sa.select(Lookup)).all()
    assert entry.consent_id == consent.id and entry.subject_org_id == subject.org_id
    assert entry.row_counts == {"ct_tax": 3, "ct_hrss": 3, "ct_registry": 1}
    (event,) = events(world.session, "lookup.performed")
    assert event.subject_type == "consent" and event.subject_id == str(consent.id)
    assert event.data["subject_org_id"] == subject.org_id
    assert event.data["tables"] == ["ct_tax", "ct_hrss", "ct_registry"]
    assert event.data["row_counts"] == {"ct_tax": 3, "ct_hrss": 3, "ct_registry": 1}
    assert data.CODES[1] not in json.dumps(event.data)


def test_only_the_licensed_tables_and_columns(world, client):
    buyer = world.party()
    lic = world.license(buyer, tables=[("hrss", [data.KEY, "参保人数"]), "env"])
    world.consent(lic, 0)
    body = look(client, buyer, lic, data.CODES[0]).get_json()
    assert list(body["records"]) == ["ct_hrss"]
    assert {tuple(row) for row in body["records"]["ct_hrss"]} == {("参保人数",)}
    assert body["unavailable"] == [
        {"slug": "ct_env", "dataset_id": world.dataset("env").id,
         "reason": "not_keyed_by_credit_code"}
    ]


def _deny(world, c):
    c.status = "denied"


def _revoke(world, c):
    c.status, c.revoked_at = "revoked", dt.datetime.now(dt.UTC)


def _expire(world, c):
    c.valid_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


def _pending(world, c):
    c.status = "requested"


def _other_license(world, c):
    from licenses.models import License

    buyer_org_id = world.session.get(License, c.license_id).buyer_org_id
    tax = world.dataset("tax")
    c.license_id = data.license_for(world.session, buyer_org_id, [(tax, data.LICENSED["tax"])]).id


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (None, data.CODES[1]),  # no consent for this enterprise
        (_pending, data.CODES[0]),
        (_deny, data.CODES[0]),
        (_revoke, data.CODES[0]),
        (_expire, data.CODES[0]),
        (_other_license, data.CODES[0]),  # consent given for another license of the bank
        (None, data.UNKNOWN_CODE),  # nobody knows this enterprise: the same answer
    ],
    ids=["no-consent", "requested", "denied", "revoked", "expired", "other-license", "unknown"],
)
def test_refused_without_a_valid_consent_with_one_message(world, client, change, code):
    from market.consents.lookups import NO_CONSENT_MESSAGE

    buyer = world.party()
    lic = world.license(buyer, quota=5)
    c = world.consent(lic, 0)
    if change is not None:
        change(world, c)
        world.session.commit()
    r = look(client, buyer, lic, code)
    assert r.status_code == 403
    assert r.get_json()["message"] == NO_CONSENT_MESSAGE
    assert quota(world, lic) == 5
    (event,) = events(world.session, "lookup.refused")
    assert event.data["reason"] == "no_valid_consent" and code not in json.dumps(event.data)
    assert events(world.session, "lookup.performed") == []


def test_refused_when_the_license_is_not_usable(world, client):
    from licenses.models import License

    buyer = world.party()
    lic = world.license(buyer, quota=5)
    world.consent(lic, 0)
    assert look(client, buyer, lic, data.CODES[0]).status_code == 200
    world.session.get(License, lic.id).status = "suspended"
    world.session.commit()
    r = look(client, buyer, lic, data.CODES[0])
    assert r.status_code == 403 and "suspended" in r.get_json()["message"]
    assert quota(world, lic) == 4

    expired = world.license(buyer, ends_in=dt.timedelta(days=1))
    world.consent(expired, 0)
    world.session.get(License, expired.id).ends_at = dt.datetime.now(dt.UTC) - dt.timedelta(1)
    world.session.commit()
    r = look(client, buyer, expired, data.CODES[0])
    assert r.status_code == 403 and "term is over" in r.get_json()["message"]


def test_other_callers_are_refused(world, client):
    from licenses.models import BlacklistEntry

    buyer, other = world.party(), world.party()
    lic = world.license(buyer)
    world.consent(lic, 0)
    assert look(client, other, lic, data.CODES[0]).status_code == 404  # another bank's license
    assert look(client, world.subject(0), lic, data.CODES[0]).status_code == 403
    assert look(client, world.party("operator"), lic, data.CODES[0]).status_code == 403
    bad = look(client, buyer, lic, "91310115MA1K7D2P0Y")
    assert bad.status_code == 422 and "subject_credit_code" in bad.get_json()["errors"]
    world.session.add(BlacklistEntry(organization_id=buyer.org_id, reason="fraud"))
    world.session.commit()
    r = look(client, buyer, lic, data.CODES[0])
    assert r.status_code == 403 and "blacklist" in r.get_json()["message"]
    assert quota(world, lic) == 100


def test_each_lookup_uses_one_unit_and_an_empty_quota_is_429(world, client):
    buyer = world.party()
    lic = world.license(buyer, quota=2)
    world.consent(lic, 0)
    assert [look(client, buyer, lic, data.CODES[0]).get_json()["quota_remaining"]
            for _ in range(2)] == [1, 0]
    r = look(client, buyer, lic, data.CODES[0])
    assert r.status_code == 429 and "quota" in r.get_json()["message"]
    assert quota(world, lic) == 0
    assert [e.data["reason"] for e in events(world.session, "lookup.refused")] == [
        "quota_exhausted"
    ]
    assert len(events(world.session, "lookup.performed")) == 2


def test_rows_are_capped_and_the_answer_says_so(world, client, monkeypatch):
    monkeypatch.setitem(world.app.config, "MARKET_LOOKUP_ROW_LIMIT", 2)
    buyer = world.party()
    lic = world.license(buyer, tables=["tax"])
    world.consent(lic, 2)
    body = look(client, buyer, lic, data.CODES[2]).get_json()
    assert body["row_limit"] == 2 and len(body["records"]["ct_tax"]) == 2
    assert body["tables"][0]["truncated"] is True
    assert events(world.session, "lookup.performed")[0].data["truncated"] == ["ct_tax"]


def test_a_missing_data_file_is_503_and_uses_no_quota(world, client):
    from market.datasets.models import DatasetVersion

    buyer = world.party()
    lic = world.license(buyer, tables=["hrss"], quota=3)
    world.consent(lic, 0)
    version = world.session.get(DatasetVersion, world.dataset("hrss").current_version_id)
    version.parquet_path = "consents-tests/gone.parquet"
    world.session.commit()
    r = look(client, buyer, lic, data.CODES[0])
    assert r.status_code == 503 and "no quota was used" in r.get_json()["message"]
    assert quota(world, lic) == 3


def test_lookups_are_rate_limited_per_organization(world, client, rate_limits, monkeypatch):
    monkeypatch.setitem(world.app.config, "MARKET_LOOKUP_RATE_LIMIT", "2 per minute")
    bank = world.party()
    colleague = world.party(org=bank.org)
    lic = world.license(bank)
    world.consent(lic, 0)
    assert look(client, bank, lic, data.CODES[0]).status_code == 200
    assert look(client, colleague, lic, data.CODES[0]).status_code == 200
    r = look(client, bank, lic, data.CODES[0])
    assert r.status_code == 429 and r.get_json()["code"] == 429
    assert look(client, colleague, lic, data.CODES[0]).status_code == 429  # same organization
    other = world.party()
    other_lic = world.license(other)
    world.consent(other_lic, 0)
    assert look(client, other, other_lic, data.CODES[0]).status_code == 200
    assert client.get("/api/v1/lookups", headers=bank.headers).status_code == 200  # GET is free


def test_the_enterprise_sees_every_access(world, client):
    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank)
    r = client.post("/api/v1/consents", headers=bank.headers, json={
        "license_id": lic.id, "subject_credit_code": data.CODES[0],
        "purpose": "loan", "valid_until": (dt.datetime.now(dt.UTC) + dt.timedelta(7)).isoformat(),
    })
    cid = r.get_json()["id"]
    client.post(f"/api/v1/consents/{cid}/decision", json={"decision": "grant"},
                headers=subject.headers)
    for _ in range(2):
        assert look(client, bank, lic, data.CODES[0]).status_code == 200
    client.post(f"/api/v1/consents/{cid}/revoke", headers=subject.headers)
    # Another enterprise's consent and lookups stay out of this log.
    other_lic = world.license(world.party())
    world.consent(other_lic, 1)

    r = client.get("/api/v1/subjects/me/access-log", headers=subject.headers)
    assert r.status_code == 200
    log = r.get_json()
    assert log["total"] == 5
    assert [e["type"] for e in log["items"]] == [
        "consent.revoked", "lookup.performed", "lookup.performed", "consent.granted",
        "consent.requested",
    ]
    assert all(e["bank"]["id"] == bank.org_id and e["consent_id"] == cid for e in log["items"])
    looked = log["items"][1]
    assert looked["tables"] == ["ct_tax", "ct_hrss", "ct_registry"]
    assert looked["row_counts"] == {"ct_tax": 3, "ct_hrss": 3, "ct_registry": 1}
    assert looked["actor_role"] == "buyer" and looked["at"]

    page = client.get("/api/v1/subjects/me/access-log?per_page=2&page=3",
                      headers=subject.headers).get_json()
    assert page["total"] == 5 and [e["type"] for e in page["items"]] == ["consent.requested"]
    assert client.get("/api/v1/subjects/me/access-log",
                      headers=world.subject(1).headers).get_json()["total"] == 0
    assert client.get("/api/v1/subjects/me/access-log", headers=bank.headers).status_code == 403
    pending = world.subject(2, status="pending")
    assert client.get("/api/v1/subjects/me/access-log",
                      headers=pending.headers).status_code == 403


def test_a_paper_letter_appears_in_the_log_once_the_enterprise_registers(world, client):
    bank, operator = world.party(), world.party("operator")
    lic = world.license(bank)
    cid = client.post("/api/v1/consents", headers=bank.headers, json={
        "license_id": lic.id, "subject_credit_code": data.CODES[2], "purpose": "loan",
        "valid_until": (dt.datetime.now(dt.UTC) + dt.timedelta(7)).isoformat(),
    }).get_json()["id"]
    client.post(f"/api/v1/consents/{cid}/record", json={"authorization_reference": "L-7"},
                headers=operator.headers)
    assert look(client, bank, lic, data.CODES[2]).status_code == 200
    later = world.subject(2)  # registers (and is admitted) after the fact
    log = client.get("/api/v1/subjects/me/access-log", headers=later.headers).get_json()
    assert [e["type"] for e in log["items"]] == [
        "lookup.performed", "consent.recorded", "consent.requested"
    ]
    assert log["items"][1]["authorization_reference"] == "L-7"
    assert log["items"][1]["actor_role"] == "operator"


def test_the_lookup_log(world, client):
    bank, other = world.party(), world.party()
    lic = world.license(bank)
    world.consent(lic, 0)
    look(client, bank, lic, data.CODES[0])
    mine = client.get("/api/v1/lookups", headers=bank.headers).get_json()
    assert mine["total"] == 1 and mine["items"][0]["subject_credit_code"] == data.CODES[0]
    assert mine["items"][0]["row_counts"]["ct_tax"] == 3
    assert client.get("/api/v1/lookups", headers=other.headers).get_json()["total"] == 0
    assert client.get("/api/v1/lookups",
                      headers=world.party("regulator").headers).get_json()["total"] == 1
    assert client.get("/api/v1/lookups", headers=world.subject(0).headers).status_code == 403
