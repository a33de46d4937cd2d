"""The site's shell in a browser (#15): the language a user chooses is saved on the user; the
operator's links are grouped in menus that work by keyboard and at tablet width; the API
reference sits inside the site header with a way back; a favicon; an empty sandbox answer says
why; and each role's main pages are photographed at 1366 px and 768 px without sideways
scrolling at 768 px."""

from __future__ import annotations

import pytest

from tests.browser.flows import nav_to, sign_in

pytestmark = pytest.mark.browser

WIDTHS = (1366, 768)
#: Per role, the pages photographed at both widths (every header link is checked for overflow).
SHOTS = {
    "operator": ["/dashboard", "/datasets/review-queue", "/licenses", "/pricing/parameters"],
    "regulator": ["/dashboard", "/audit", "/insights", "/licenses"],
    "department": ["/dashboard", "/datasets/mine", "/datasets/upload", "/revenue"],
    "buyer": ["/dashboard", "/catalog", "/licenses", "/sandbox", "/quotes"],
    "subject": ["/dashboard", "/consents", "/consents/access-log"],
}


def _account(live_server, role: str) -> tuple[str, str]:
    return next((e, p) for kind, e, p, _ in live_server["accounts"] if kind == role)


def _context(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


# ------------------------------------------------------------------------------ language


def test_the_chosen_language_follows_the_user(live_server, browser, shot):
    base = live_server["url"]
    email, password = _account(live_server, "subject")
    context, page = _context(browser, 1366)
    try:
        sign_in(page, base, email, password)
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        page.get_by_role("button", name="English").click()
        page.wait_for_url(f"{base}/dashboard")
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.get_by_role("button", name="Sign out").is_visible()
        shot(page, "i18n-language-en-dashboard")
    finally:
        context.close()
    # Another browser (no cookie, a Chinese browser): the saved choice holds after signing in.
    context, page = _context(browser, 1366)
    try:
        sign_in(page, base, email, password)
        assert page.locator("html").get_attribute("lang") == "en"
        page.get_by_role("button", name="中文").click()  # back to Chinese, saved again
        page.wait_for_url(f"{base}/dashboard")
        assert page.get_by_role("button", name="退出登录").is_visible()
    finally:
        context.close()


# ------------------------------------------------------------------------------- menus


@pytest.mark.parametrize("width", WIDTHS)
def test_operator_menus_work_by_keyboard(live_server, browser, shot, width):
    base = live_server["url"]
    context, page = _context(browser, width)
    try:
        sign_in(page, base, *_account(live_server, "operator"))
        nav = page.locator("nav.mainnav")
        menus = nav.locator("details.navmenu > summary")
        assert [t.strip() for t in menus.all_inner_texts()] == ["审核", "交易", "定价", "监管", "机构"]
        # The header holds one row of items at 1366 px (the links no longer wrap).
        if width == 1366:
            box = nav.bounding_box()
            assert box is not None and box["height"] < 48, box
        link = nav.get_by_role("link", name="发布审核", exact=True)
        assert not link.is_visible()
        summary = page.get_by_test_id("navmenu-review").locator("summary")
        summary.focus()
        page.keyboard.press("Enter")
        assert link.is_visible()
        panel = page.get_by_test_id("navmenu-review").locator(".navmenu-panel").bounding_box()
        assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= width
        shot(page, f"i18n-operator-menu-open-{width}")
        page.keyboard.press("Escape")
        assert not link.is_visible()
        page.keyboard.press("Enter")  # focus went back to the menu's name
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/datasets/review-queue")
        assert _overflow(page) <= width + 1
        nav_to(page, "收入上限")  # a link in another menu, by name
        page.wait_for_url(f"{base}/pricing/revenue-caps")
    finally:
        context.close()


# ---------------------------------------------------------------------- API page, favicon


def test_api_reference_has_the_site_header_and_a_way_back(live_server, page):
    base = live_server["url"]
    page.goto(f"{base}/api/v1/docs")
    assert page.locator("header.topbar .brand").is_visible()
    page.locator("#swagger-ui .info").wait_for(state="visible")
    page.get_by_test_id("api-docs-back").click()
    page.wait_for_url(f"{base}/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    for path in (icon, "/favicon.ico"):
        r = page.request.get(base + path)
        assert r.status == 200 and r.headers["content-type"].startswith("image/"), path


# ----------------------------------------------------------------- empty sandbox answers


@pytest.fixture(scope="module")
def sandbox_license(live_server):
    import sqlalchemy as sa

    from market.accounts.models import User
    from market.extensions import db
    from sandbox import app_engine
    from tests.sandbox_app import data

    app = live_server["app"]
    email, _ = _account(live_server, "buyer")
    with app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == email))
        loans = data.dataset(
            db.session, app.config["MARKET_DATA_DIR"], "loans", slug="i18n_loans",
            eps_per_query="4", delta="0.0001",
        )
        firms = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "firms", slug="i18n_firms")
        # Two licenses: a license with a DP table answers every query under DP rules.
        dp = data.license_for(db.session, buyer.organization_id, [(loans, None)])
        open_ = data.license_for(db.session, buyer.organization_id, [(firms, None)])
        db.session.commit()
        ids = {"dp": dp.id, "open": open_.id}
        db.session.remove()
    yield ids
    app_engine.close_engine(app)


