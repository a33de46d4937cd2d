"""The consent pages through a browser session: request, grant, look up (the profile with its
chart data), record a paper letter, revoke, the access log and the dashboard panels."""

from __future__ import annotations

import datetime as dt
import json
import re

import sqlalchemy as sa

from tests.conftest import PASSWORD
from tests.consents import data


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def login(client, party) -> str:
    client.post("/logout", data={"csrf_token": _csrf(client.get("/login").get_data(as_text=True))})
    page = client.get("/login").get_data(as_text=True)
    r = client.post(
        "/login", data={"email": party.user.email, "password": PASSWORD, "csrf_token": _csrf(page)}
    )
    assert r.status_code == 302
    return _csrf(client.get("/dashboard").get_data(as_text=True))


def _local_day(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


def test_request_grant_lookup_and_revoke_in_the_browser(world, client):
    from market.consents.models import Consent

    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, quota=7)

    token = login(client, bank)
    form = client.get("/consents/new?lang=en").get_data(as_text=True)
    assert f'value="{lic.id}"' in form
    bad = client.post("/consents/new?lang=en", data={
        "csrf_token": token, "license_id": lic.id, "subject_credit_code": "91310115MA1K7D2P0Y",
        "purpose": "loan", "valid_until": _local_day(10),
    })
    assert bad.status_code == 422
    assert 'data-field="subject_credit_code"' in bad.get_data(as_text=True)
    r = client.post("/consents/new", data={
        "csrf_token": token, "license_id": lic.id, "subject_credit_code": data.CODES[0],
        "purpose": "Working-capital loan", "valid_until": _local_day(10),
    })
    assert r.status_code == 302
    consent = world.session.scalars(sa.select(Consent)).one()
    # The end of the chosen day, Shanghai time.
    assert consent.valid_until.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime(
        "%H:%M:%S") == "23:59:59"

    token = login(client, subject)
    page = client.get("/consents?lang=en").get_data(as_text=True)
    assert f'data-testid="review-{consent.id}"' in page and bank.org.name in page
    dash = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert 'data-panel="consent_requests"' in dash and 'data-panel="access_log"' in dash
    assert 'data-testid="panel-requested">1<' in dash
    r = client.post(f"/consents/{consent.id}/decision",
                    data={"csrf_token": token, "decision": "grant"})
    assert r.status_code == 302
    world.session.refresh(consent)
    assert consent.status == "granted"

    token = login(client, bank)
    listing = client.get("/consents?lang=en").get_data(as_text=True)
    assert f'data-testid="lookup-{consent.id}"' in listing
    r = client.post("/lookups?lang=en", data={
        "csrf_token": token, "license_id": lic.id, "subject_credit_code": data.CODES[0],
    })
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'data-testid="profile"' in page and 'data-testid="profile-chart"' in page
    assert "js/consents.js" in page and "chart.umd.min.js" in page
    assert 'data-testid="quota-left">6<' in page
    chart = json.loads(re.search(
        r'<script type="application/json" id="profile-chart-data">(.*?)</script>', page, re.S
    ).group(1))
    assert chart["periods"] == data.PERIODS
    assert [s["key"] for s in chart["series"]] == ["tax", "headcount"]
    assert chart["series"][1]["values"] == [str(data.headcount(0, m)) for m in range(3)]
    assert data.NAMES[0] in page and "备注" not in page and "internal-0" not in page
    assert 'data-testid="profile-table-ct_tax"' in page
    dash = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert 'data-panel="lookups"' in dash and data.CODES[0] in dash

    token = login(client, subject)
    log = client.get("/consents/access-log?lang=en").get_data(as_text=True)
    assert log.count('data-type="lookup.performed"') == 1 and bank.org.name in log
    # The subject reads the dataset's name; the table's slug stays in the tooltip (#15).
    assert 'title="ct_tax"' in log and ">测试 tax</span>" in log and ">ct_tax<" not in log
    assert 'title="lookup.performed"' in log
    r = client.post(f"/consents/{consent.id}/revoke", data={"csrf_token": token})
    assert r.status_code == 302
    world.session.refresh(consent)
    assert consent.status == "revoked"

    token = login(client, bank)
    r = client.post("/lookups?lang=en", data={
        "csrf_token": token, "license_id": lic.id, "subject_credit_code": data.CODES[0],
    })
    assert r.status_code == 403 and "No granted, unexpired consent" in r.get_data(as_text=True)


def test_the_operator_records_a_paper_letter(world, client):
    bank, operator = world.party(), world.party("operator")
    lic = world.license(bank)
    consent = data.consent(world.session, lic, data.CODES[1], status="requested")
    world.session.commit()
    token = login(client, operator)
    assert f'data-testid="record-link-{consent.id}"' in client.get("/consents").get_data(as_text=True)
    page = client.get(f"/consents/{consent.id}?lang=en").get_data(as_text=True)
    assert 'data-testid="record-form"' in page
    r = client.post(f"/consents/{consent.id}/record?lang=en",
                    data={"csrf_token": token, "authorization_reference": ""})
    assert r.status_code == 422
    assert 'data-field="authorization_reference"' in r.get_data(as_text=True)
    r = client.post(f"/consents/{consent.id}/record",
                    data={"csrf_token": token, "authorization_reference": "SQS-9"})
    assert r.status_code == 302
    world.session.refresh(consent)
    assert consent.status == "granted" and consent.authorization_reference == "SQS-9"


def test_pages_check_role_and_object(world, client):
    bank, other = world.party(), world.party()
    lic = world.license(bank)
    consent = world.consent(lic, 0)
    login(client, other)
    assert client.get(f"/consents/{consent.id}").status_code == 404
    assert client.get("/consents").status_code == 200
    assert client.get("/consents/access-log").status_code == 403
    login(client, world.subject(1))
    assert client.get(f"/consents/{consent.id}").status_code == 404
    assert client.get("/lookups").status_code == 403
    assert client.get("/consents/new").status_code == 403
    pending = world.subject(0, status="pending")
    login(client, pending)
    dash = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert "Once the operator admits your enterprise" in dash
    assert client.get(f"/consents/{consent.id}").status_code == 403


def test_empty_states_say_what_to_do(world, client):
    bank = world.party()
    login(client, bank)
    page = client.get("/consents/new?lang=en").get_data(as_text=True)
    assert 'data-testid="no-license"' in page
    assert 'data-testid="consents-empty"' in client.get("/consents?lang=en").get_data(as_text=True)
    nav = client.get("/dashboard?lang=en").get_data(as_text=True)
    assert 'href="/consents"' in nav and 'href="/lookups"' in nav
