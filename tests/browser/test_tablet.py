"""Pages work at tablet width: no horizontal scrolling of the page itself (wide tables scroll
inside their own box)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PAGES = {
    "buyer@demo.market": ("demo-buyer-2026", ["/dashboard", "/catalog", "/licenses", "/sandbox", "/quotes"]),
    "operator@demo.market": ("demo-operator-2026", ["/dashboard", "/datasets/review-queue", "/pricing/parameters", "/admin/admissions"]),
    "regulator@demo.market": ("demo-regulator-2026", ["/audit", "/insights"]),
    "tax@demo.market": ("demo-department-2026", ["/datasets/mine", "/datasets/upload", "/revenue"]),
}


def test_key_pages_fit_a_tablet(live_server, browser, shot):
    base = live_server["url"]
    overflowing = []
    for email, (password, paths) in PAGES.items():
        context = browser.new_context(viewport={"width": 768, "height": 1024}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard")
        for path in paths:
            page.goto(base + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            if width > 768 + 1:
                overflowing.append(f"{email} {path}: {width}px")
                shot(page, "tablet-overflow" + path.replace("/", "-"))
        context.close()
    assert not overflowing, overflowing
