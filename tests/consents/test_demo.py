"""The demo step: the demo bank can look up the demo enterprise at once; it is idempotent and
skips (with a note) when the datasets are not listed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.fixture
def seeded(app):
    from market.demo_seed import seed_demo

    return seed_demo(rows=60)


def test_the_demo_bank_looks_up_the_demo_enterprise(app, client, auth_header, seeded):
    from market.accounts.models import User
    from market.consents.models import Consent
    from market.demo import generate
    from market.extensions import db

    note = next(n for n in seeded.notes if n.startswith("consented lookups"))
    assert "(new" in note and "/lookups" in note
    consent = db.session.scalars(sa.select(Consent)).one()
    assert consent.status == "granted" and consent.buyer_org_id == seeded.orgs["buyer_ccb"].id
    assert consent.subject_org_id == seeded.orgs["subject"].id

    bank = db.session.scalar(
        sa.select(User).where(User.organization_id == seeded.orgs["buyer_ccb"].id)
    )
    code = generate(rows=60).subject.credit_code
    r = client.post(
        "/api/v1/lookups",
        json={"license_id": consent.license_id, "subject_credit_code": code},
        headers=auth_header(bank),
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["subject"]["name"] == seeded.orgs["subject"].name
    # The consent is on the bank's 普惠金融 data-product license (market.scenarios.demo):
    # registry + tax + social insurance + housing fund + utilities.
    assert len(body["records"]) == 5 and all(body["records"].values())
    from licenses.models import License

    lic = db.session.get(License, consent.license_id)
    assert lic.product_id is not None and lic.scenario_id is not None
    registry = next(rows for rows in body["records"].values() if len(rows) == 1)
    assert registry[0]["企业名称"] == seeded.orgs["subject"].name
    # No raw identifier of a person comes back: the legal representative's ID is
    # pseudonymized in the Parquet and therefore omitted.
    assert all("法定代表人身份证号" not in row for rows in body["records"].values() for row in rows)

    from market.demo_seed import seed_demo

    again = seed_demo(rows=60)
    assert any("(existing" in n and "consent" in n for n in again.notes)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 1


def test_the_step_skips_without_listed_datasets(app, make_org):
    from market.consents.demo import seed_consent_demo
    from market.consents.models import Consent
    from market.demo import generate
    from market.demo_seed import DemoReport
    from market.extensions import db

    report = DemoReport()
    seed_consent_demo(generate(rows=5), report)
    assert report.notes == ["consented lookups: skipped (no demo organization buyer_ccb)"]

    kinds = {"buyer_ccb": "buyer", "operator": "operator", "subject": "subject",
             "tax": "department", "hrss": "department", "market_supervision": "department"}
    report = DemoReport(orgs={key: make_org(kind) for key, kind in kinds.items()})
    seed_consent_demo(generate(rows=5), report)
    assert report.notes == [
        "consented lookups: skipped, the demo datasets are not listed yet "
        "(tax, hrss, market_supervision)"
    ]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Consent)) == 0
