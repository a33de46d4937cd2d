"""The license pages, through the browser session: each role's pages render and their forms
work (CSRF included)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import PASSWORD
from tests.licenses_app.conftest import active_license, apply


def csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def login(client, party) -> str:
    page = client.get("/login").get_data(as_text=True)
    r = client.post(
        "/login", data={"email": party.user.email, "password": PASSWORD, "csrf_token": csrf(page)}
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return csrf(client.get("/dashboard").get_data(as_text=True))


def test_buyer_applies_pays_by_invoice_and_operator_settles(app, client, market):
    from licenses.models import License
    from market.extensions import db

    quote = market.quote([(market.dataset(title="企业纳税信用"), 250_000)])
    token = login(client, market.buyer)
    page = client.get("/licenses").get_data(as_text=True)
    assert f"/licenses/apply/{quote.id}" in page
    dash = client.get("/dashboard").get_data(as_text=True)
    assert 'data-panel="my_licenses"' in dash

    form = client.get(f"/licenses/apply/{quote.id}")
    assert form.status_code == 200 and "企业纳税信用" in form.get_data(as_text=True)
    r = client.post(
        f"/licenses/apply/{quote.id}", data={"purpose_statement": "", "csrf_token": token}
    )
    assert r.status_code == 422 and 'data-field="purpose_statement"' in r.get_data(as_text=True)
    r = client.post(
        f"/licenses/apply/{quote.id}",
        data={"purpose_statement": "小微企业贷款风控", "csrf_token": token},
    )
    assert r.status_code == 302
    lic = db.session.scalar(sa.select(License).where(License.quote_id == quote.id))
    assert r.headers["Location"].endswith(f"/licenses/{lic.id}")

    r = client.post(f"/licenses/{lic.id}/pay", data={"provider": "invoice", "csrf_token": token})
    assert r.status_code == 302
    detail = client.get(f"/licenses/{lic.id}").get_data(as_text=True)
    assert 'data-testid="invoice-number"' in detail and "¥2,500.00" in detail
    assert 'data-testid="pay-stripe"' not in detail  # Stripe is not configured here
    client.post("/logout", data={"csrf_token": token})

    token = login(client, market.operator)
    page = client.get("/payments/settlements")
    assert page.status_code == 200
    payment = lic.payments[0]
    r = client.post(
        "/payments/settlements",
        data={"payment_id": payment.id, "bank_reference": "", "csrf_token": token},
    )
    assert r.status_code == 422 and 'data-field="bank_reference"' in r.get_data(as_text=True)
    r = client.post(
        "/payments/settlements",
        data={"payment_id": payment.id, "bank_reference": "ICBC-1", "csrf_token": token},
    )
    assert r.status_code == 302
    db.session.refresh(lic)
    assert lic.status == "active"

    doc = client.get(f"/licenses/{lic.id}/document")
    text = doc.get_data(as_text=True)
    assert doc.status_code == 200
    assert "公共数据使用许可" in text and "Public Data Usage License" in text
    assert lic.signature in text and lic.key_id in text
    # Bilingual whatever the UI language.
    english = client.get(f"/licenses/{lic.id}/document?lang=en").get_data(as_text=True)
    assert "公共数据使用许可" in english and "Public Data Usage License" in english


def test_operator_review_queue(app, client, market):
    quote = market.quote([(market.dataset(grade="conditional", title="司法涉诉"), 9_000)])
    lic = apply(client, market, quote, "信贷审批").get_json()
    token = login(client, market.operator)
    page = client.get("/licenses/review").get_data(as_text=True)
    assert "司法涉诉" in page and "信贷审批" in page and "¥90.00" in page
    r = client.post(
        f"/licenses/{lic['id']}/review",
        data={"decision": "reject", "comment": "", "return_to": "queue", "csrf_token": token},
    )
    assert r.status_code == 302
    assert client.get(f"/api/v1/licenses/{lic['id']}").get_json()["status"] == "pending_review"
    r = client.post(
        f"/licenses/{lic['id']}/review",
        data={"decision": "approve", "comment": "ok", "return_to": "queue", "csrf_token": token},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/licenses/review")
    assert client.get(f"/api/v1/licenses/{lic['id']}").get_json()["status"] == "awaiting_payment"


def test_regulator_suspends_and_reinstates_and_blacklists(app, client, market):
    lic = active_license(client, market)
    token = login(client, market.regulator)
    page = client.get(f"/licenses/{lic['id']}").get_data(as_text=True)
    assert 'data-testid="suspend"' in page and 'data-testid="revoke"' in page
    client.post(
        f"/licenses/{lic['id']}/status",
        data={"action": "suspend", "reason": "投诉核查", "csrf_token": token},
    )
    assert client.get(f"/api/v1/licenses/{lic['id']}").get_json()["status"] == "suspended"
    page = client.get(f"/licenses/{lic['id']}").get_data(as_text=True)
    assert 'data-testid="reinstate"' in page and "投诉核查" in page
    client.post(
        f"/licenses/{lic['id']}/status",
        data={"action": "reinstate", "reason": "核查完毕", "csrf_token": token},
    )
    assert client.get(f"/api/v1/licenses/{lic['id']}").get_json()["status"] == "active"

    buyer_org = market.buyer.org
    assert client.get("/blacklist").status_code == 200
    r = client.post(
        "/blacklist", data={"organization_id": buyer_org.id, "reason": "", "csrf_token": token}
    )
    assert r.status_code == 422
    r = client.post(
        "/blacklist",
        data={"organization_id": buyer_org.id, "reason": "违规转售", "csrf_token": token},
    )
    assert r.status_code == 302
    assert "违规转售" in client.get("/blacklist").get_data(as_text=True)
    r = client.post(
        f"/blacklist/{buyer_org.id}/remove", data={"reason": "申诉成立", "csrf_token": token}
    )
    assert r.status_code == 302
    assert "违规转售" not in client.get("/blacklist").get_data(as_text=True)


def test_department_revenue_page_and_operator_payout(app, client, market):
    from market.extensions import db

    dept_user = market.party("department")
    dataset = market.dataset(dept_user.org)
    quote = market.quote([(dataset, 100_000)])
    lic = apply(client, market, quote).get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "B"},
        headers=market.operator.headers,
    )

    login(client, dept_user)
    page = client.get("/revenue").get_data(as_text=True)
    assert "¥900.00" in page  # 90% of ¥1,000.00
    assert 'id="revenue-chart"' in page and 'id="revenue-data"' in page
    assert "chart.umd.min.js" in page and "<script>" not in page
    csv_url = re.search(r'href="([^"]+statements\.csv[^"]*)"', page).group(1).replace("&amp;", "&")
    r = client.get(csv_url)
    assert r.status_code == 200 and "90000" in r.get_data(as_text=True)
    assert 'data-panel="revenue"' in client.get("/dashboard").get_data(as_text=True)
    assert client.post("/revenue", data={}).status_code in (400, 403)

    token = login(client, market.operator)
    page = client.get(f"/revenue?department_id={dept_user.org.id}").get_data(as_text=True)
    assert 'data-testid="payout-form"' in page
    r = client.post(
        f"/revenue?department_id={dept_user.org.id}",
        data={
            "department_id": dept_user.org.id,
            "amount": "901",
            "reference": "T1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 409 and 'data-field="amount"' in r.get_data(as_text=True)
    r = client.post(
        f"/revenue?department_id={dept_user.org.id}",
        data={
            "department_id": dept_user.org.id,
            "amount": "12.345",
            "reference": "T1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 422
    r = client.post(
        f"/revenue?department_id={dept_user.org.id}",
        data={
            "department_id": dept_user.org.id,
            "amount": "900.00",
            "reference": "T1",
            "csrf_token": token,
        },
    )
    assert r.status_code == 302
    from licenses.ledger import department_payable

    assert department_payable(db.session, dept_user.org.id) == 0


def test_pages_refuse_the_wrong_roles(client, market):
    lic = active_license(client, market)
    login(client, market.party("department"))
    for url in (
        f"/licenses/{lic['id']}",
        "/licenses/review",
        "/payments/settlements",
        "/blacklist",
        "/licenses",
    ):
        assert client.get(url).status_code in (403, 404), url


def test_every_page_renders_in_both_languages(client, market):
    lic = active_license(client, market)
    apply(client, market, market.quote([(market.dataset(grade="conditional"), 1)]))
    for party, urls in (
        (
            market.buyer,
            [
                "/licenses",
                f"/licenses/{lic['id']}",
                f"/licenses/{lic['id']}/document",
                "/dashboard",
            ],
        ),
        (
            market.operator,
            [
                "/licenses",
                "/licenses/review",
                "/payments/settlements",
                "/revenue",
                "/blacklist",
                "/dashboard",
                f"/licenses/{lic['id']}",
            ],
        ),
        (
            market.regulator,
            ["/licenses?status=active", "/revenue?period=2024-02", "/blacklist", "/dashboard"],
        ),
    ):
        login(client, party)
        for lang in ("zh", "en"):
            for url in urls:
                sep = "&" if "?" in url else "?"
                r = client.get(f"{url}{sep}lang={lang}")
                assert r.status_code == 200, (url, lang)


def test_operator_keeps_the_public_welfare_list_on_its_page(app, client, market):
    """The whitelist of public-welfare bodies has a page: the operator adds a buyer (which can
    then have free licenses approved) and removes it with a reason; each change is audited; the
    regulator reads it; a buyer may not."""
    from market.audit.models import AuditEvent
    from market.extensions import db

    buyer_org = market.buyer.org
    token = login(client, market.operator)
    page = client.get("/public-welfare-bodies").get_data(as_text=True)
    assert f'value="{buyer_org.id}"' in page
    r = client.post(
        "/public-welfare-bodies",
        data={"organization_id": buyer_org.id, "reason": "", "csrf_token": token},
    )
    assert r.status_code == 422
    r = client.post(
        "/public-welfare-bodies",
        data={"organization_id": buyer_org.id, "reason": "社区公益项目", "csrf_token": token},
    )
    assert r.status_code == 302
    page = client.get("/public-welfare-bodies").get_data(as_text=True)
    assert "社区公益项目" in page and 'data-testid="welfare-bodies"' in page
    listed = client.get("/api/v1/public-welfare-bodies", headers=market.operator.headers)
    assert [b["organization"]["id"] for b in listed.get_json()["items"]] == [buyer_org.id]
    r = client.post(
        f"/public-welfare-bodies/{buyer_org.id}/remove", data={"reason": "", "csrf_token": token}
    )
    assert r.status_code == 302 and "社区公益项目" in client.get(
        "/public-welfare-bodies"
    ).get_data(as_text=True)
    r = client.post(
        f"/public-welfare-bodies/{buyer_org.id}/remove",
        data={"reason": "项目结束", "csrf_token": token},
    )
    assert r.status_code == 302
    assert "社区公益项目" not in client.get("/public-welfare-bodies").get_data(as_text=True)
    types = db.session.scalars(
        sa.select(AuditEvent.type).where(AuditEvent.type.like("welfare_body.%"))
    ).all()
    assert types == ["welfare_body.added", "welfare_body.removed"]

    client.post("/logout", data={"csrf_token": token})
    token = login(client, market.regulator)
    page = client.get("/public-welfare-bodies").get_data(as_text=True)
    assert 'data-testid="welfare-add"' not in page
    client.post("/logout", data={"csrf_token": token})
    login(client, market.buyer)
    assert client.get("/public-welfare-bodies").status_code == 403
