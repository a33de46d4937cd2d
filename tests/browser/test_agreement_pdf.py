"""The agreement page's "Download as PDF" link downloads the agreement as a PDF (zh and en)."""

from __future__ import annotations

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def _account(live_server, role):
    return next((e, p, o) for r, e, p, o in live_server["accounts"] if r == role)


@pytest.mark.parametrize(("lang", "label"), [("zh", "下载 PDF"), ("en", "Download as PDF")])
def test_the_agreement_page_downloads_its_pdf(page, live_server, shot, lang, label):
    base = live_server["url"]
    email, password, _ = _account(live_server, "department")
    sign_in(page, base, email, password, lang=lang)
    page.goto(f"{base}/agreements")
    # The demo's default agreement of this department.
    page.get_by_test_id("agreements-list").locator("tbody tr a").first.click()
    page.wait_for_url(f"{base}/agreements/*")
    link = page.get_by_test_id("download-agreement-pdf")
    assert link.inner_text().strip() == label
    shot(page, f"agreement-pdf-link-{lang}")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as fh:
        data = fh.read()
    assert data.startswith(b"%PDF-") and b"STSong-Light" in data