@pytest.mark.parametrize("lang, dp_words, open_words", [
    ("zh", "平台不会说明属于哪一种情况", "没有符合查询的行"),
    ("en", "the platform does not say which of the two happened", "No row matches the query"),
])
def test_an_empty_answer_says_why(live_server, sandbox_license, browser, shot, lang, dp_words,
                                  open_words):
    from playwright.sync_api import expect

    base = live_server["url"]
    context, page = _context(browser, 1366)
    try:
        sign_in(page, base, *_account(live_server, "buyer"))
        table = page.get_by_test_id("result-table")
        for kind, sql, words in (
            ("dp", "SELECT district, COUNT(*) AS n FROM i18n_loans WHERE district = '无此区' "
             "GROUP BY district", dp_words),
            ("open", "SELECT district, capital FROM i18n_firms WHERE capital < 0", open_words),
        ):
            page.goto(f"{base}/sandbox/{sandbox_license[kind]}?lang={lang}")
            page.get_by_test_id("sql-editor").fill(sql)
            page.get_by_test_id("run-query").click()
            # The previous answer's cell may still be there: wait for this answer's words.
            expect(table.locator("tbody td.empty")).to_contain_text(words, timeout=30_000)
        shot(page, f"i18n-sandbox-empty-{lang}")
    finally:
        context.close()


# ------------------------------------------------------------ screenshots, 768 px overflow


def test_each_roles_pages_at_1366_and_768(live_server, browser, shot):
    """Every header link of every role fits 768 px; the main pages are photographed at both
    widths (test-output/screenshots/role-<role>-<page>-<width>.png)."""
    from flask import url_for

    from market.web.registry import links_for

    base = live_server["url"]
    app = live_server["app"]
    overflowing = []
    for role, main_pages in SHOTS.items():
        with app.test_request_context("/"):
            walked = ["/dashboard"] + [url_for(link.endpoint) for link in links_for(role)]
        for width in WIDTHS:
            context, page = _context(browser, width)
            try:
                sign_in(page, base, *_account(live_server, role))
                for path in dict.fromkeys(walked + main_pages):
                    response = page.goto(base + path)
                    assert response is not None and response.status == 200, (role, path)
                    if width == 768 and _overflow(page) > width + 1:
                        overflowing.append(f"{role} {path}: {_overflow(page)}px")
                    if path in main_pages:
                        name = path.strip("/").replace("/", "-") or "home"
                        shot(page, f"role-{role}-{name}-{width}")
            finally:
                context.close()
    assert not overflowing, overflowing
