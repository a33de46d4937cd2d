"""Steps that many browser flows share."""

from __future__ import annotations


def sign_in(page, base: str, email: str, password: str, *, lang: str | None = None,
            landed: bool = True) -> None:
    """Sign in through the login form; with ``landed``, wait for the dashboard."""
    page.goto(f"{base}/login" + (f"?lang={lang}" if lang else ""))
    # The login form's own button: a test that clears the cookies right after a page load
    # can have them set again by a late response of that page (its favicon), and then the
    # login page shows the header of a signed-in user, whose sign-out button comes first.
    form = page.get_by_test_id("login-form")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    if landed:
        page.wait_for_url(f"{base}/dashboard")


def sign_out(page) -> None:
    page.get_by_role("button", name="退出登录").click()


def nav_to(page, name: str) -> None:
    """Click the header link ``name``, opening the menu that holds it first (the operator's
    and regulator's links are grouped in <details> menus: 审核, 交易, 定价, 监管, 机构)."""
    nav = page.locator("nav.mainnav")
    # ``has`` is matched inside each menu, so it is built from the page, not from ``nav``.
    inside = page.get_by_role("link", name=name, exact=True, include_hidden=True)
    link = nav.get_by_role("link", name=name, exact=True, include_hidden=True).first
    if not link.is_visible():
        nav.locator("details.navmenu", has=inside).locator("summary").click()
    link.click()
