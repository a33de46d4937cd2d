"""A buyer prices a listed dataset with the calculator and sees the total and the chart."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.browser


def _listed_dataset(app) -> int:
    import sqlalchemy as sa

    from market.accounts.models import Organization
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db

    with app.app_context():
        department = db.session.scalars(
            sa.select(Organization)
            .where(Organization.kind == "department")
            .order_by(Organization.id)
        ).first()
        dataset = Dataset(
            slug="d_browser_quote",
            department_id=department.id,
            title="企业登记信息（浏览器测试）",
            description="",
            category="market_supervision",
            open_grade="open",
            status="listed",
            entity_key="统一社会信用代码",
            cost_collection_fen=12_000_000,
            cost_processing_fen=3_000_000,
            cost_storage_monthly_fen=50_000,
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id, version=1, status="listed", filename="data.csv", quality_score=88
        )
        db.session.add(version)
        db.session.flush()
        for i, (name, role, weight) in enumerate(
            [
                ("enterprise_pseudonym", "entity_key", "1"),
                ("industry", "dimension", "2"),
                ("registered_capital", "measure", "3"),
            ]
        ):
            db.session.add(
                DatasetColumn(
                    version_id=version.id,
                    position=i,
                    name=name,
                    type="string",
                    role=role,
                    weight=Decimal(weight),
                    treatment="none",
                )
            )
        dataset.current_version_id = version.id
        db.session.commit()
        dataset_id = dataset.id
        db.session.remove()
    return dataset_id


def test_buyer_gets_a_quote_with_the_calculator(live_server, page, shot):
    base = live_server["url"]
    dataset_id = _listed_dataset(live_server["app"])
    email, password = next((e, p) for role, e, p, _ in live_server["accounts"] if role == "buyer")
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")

    page.goto(f"{base}/quotes/new?dataset_id={dataset_id}")
    page.uncheck("input[name=columns][value=registered_capital]")
    page.fill("input[name=duration_months]", "24")
    page.click(".quote-form button[type=submit]")
    total = page.get_by_test_id("quote-total")
    total.wait_for()
    shown = total.inner_text()
    assert shown.startswith("¥") and shown != "¥0.00"
    assert page.get_by_test_id("quote-chart").is_visible()
    # Chart.js drew on the canvas (it sizes it to its box).
    assert page.eval_on_selector(
        "[data-testid=quote-chart]", "c => c.width > 0 && !!Chart.getChart(c)"
    )
    # Model revision 2: base, quality, category, purpose and the scope factor (at least).
    assert page.locator("tbody[data-field=factors] tr").count() >= 5
    shot(page, "quotes-calculator")

    page.click("a[data-field=link]")
    page.wait_for_url(f"{base}/quotes/*")
    assert page.get_by_test_id("quote-total").inner_text() == shown
    assert page.get_by_test_id("quote-signature").inner_text()
    shot(page, "quotes-detail")


def test_operator_pricing_pages_render(live_server, page, shot):
    base = live_server["url"]
    email, password = next(
        (e, p) for role, e, p, _ in live_server["accounts"] if role == "operator"
    )
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")
    page.click("[data-panel=pricing] a[href='/pricing/parameters']")
    page.wait_for_url(f"{base}/pricing/parameters")
    page.fill("input[name=reasonable_return]", "1.5")
    page.click(".parameters-form button[type=submit]")
    assert page.locator("p.field-error[data-field=reasonable_return]").is_visible()
    shot(page, "quotes-parameters-error")
    page.goto(f"{base}/pricing/revenue-caps")
    assert page.get_by_role("heading", level=1).inner_text().startswith("收入上限")
