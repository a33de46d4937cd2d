"""Agreements and regulator reports in the browser, in en and zh: a demo department proposes an
agreement (en), the operator countersigns it (zh), the regulator reads it and the monthly
report, and downloads the report's PDF (zh and en)."""

from __future__ import annotations

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def _account(live_server, role):
    return next((e, p, o) for r, e, p, o in live_server["accounts"] if r == role)


def test_agreement_propose_countersign_and_report(page, live_server, shot):
    base = live_server["url"]
    dept_email, dept_pw, dept_name = _account(live_server, "department")

    sign_in(page, base, dept_email, dept_pw, lang="en")
    page.goto(f"{base}/agreements")
    assert page.get_by_role("heading", name="Authorization agreements").is_visible()
    # The demo seeded a default agreement for this department: it is listed, active.
    assert page.get_by_test_id("agreements-list").locator("tbody tr").count() >= 1
    form = page.get_by_test_id("propose-form")
    form.locator("input[name=categories]").fill("browser_test_category")
    form.locator("input[name=revenue_share_bps]").fill("8800")
    page.get_by_test_id("propose").click()
    page.wait_for_url(f"{base}/agreements/*")
    status = page.get_by_test_id("agreement-status").inner_text()
    assert status == "Signed by the department: awaiting the operator"
    assert "88.00%" in page.get_by_test_id("agreement-share").inner_text()
    detail = page.url
    shot(page, "agreement-proposed-en")
    page.context.clear_cookies()

    op_email, op_pw, _ = _account(live_server, "operator")
    sign_in(page, base, op_email, op_pw, lang="zh")
    page.goto(detail)
    assert page.get_by_role("heading", name="授权运营协议").first.is_visible()
    assert page.get_by_test_id("agreement-status").inner_text() == "部门已签署：等待运营方会签"
    with page.expect_navigation(url=detail):  # the same URL: wait_for_url would not wait
        page.get_by_test_id("countersign").click()
    assert page.get_by_test_id("countersign").count() == 0
    assert "会签" in page.content()
    shot(page, "agreement-countersigned-zh")
    page.context.clear_cookies()

    reg_email, reg_pw, _ = _account(live_server, "regulator")
    sign_in(page, base, reg_email, reg_pw, lang="zh")
    page.goto(detail)
    assert dept_name in page.get_by_test_id("agreement-detail").inner_text()
    assert page.get_by_test_id("countersign").count() == 0
    page.goto(f"{base}/reports")
    assert page.get_by_role("heading", name="监管报送").is_visible()
    assert int(page.get_by_test_id("kpi-datasets").inner_text()) >= 1
    assert "变更" in page.get_by_test_id("report-governance").inner_text()
    shot(page, "report-zh")
    href = page.get_by_test_id("report-pdf").get_attribute("href")
    pdf = page.request.get(base + href)
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"

    page.goto(f"{base}/reports?lang=en")
    assert page.get_by_role("heading", name="Regulator report").is_visible()
    assert page.get_by_test_id("report-kpis").get_by_text("Buyers served").is_visible()
    shot(page, "report-en")
