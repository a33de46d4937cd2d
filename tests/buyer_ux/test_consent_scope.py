"""Consent scope: before granting, the enterprise reads what the bank will read (the same rule
the lookup applies), for how long and why; revoking asks first; a duplicate request links to
the consent that already exists."""

from __future__ import annotations

import datetime as dt
import re

from tests.consents import data
from tests.consents.test_web import login


def _local_day(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()


def test_the_scope_is_exactly_what_a_lookup_reads(world, client):
    from market.consents.lookups import _plan_tables, item_scope

    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, tables=("tax", "hrss", "env"))
    consent = world.consent(lic, 0, status="requested", subject=subject.org)
    plans, unavailable = _plan_tables(lic, lambda key: world.data_dir / key)
    scopes = [item_scope(item) for item in lic.items]
    read = {s.slug: s.columns for s in scopes if s.reason is None}
    assert read == {p.spec.slug: p.spec.columns for p in plans}
    assert {s.slug for s in scopes if s.reason} == {u["slug"] for u in unavailable}

    login(client, subject)
    page = client.get(f"/consents/{consent.id}?lang=en").get_data(as_text=True)
    scope = page[page.index('data-testid="consent-scope"'):]
    scope = scope[: scope.index("</section>")]
    assert f"What {bank.org.name} will read" in scope
    tax = world.dataset("tax")
    line = re.search(rf'data-testid="scope-dataset-{tax.id}">(.*?)</li>', scope, re.S).group(1)
    assert "the columns 所属期、纳税额(元)、纳税信用等级、联系电话" in line
    # The pseudonymized identifier is named as never handed out, the key is not "read".
    assert "法定代表人身份证号" in line and "never handed out" in line
    assert "备注" not in scope  # not licensed
    env = world.dataset("env")
    assert "not read" in re.search(
        rf'data-testid="scope-dataset-{env.id}">(.*?)</li>', scope, re.S).group(1)
    assert consent.purpose in scope and "days from now" in scope
    # The grant buttons are on this page, below the scope; the list sends the enterprise here.
    assert page.index('data-testid="consent-scope"') < page.index('data-testid="grant"')
    listing = client.get("/consents?lang=en").get_data(as_text=True)
    assert f'href="/consents/{consent.id}" data-testid="review-{consent.id}"' in listing


def test_the_scope_in_chinese(world, client):
    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, tables=("hrss",))
    consent = world.consent(lic, 0, status="requested", subject=subject.org)
    login(client, subject)
    page = client.get(f"/consents/{consent.id}?lang=zh").get_data(as_text=True)
    assert f"{bank.org.name} 将读取的内容" in page
    assert "以下列：所属期、参保人数" in page
    assert "仅与贵企业有关的记录" in page


def test_revoking_asks_first(world, client):
    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, tables=("hrss",))
    consent = world.consent(lic, 0, status="granted", subject=subject.org)
    token = login(client, subject)
    detail = client.get(f"/consents/{consent.id}?lang=en").get_data(as_text=True)
    assert f'href="/consents/{consent.id}/revoke" data-testid="revoke"' in detail
    confirm = client.get(f"/consents/{consent.id}/revoke?lang=en")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert f"Revoke consent {consent.id}?" in html and bank.org.name in html
    world.session.refresh(consent)
    assert consent.status == "granted"  # asking changed nothing
    r = client.post(f"/consents/{consent.id}/revoke", data={"csrf_token": token})
    assert r.status_code == 302
    world.session.refresh(consent)
    assert consent.status == "revoked"
    # Nothing left to revoke: the confirm page sends back to the consent.
    again = client.get(f"/consents/{consent.id}/revoke")
    assert again.status_code == 302 and again.headers["Location"].endswith(
        f"/consents/{consent.id}")


def test_only_the_enterprise_sees_the_revoke_confirmation(world, client):
    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, tables=("hrss",))
    consent = world.consent(lic, 0, status="granted", subject=subject.org)
    login(client, bank)
    assert client.get(f"/consents/{consent.id}/revoke").status_code == 403
    other = world.party("buyer")
    login(client, other)
    assert client.get(f"/consents/{consent.id}/revoke").status_code == 404


def test_a_duplicate_request_links_to_the_existing_one_in_chinese(world, client):
    bank, subject = world.party(), world.subject(0)
    lic = world.license(bank, tables=("hrss",))
    consent = world.consent(lic, 0, status="requested", subject=subject.org)
    token = login(client, bank)
    r = client.post("/consents/new?lang=zh", data={
        "csrf_token": token, "license_id": lic.id, "subject_credit_code": data.CODES[0],
        "purpose": "流动资金贷款", "valid_until": _local_day(10),
    })
    assert r.status_code == 409
    html = r.get_data(as_text=True)
    assert f'<a href="/consents/{consent.id}">查看授权 {consent.id}</a>' in html
    assert "您在此许可下已有针对该企业的待处理申请或有效授权。" in html
    assert f"见授权 {consent.id}。" in html  # next to the field
