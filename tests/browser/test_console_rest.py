"""Console gaps of issue 15, in the browser: a department's looser privacy settings wait for
the operator's approval on the dataset page; the operator exports the filtered audit log; a
withdrawn dataset's page tells its license holder so, in Chinese and in English.

The live server is seeded with the demo: the tax bureau's dataset is in the demo bank's
license. The withdrawal runs last (it changes the dataset for good).
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.browser.flows import sign_in
from tests.browser.test_consoles import DEPT, OPERATOR, _tax_datasets

pytestmark = pytest.mark.browser

BUYER = ("buyer@demo.market", "demo-buyer-2026")


@pytest.fixture(scope="module")
def tax_ds(live_server) -> int:
    """The tax bureau's dataset in the demo bank's license (read before it is withdrawn)."""
    return _tax_datasets(live_server["app"])[0]


def test_looser_privacy_waits_for_the_operator(live_server, page, shot, tax_ds):
    base = live_server["url"]
    ds = tax_ds
    sign_in(page, base, *DEPT)
    page.goto(f"{base}/datasets/{ds}#privacy")
    assert page.get_by_test_id("privacy-review-note").is_visible()
    rows = int(page.input_value("#dp_max_rows_per_entity"))
    budget = float(page.get_by_test_id("privacy-epsilon-budget").inner_text())
    per_query = float(page.get_by_test_id("privacy-epsilon-per-query").inner_text())
    lower = f"{max(per_query, budget - 1):.4f}"
    page.fill("#dp_max_rows_per_entity", str(rows + 8))  # looser: waits for review
    page.fill("#dp_epsilon_budget", lower)  # stricter: applies at once
    page.get_by_test_id("privacy-save").click()
    page.wait_for_url(re.compile(r".*#change-request$"))
    assert "运营方" in page.locator(".flash").first.inner_text()
    change = page.get_by_test_id("change-request")
    assert change.locator('[data-setting="max_rows_per_entity"]').last.inner_text() == str(rows + 8)
    assert page.get_by_test_id("privacy-epsilon-budget").inner_text() == lower
    assert page.input_value("#dp_max_rows_per_entity") == str(rows)  # still the value in force
    shot(page, "department-privacy-change-pending")

    page.context.clear_cookies()
    sign_in(page, base, *OPERATOR)
    page.goto(f"{base}/datasets/{ds}#change-request")
    page.get_by_test_id("approve-change").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("change-request").count() == 0
    assert page.input_value("#dp_max_rows_per_entity") == str(rows + 8)


def test_the_operator_exports_the_filtered_audit_log(live_server, page):
    base = live_server["url"]
    sign_in(page, base, *OPERATOR, lang="en")
    page.goto(f"{base}/audit?type=dataset")
    href = page.get_by_test_id("export-csv").get_attribute("href")
    assert "type=dataset" in href
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    with open(download.value.path(), encoding="utf-8-sig") as fh:
        rows = fh.read().strip().splitlines()
    assert rows[0].startswith("seq,at,type")
    assert len(rows) > 1 and all(",dataset." in r for r in rows[1:]), rows[:3]
    assert not rows[-1].startswith("#ERROR")
    # The export is in the trail.
    page.goto(f"{base}/audit?type=audit.exported")
    assert page.locator('li.audit-event[data-type="audit.exported"]').count() >= 1


@pytest.mark.parametrize(("lang", "notice", "held"), [
    ("zh", "撤回", "您在该数据集上的许可"),
    ("en", "Withdrawn on", "Your licenses on this dataset"),
])
def test_a_license_holder_reads_the_withdrawn_page(
    live_server, page, shot, tax_ds, lang, notice, held
):
    from market.accounts.actor import Actor
    from market.accounts.models import User
    from market.datasets import lifecycle
    from market.datasets.models import Dataset
    from market.extensions import db

    base = live_server["url"]
    app = live_server["app"]
    ds = tax_ds
    with app.app_context():
        dataset = db.session.get(Dataset, ds)
        if dataset.withdrawn_at is None:
            user = db.session.scalar(sa.select(User).where(User.email == DEPT[0]))
            lifecycle.withdraw(db.session, Actor.from_user(user), dataset, "统计口径调整")
            db.session.commit()
        db.session.remove()
    sign_in(page, base, *BUYER, lang=lang)
    r = page.goto(f"{base}/datasets/{ds}")
    assert r.status == 200
    banner = page.get_by_test_id("withdrawn-banner")
    assert notice in banner.inner_text()
    assert held in page.get_by_test_id("withdrawn-held").inner_text()
    assert page.get_by_test_id("apply").count() == 0
    shot(page, f"buyer-withdrawn-dataset-{lang}")
    # Somebody without a license still learns nothing.
    page.context.clear_cookies()
    assert page.goto(f"{base}/datasets/{ds}").status == 404
