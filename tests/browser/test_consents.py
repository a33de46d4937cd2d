"""An enterprise grants a bank's consent request in its console; the bank runs the lookup and
sees the enterprise's profile: the chart of monthly tax and headcount, and a table per
licensed dataset."""

from __future__ import annotations

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser

SUBJECT_EMAIL = "ct-subject@consents.example.cn"


@pytest.fixture(scope="module")
def scenario(live_server):
    """The demo bank's license over three small tables, and a requested consent from an
    enterprise (a new subject account) that the tables are about."""
    import sqlalchemy as sa

    from market.accounts.models import User
    from market.extensions import db
    from market.keys import pseudonym_key
    from tests.consents import data
    from tests.consents.conftest import password_hash

    app = live_server["app"]
    email = next(e for role, e, _, _ in live_server["accounts"] if role == "buyer")
    with app.app_context():
        bank = db.session.scalar(sa.select(User).where(User.email == email))
        subject_org = data.org(db.session, "subject", code=data.CODES[0], name=data.NAMES[0])
        db.session.add(User(email=SUBJECT_EMAIL, password_hash=password_hash(),
                            organization=subject_org))
        tables = [
            data.dataset(db.session, app.config["MARKET_DATA_DIR"], name, pseudonym_key())
            for name in ("tax", "hrss", "registry")
        ]
        lic = data.license_for(
            db.session, bank.organization_id,
            [(t, data.LICENSED[n]) for t, n in zip(tables, ("tax", "hrss", "registry"),
                                                   strict=True)],
            quota=9,
        )
        consent = data.consent(db.session, lic, data.CODES[0], status="requested",
                               subject=subject_org)
        db.session.commit()
        ids = {"license": lic.id, "consent": consent.id, "code": data.CODES[0]}
        db.session.remove()
    return ids


def test_subject_grants_and_bank_sees_the_profile(live_server, scenario, page, shot):
    from tests.conftest import PASSWORD

    base = live_server["url"]
    cid = scenario["consent"]

    sign_in(page, base, SUBJECT_EMAIL, PASSWORD, lang="en")
    page.locator('[data-panel="consent_requests"]').wait_for()
    page.goto(f"{base}/consents?lang=en")
    page.get_by_test_id(f"review-{cid}").click()
    page.wait_for_url(f"{base}/consents/{cid}")
    page.get_by_test_id("consent-scope").wait_for()  # what the bank will read, before granting
    page.get_by_test_id("grant").click()
    page.wait_for_url(f"{base}/consents/{cid}")
    page.goto(f"{base}/consents?lang=en")
    row = page.get_by_test_id(f"consent-row-{cid}")
    assert row.locator("[data-status]").get_attribute("data-status") == "granted"
    assert page.get_by_test_id(f"revoke-{cid}").is_visible()
    shot(page, "consents-subject-granted")
    page.click("button:has-text('Sign out'), button:has-text('退出')")

    bank_email, bank_password = next(
        (e, p) for role, e, p, _ in live_server["accounts"] if role == "buyer"
    )
    sign_in(page, base, bank_email, bank_password, lang="en")
    page.goto(f"{base}/consents?lang=en")
    page.get_by_test_id(f"lookup-{cid}").click()
    page.wait_for_url(f"{base}/lookups?*")
    assert page.locator("#subject_credit_code").input_value() == scenario["code"]
    page.locator("#license_id").select_option(str(scenario["license"]))
    page.get_by_test_id("run-lookup").click()
    page.get_by_test_id("profile").wait_for()
    assert page.get_by_test_id("quota-left").inner_text() == "8"
    canvas = page.get_by_test_id("profile-chart")
    assert canvas.is_visible()
    page.wait_for_selector("#profile-chart[data-rendered='1']")
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    assert page.get_by_test_id("profile-table-ct_tax").locator("tbody tr").count() == 3
    assert page.get_by_test_id("profile-table-ct_hrss").locator("tbody tr").count() == 3
    assert "上海甲乙科技有限公司" in page.get_by_test_id("profile-table-ct_registry").inner_text()
    shot(page, "consents-bank-profile")
