"""Governance pages in the browser, in zh and en: the regulator red-lists the demo bank through
the 红黑榜 page; anyone then sees it; the grading page draws its chart; a listed dataset's
page links its registration certificate (issued when the demo listed it)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def test_red_list_grading_and_certificate_pages(page, live_server, shot):
    base = live_server["url"]
    accounts = {role: (email, pw, org) for role, email, pw, org in live_server["accounts"]}
    reg_email, reg_password, _ = accounts["regulator"]
    _, _, bank = accounts["buyer"]

    sign_in(page, base, reg_email, reg_password, lang="en")
    page.goto(f"{base}/lists")
    assert page.get_by_role("heading", name="Red and black lists").is_visible()
    form = page.get_by_test_id("list-add-form")
    form.locator("select[name=list_name]").select_option("red")
    form.locator("select[name=organization_id]").select_option(label=next(
        o for o in form.locator("select[name=organization_id] option").all_inner_texts()
        if o.startswith(bank)
    ))
    form.locator("textarea[name=reason]").fill("Reliable data use, audited 2026")
    page.get_by_test_id("list-add").click()
    page.wait_for_url(f"{base}/lists")
    assert "Reliable data use, audited 2026" in page.get_by_test_id("list-red").inner_text()
    shot(page, "governance-lists-en")

    page.goto(f"{base}/governance/grading")
    assert page.get_by_test_id("chart-grading").is_visible()
    assert page.get_by_test_id("certificates").is_visible()
    shot(page, "governance-grading-en")

    anonymous = page.context.browser.new_context(locale="zh-CN")
    try:
        anon = anonymous.new_page()
        anon.goto(f"{base}/lists?lang=zh")
        assert anon.get_by_role("heading", name="红黑榜").is_visible()
        assert bank in anon.get_by_test_id("list-red").inner_text()
        shot(anon, "governance-lists-zh")

        anon.goto(f"{base}/catalog")
        anon.get_by_test_id("dataset-card").first.locator("h2 a").click()
        link = anon.get_by_test_id("certificate-pdf")
        assert link.is_visible()
        href = link.get_attribute("href")
        with urllib.request.urlopen(base + href, timeout=30) as resp:
            assert resp.headers["Content-Type"] == "application/pdf"
            assert resp.read(5) == b"%PDF-"
    finally:
        anonymous.close()
