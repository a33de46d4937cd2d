"""Scenario and data-product pages in the browser, in en and zh: the regulator approves the
demo's pending 企业环境信用评价 scenario; the operator composes and publishes a sandbox product
for it; a bank applies for the 普惠金融 product and lands on its license; anyone reads the
approved scenarios."""

from __future__ import annotations

import re

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def _accounts(live_server) -> dict:
    accounts: dict = {}
    for role, email, password, org in live_server["accounts"]:
        accounts.setdefault(role, (email, password, org))  # the first buyer: 建设银行
    return accounts


def test_regulator_operator_and_bank_on_the_scenario_pages(browser, live_server, shot):
    base = live_server["url"]
    accounts = _accounts(live_server)

    # The regulator, in English, approves the scenario waiting in its queue.
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, base, *accounts["regulator"][:2], lang="en")
        page.goto(f"{base}/scenarios/?lang=en")
        assert page.get_by_role("heading", name="Scenarios").is_visible()
        row = page.get_by_test_id("scenario-enterprise-environmental-credit")
        assert "Awaiting the regulator" in row.inner_text()
        row.locator("a").first.click()
        form = page.get_by_test_id("scenario-decision")
        form.locator("select[name=decision]").select_option("approve")
        form.locator("textarea[name=comment]").fill("Purposes and datasets fit the pilot rules")
        page.get_by_test_id("scenario-decide").click()
        assert page.get_by_test_id("scenario-status").inner_text() == "Approved"
        shot(page, "scenario-approved-en")
    finally:
        context.close()

    # The operator, in Chinese, composes a sandbox product for that scenario and publishes it.
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, base, *accounts["operator"][:2], lang="zh")
        page.goto(f"{base}/products/new")
        assert page.get_by_role("heading", name="新建数据产品").is_visible()
        form = page.get_by_test_id("product-form")
        form.locator("input[name=code]").fill("env-credit-sandbox")
        form.locator("input[name=title]").fill("企业环境信用评价沙箱产品")
        form.locator("input[name=title_en]").fill("Environmental credit sandbox product")
        form.locator("textarea[name=description]").fill("环境处罚 + 企业登记，沙箱统计分析。")
        form.locator("select[name=access]").select_option("sandbox")
        form.locator("select[name=purpose]").select_option("research")
        for title in ("环境行政处罚信息", "企业登记注册信息"):
            form.locator("label", has_text=title).locator("input").check()
        page.get_by_test_id("product-save").click()
        page.wait_for_url(re.compile(r".*/products/\d+$"))
        page.get_by_test_id("product-publish").click()
        assert page.get_by_test_id("product-status").inner_text() == "已发布"
        assert "¥" in page.get_by_test_id("product-price").inner_text()
        assert "企业环境信用评价" in page.get_by_test_id("product-scenarios").inner_text()
        shot(page, "product-published-zh")
    finally:
        context.close()

    # The bank, in Chinese, applies for the 普惠金融 product and lands on its license.
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, base, *accounts["buyer"][:2], lang="zh")
        page.goto(f"{base}/products/")
        page.get_by_test_id("product-inclusive-finance-sme-credit-lookup").locator("a").click()
        assert "授权查询" in page.get_by_test_id("product-access").inner_text()
        form = page.get_by_test_id("product-apply-form")
        form.locator("textarea[name=purpose_statement]").fill("小微企业流动资金贷款授信审查")
        page.get_by_test_id("product-apply").click()
        page.wait_for_url(re.compile(r".*/licenses/\d+$"))
        shot(page, "product-applied-zh")
    finally:
        context.close()


def test_anyone_reads_the_approved_scenarios_in_both_languages(page, live_server, shot):
    base = live_server["url"]
    page.goto(f"{base}/scenarios/?lang=zh")
    assert page.get_by_role("heading", name="应用场景").is_visible()
    assert "普惠金融·小微企业信贷" in page.get_by_test_id("scenario-list").inner_text()
    shot(page, "scenarios-zh")
    page.goto(f"{base}/products/?lang=en")
    assert page.get_by_role("heading", name="Data products").is_visible()
    assert "Inclusive finance: SME credit data product" in page.get_by_test_id(
        "product-list").inner_text()
    shot(page, "products-en")
