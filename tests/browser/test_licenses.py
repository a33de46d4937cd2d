"""A buyer applies for a license from a quote, pays by invoice, the operator settles the
transfer in the browser, and the buyer sees the license active."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.browser.flows import sign_in, sign_out

pytestmark = pytest.mark.browser


def _seed_quote(app, buyer_email: str) -> tuple[int, int]:
    """A listed dataset and a valid quote for the buyer, made directly in the database."""
    import sqlalchemy as sa

    from market.accounts.models import Organization, User
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db
    from market.quotes.models import Quote

    with app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == buyer_email))
        # A department of its own, so that other demo revenue never mixes into its statement.
        from tests.conftest import valid_uscc

        department = Organization(
            name="浏览器测试数据部门", kind="department", credit_code=valid_uscc(880_001), status="active"
        )
        db.session.add(department)
        db.session.flush()
        dataset = Dataset(
            slug="browser_licenses_tax_credit",
            department_id=department.id,
            title="企业纳税信用等级（浏览器测试）",
            description="",
            category="tax",
            open_grade="open",
            status="listed",
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id, version=1, status="listed", filename="tax.csv"
        )
        version.columns = [
            DatasetColumn(
                position=0,
                name="enterprise_key",
                type="string",
                role="entity_key",
                treatment="pseudonymized",
            ),
            DatasetColumn(position=1, name="tax_grade", type="string", role="dimension"),
        ]
        db.session.add(version)
        db.session.flush()
        dataset.current_version_id = version.id
        quote = Quote(
            buyer_org_id=buyer.organization_id,
            params_version=1,
            model_version="browser-test",
            purpose="internal_risk_control",
            duration_months=12,
            query_quota=500,
            total_fen=1_234_500,
            currency="CNY",
            items=[
                {
                    "dataset_id": dataset.id,
                    "dataset_version": 1,
                    "columns": ["tax_grade"],
                    "amount": 1_234_500,
                    "factors": {},
                }
            ],
            document={},
            signature="-",
            key_id="-",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
        )
        db.session.add(quote)
        db.session.commit()
        quote_id, department_id = quote.id, department.id
        db.session.remove()
    return quote_id, department_id


def test_apply_pay_by_invoice_settle_and_see_it_active(live_server, page, shot):
    base = live_server["url"]
    accounts = {role: (email, password) for role, email, password, _org in live_server["accounts"]}
    buyer_email, buyer_password = next(
        (e, p) for r, e, p, _o in live_server["accounts"] if r == "buyer"
    )
    quote_id, department_id = _seed_quote(live_server["app"], buyer_email)

    sign_in(page, base, buyer_email, buyer_password)
    page.goto(f"{base}/licenses")
    page.get_by_test_id(f"apply-quote-{quote_id}").click()
    page.fill("textarea[name=purpose_statement]", "小微企业贷款贷前风险评估")
    shot(page, "licenses-apply")
    page.get_by_test_id("submit-application").click()
    assert page.get_by_test_id("license-status").get_attribute("data-status") == "awaiting_payment"
    license_url = page.url

    page.get_by_test_id("pay-invoice").click()
    invoice = page.get_by_test_id("invoice-number").inner_text()
    assert invoice.startswith("INV-")
    assert page.get_by_test_id("invoice-amount").inner_text() == "¥12,345.00"
    shot(page, "licenses-invoice")
    sign_out(page)

    operator_email, operator_password = accounts["operator"]
    sign_in(page, base, operator_email, operator_password)
    page.goto(f"{base}/payments/settlements")
    row = page.get_by_test_id(f"invoice-{invoice}")
    row.locator("input[name=bank_reference]").fill("ICBC-20250301-000042")
    shot(page, "licenses-settlements")
    row.get_by_role("button").click()
    page.wait_for_url(f"{base}/payments/settlements")
    assert page.get_by_test_id(f"invoice-{invoice}").count() == 0

    # The providing department's share (90% after the operator's 10% fee), with its chart.
    page.goto(f"{base}/revenue?department_id={department_id}")
    assert page.get_by_test_id("statement-revenue").inner_text() == "¥11,110.50"
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('revenue-chart'))"
    )
    shot(page, "licenses-revenue")
    sign_out(page)

    sign_in(page, base, buyer_email, buyer_password)
    page.goto(license_url)
    assert page.get_by_test_id("license-status").get_attribute("data-status") == "active"
    shot(page, "licenses-active")
    page.get_by_test_id("license-document").click()
    assert "Public Data Usage License" in page.get_by_test_id("license-doc").inner_text()
    assert page.get_by_test_id("doc-signature").inner_text().strip()
    shot(page, "licenses-document")
