"""Publication end to end in a browser: a department uploads a CSV and watches it being
processed, sees the detected personal data while it awaits review; the operator approves it
from the review queue; a buyer finds it in the catalogue, with the synthetic preview, the
quality chart and the price calculator."""

from __future__ import annotations

import re

import pytest

from tests.browser.flows import nav_to, sign_in, sign_out
from tests.catalog.conftest import registry_csv

pytestmark = pytest.mark.browser

TITLE = "企业登记注册信息（浏览器发布测试）"


def account(live_server, role: str) -> tuple[str, str]:
    for kind, email, password, _org in live_server["accounts"]:
        if kind == role:
            return email, password
    raise AssertionError(f"no demo account for {role}")


def test_upload_review_and_find(live_server, page, shot, tmp_path):
    base = live_server["url"]
    csv = tmp_path / "企业登记.csv"
    csv.write_bytes(registry_csv(rows=60, encoding="gbk"))

    # -- the department uploads, and sees progress, then the pending dataset -------------------
    sign_in(page, base, *account(live_server, "department"))
    page.get_by_role("link", name="上传数据集").first.click()
    page.wait_for_url(f"{base}/datasets/upload")
    form = page.locator("[data-testid=upload-form]")
    form.locator("input[name=title]").fill(TITLE)
    form.locator("textarea[name=description]").fill("本市中小企业的登记注册信息（测试数据）。")
    form.locator("select[name=category]").select_option("enterprise_registry")
    form.locator("select[name=open_grade]").select_option("conditional")
    form.locator("select[name=update_frequency]").select_option("monthly")
    # A cost with three decimals is refused next to its field, without leaving the page.
    form.locator("input[name=cost_collection]").fill("600000.125")
    form.locator("input[name=cost_processing]").fill("180,000")
    form.locator("input[name=cost_storage_monthly]").fill("3500.50")
    form.locator("input[name=file]").set_input_files(str(csv))
    page.click("[data-testid=upload-submit]")
    error = page.locator('[data-errors-for="cost_collection"] .field-error')
    error.wait_for()
    assert page.url == f"{base}/datasets/upload"
    shot(page, "publish-01-upload-field-error")

    form.locator("input[name=cost_collection]").fill("600000.12")
    form.locator("input[name=file]").set_input_files(str(csv))  # the same file again
    # Choosing the file shows the detected personal data; the phone column is masked instead.
    choice = page.locator("[data-testid=treatment-choice]")
    phone = choice.locator('select[name="treatment:联系电话"]')
    phone.wait_for()
    assert "none" not in phone.locator("option").evaluate_all("os => os.map(o => o.value)")
    phone.select_option("masked")
    shot(page, "publish-01b-treatments-before-upload")
    page.click("[data-testid=upload-submit]")
    progress = page.locator("[data-testid=upload-progress]")
    progress.wait_for(state="visible")
    page.locator("[data-testid=upload-progress] [data-field=link]").wait_for(state="visible")
    assert page.locator("#upload-transfer").evaluate("el => el.value") == 100
    shot(page, "publish-02-upload-progress")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/datasets/\d+$"))
    dataset_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("[data-testid=dataset-title]").inner_text() == TITLE
    assert (
        page.locator("[data-testid=version-state]").get_attribute("data-status") == "pending_review"
    )
    pii = page.locator("[data-testid=pii-table]")
    assert pii.locator('[data-pii="credit_code"]').count() >= 1
    assert pii.locator('[data-pii="person_name"]').count() >= 1
    assert pii.locator('tr[data-column="联系电话"] select option[selected]').get_attribute(
        "value"
    ) == "masked"
    shot(page, "publish-03-pending-review-with-pii")
    sign_out(page)

    # -- the operator approves it from the review queue -----------------------------------------
    sign_in(page, base, *account(live_server, "operator"))
    assert page.locator('[data-panel="publication_queue"]').is_visible()
    nav_to(page, "发布审核")
    page.wait_for_url(f"{base}/datasets/review-queue")
    item = page.locator(f'[data-testid=queue-item][data-dataset-id="{dataset_id}"]')
    assert TITLE in item.inner_text()
    shot(page, "publish-04-review-queue")
    item.locator(f"[data-testid=approve-{dataset_id}]").click()
    page.wait_for_url(f"{base}/datasets/review-queue")
    assert page.locator(".flash.success").is_visible()
    assert page.locator(f'[data-testid=queue-item][data-dataset-id="{dataset_id}"]').count() == 0
    sign_out(page)

    # -- a buyer finds it and sees the synthetic preview and the calculator ---------------------
    sign_in(page, base, *account(live_server, "buyer"))
    page.get_by_role("link", name="数据目录").first.click()
    page.wait_for_url(f"{base}/catalog")
    page.fill("[data-testid=catalog-search]", "浏览器发布测试")
    page.get_by_role("button", name="搜索").click()
    card = page.locator(f'[data-testid=dataset-card][data-dataset-id="{dataset_id}"]')
    card.wait_for()
    assert page.locator("[data-testid=dataset-card]").count() == 1
    shot(page, "publish-05-catalogue-search")
    card.get_by_role("link", name=TITLE).click()
    page.wait_for_url(f"{base}/datasets/{dataset_id}")
    assert page.locator("[data-testid=synthetic-label]").is_visible()
    rows = page.locator("[data-testid=preview] tbody tr")
    assert rows.count() == 10
    first_key = rows.first.locator("td").first.inner_text()
    assert re.fullmatch(r"ent_[0-9a-f]{24}", first_key)
    assert page.locator("[data-testid=price-calculator] form.quote-form").is_visible()
    assert page.locator("[data-testid=apply-link]").is_visible()
    # Chart.js drew the quality radar (a blank canvas would have no size set by Chart.js).
    page.wait_for_function(
        "() => { const c = document.getElementById('quality-chart');"
        " return c && window.Chart && Chart.getChart(c) !== undefined; }"
    )
    shot(page, "publish-06-dataset-page-for-buyer")
