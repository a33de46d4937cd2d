"""The regulator's flow in the browser: verify the chain, read the charts, suspend a license;
the buyer's next sandbox query is then refused (issue 7, step 6).

The live server is seeded with the full demo, which publishes the departments' datasets and
gives the demo bank an active, paid license.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def _api(base: str, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _active_demo_license(app) -> tuple[int, str]:
    from licenses.models import License, LicenseItem
    from market.accounts.models import Organization, User
    from market.datasets.models import Dataset
    from market.extensions import db

    with app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == "buyer@demo.market"))
        lic = db.session.scalar(
            sa.select(License).where(License.buyer_org_id == buyer.organization_id, License.status == "active")
        )
        assert lic is not None, "the demo seeds an active license for the demo bank"
        slug = db.session.scalar(
            sa.select(Dataset.slug).join(LicenseItem, LicenseItem.dataset_id == Dataset.id)
            .where(LicenseItem.license_id == lic.id).order_by(Dataset.id)
        )
        assert db.session.get(Organization, buyer.organization_id).kind == "buyer"
        license_id = lic.id
        db.session.remove()
    return license_id, slug


def test_regulator_verifies_suspends_and_the_next_query_is_refused(live_server, page, shot):
    base = live_server["url"]
    license_id, slug = _active_demo_license(live_server["app"])
    status, tok = _api(base, "/api/v1/auth/token", {"email": "buyer@demo.market", "password": "demo-buyer-2026"})
    assert status == 201
    token = tok["token"]
    query = {"sql": f"SELECT COUNT(*) AS n FROM {slug}"}
    before, body = _api(base, f"/api/v1/sandbox/{license_id}/queries", query, token)
    assert before in (200, 422), body  # answered, or refused by the policy; never by the license

    sign_in(page, base, "regulator@demo.market", "demo-regulator-2026")
    page.goto(f"{base}/audit")
    page.get_by_test_id("verify-button").click()
    assert "审计链完整" in page.get_by_test_id("verify-result").inner_text()
    assert len(page.get_by_test_id("head-hash").inner_text().strip()) == 64
    shot(page, "regulator-verify")

    page.goto(f"{base}/insights")
    page.get_by_test_id("chart-transactions").wait_for()
    shot(page, "regulator-charts")

    page.goto(f"{base}/licenses/{license_id}")
    page.fill("#suspend-reason", "监管抽查：暂停使用")
    page.get_by_test_id("suspend").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("license-status").get_attribute("data-status") == "suspended"
    shot(page, "regulator-suspended")

    after, body = _api(base, f"/api/v1/sandbox/{license_id}/queries", query, token)
    assert after == 403, body
    assert body["code"] == 403 and body["errors"]["rule"] == "license_not_active"


def test_department_sees_its_revenue(live_server, page, shot):
    """The demo bank's paid license includes the tax bureau's dataset: its statement shows it."""
    base = live_server["url"]
    sign_in(page, base, "tax@demo.market", "demo-department-2026")
    page.goto(f"{base}/revenue")
    revenue = page.get_by_test_id("statement-revenue").inner_text()
    assert revenue.startswith("¥") and revenue != "¥0.00", revenue
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.getElementById('revenue-chart'))"
    )
    shot(page, "department-revenue")
