"""Buyers and subjects in the browser: the notification bell and centre, the invoice PDF from
the license page, the quote's context and the live calculator, and the consent's scope and
revoke confirmation (zh, and en where the wording matters)."""

from __future__ import annotations

import re

import pytest

from tests.browser.flows import sign_in, sign_out
from tests.browser.test_consents import SUBJECT_EMAIL, scenario  # noqa: F401
from tests.browser.test_licenses import _seed_quote

pytestmark = pytest.mark.browser


def _account(live_server, role: str) -> tuple[str, str]:
    return next((e, p) for r, e, p, _o in live_server["accounts"] if r == role)


def _clear_notifications(page, base: str) -> None:
    page.goto(f"{base}/notifications")
    if page.get_by_test_id("mark-all-read").count():
        page.get_by_test_id("mark-all-read").click()
        page.wait_for_url(f"{base}/notifications")
    assert page.get_by_test_id("notify-count").count() == 0


def test_invoice_notification_and_pdf_from_the_license_page(live_server, page, shot, tmp_path):
    base = live_server["url"]
    buyer_email, buyer_password = _account(live_server, "buyer")
    quote_id, _department = _seed_quote(live_server["app"], buyer_email)

    sign_in(page, base, buyer_email, buyer_password)
    _clear_notifications(page, base)
    # The quote list names the dataset and applies with that quote.
    page.goto(f"{base}/quotes")
    assert "企业纳税信用等级（浏览器测试）" in page.get_by_test_id(f"quote-datasets-{quote_id}").inner_text()
    page.get_by_test_id(f"quote-apply-{quote_id}").click()
    assert "企业纳税信用等级（浏览器测试）" in page.get_by_test_id("apply-context").inner_text()
    assert page.get_by_test_id("back-to-quote").get_attribute("href") == f"/quotes/{quote_id}"
    page.fill("textarea[name=purpose_statement]", "小微企业贷款贷前风险评估")
    page.get_by_test_id("submit-application").click()
    assert page.get_by_test_id("license-status").get_attribute("data-status") == "awaiting_payment"
    license_url = page.url
    assert page.get_by_test_id("license-quote").locator("a").get_attribute("href") == (
        f"/quotes/{quote_id}"
    )

    page.get_by_test_id("pay-invoice").click()
    number = page.get_by_test_id("invoice-number").inner_text()
    # The bell counts the invoice; the centre says it in Chinese and links to the license.
    assert page.get_by_test_id("notify-count").inner_text() == "1"
    with page.expect_download() as info:
        page.get_by_test_id("invoice-download").click()
    download = info.value
    assert download.suggested_filename == f"{number}.pdf"
    saved = tmp_path / "invoice.pdf"
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    shot(page, "buyer-ux-license-invoice")

    page.get_by_test_id("notify-bell").click()
    page.wait_for_url(f"{base}/notifications")
    item = page.locator('[data-type="license.invoiced"]').first
    assert re.search(rf"已为许可 \d+ 开具发票 {number}，金额 ¥12,345.00。", item.inner_text())
    shot(page, "buyer-ux-notifications-zh")
    item.get_by_role("button", name="查看").click()
    page.wait_for_url(license_url)
    assert page.get_by_test_id("notify-count").count() == 0

    page.goto(f"{base}/notifications?lang=en")
    assert "Invoice " + number in page.locator('[data-type="license.invoiced"]').first.inner_text()
    sign_out_en(page)


def sign_out_en(page) -> None:
    page.get_by_role("button", name="Sign out").click()


def _listed_dataset_id(app) -> int:
    import sqlalchemy as sa

    from market.datasets.models import Dataset
    from market.extensions import db

    with app.app_context():
        ids = db.session.scalars(
            sa.select(Dataset.id).where(Dataset.status == "listed").order_by(Dataset.id)
        ).all()
        db.session.remove()
    return ids[0]


def test_the_calculator_updates_live_and_cards_show_from_price(live_server, page, shot):
    base = live_server["url"]
    dataset_id = _listed_dataset_id(live_server["app"])
    page.goto(f"{base}/catalog?lang=en")
    card = page.locator(f'[data-dataset-id="{dataset_id}"]')
    assert re.fullmatch(r"from ¥[\d,]+\.\d\d", card.get_by_test_id("from-price").inner_text())
    assert card.get_by_test_id("sample-size").inner_text().startswith("Sample size: about ")

    buyer_email, buyer_password = _account(live_server, "buyer")
    sign_in(page, base, buyer_email, buyer_password, lang="en")
    page.goto(f"{base}/datasets/{dataset_id}")
    live = page.get_by_test_id("quote-live-total")
    page.wait_for_function("() => /¥/.test(document.querySelector('[data-testid=quote-live-total]').textContent)")
    first = live.inner_text()
    page.fill(f"#q-duration-{dataset_id}", "48")
    page.wait_for_function(
        "(before) => { const t = document.querySelector('[data-testid=quote-live-total]').textContent;"
        " return /¥/.test(t) && t !== before; }",
        arg=first,
    )
    assert live.inner_text() != first
    # A bad value is explained next to its field, and no price is shown for it.
    page.fill(f"#q-duration-{dataset_id}", "0")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=quote-live-total]').textContent === '—'"
    )
    assert page.locator('[data-error="duration_months"]').is_visible()
    shot(page, "buyer-ux-live-calculator")
    sign_out_en(page)


def test_the_subject_reads_the_scope_then_confirms_the_revocation(live_server, scenario, page,  # noqa: F811
                                                                  shot):
    from tests.conftest import PASSWORD

    base = live_server["url"]
    cid = scenario["consent"]
    sign_in(page, base, SUBJECT_EMAIL, PASSWORD)
    page.goto(f"{base}/consents")
    page.get_by_test_id(f"review-{cid}").click()
    scope = page.get_by_test_id("consent-scope")
    text = scope.inner_text()
    assert "将读取的内容" in text and "仅与贵企业有关的记录" in text
    assert "所属期、参保人数" in text
    shot(page, "buyer-ux-consent-scope-zh")
    page.get_by_test_id("grant").click()
    page.wait_for_url(f"{base}/consents/{cid}")
    page.get_by_test_id("revoke").click()
    page.wait_for_url(f"{base}/consents/{cid}/revoke")
    assert f"撤回授权 {cid}？" in page.locator("h1").inner_text()
    page.get_by_test_id("cancel-revoke").click()
    page.wait_for_url(f"{base}/consents/{cid}")
    page.get_by_test_id("revoke").click()
    shot(page, "buyer-ux-consent-revoke-confirm")
    page.get_by_test_id("confirm-revoke").click()
    page.wait_for_url(f"{base}/consents")
    row = page.get_by_test_id(f"consent-row-{cid}")
    assert row.locator("[data-status]").get_attribute("data-status") == "revoked"
    sign_out(page)

    # The bank was told, in its notification centre.
    bank_email, bank_password = _account(live_server, "buyer")
    sign_in(page, base, bank_email, bank_password, lang="en")
    page.goto(f"{base}/notifications?unread=1")
    texts = page.get_by_test_id("notify-list").inner_text()
    assert f"Consent {cid} was granted." in texts and f"Consent {cid} was revoked." in texts
