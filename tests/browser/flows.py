"""Steps that many browser flows share."""

from __future__ import annotations


def sign_in(page, base: str, email: str, password: str, *, lang: str | None = None,
            landed: bool = True) -> None:
    """Sign in through the login form; with ``landed``, wait for the dashboard."""
    page.goto(f"{base}/login" + (f"?lang={lang}" if lang else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    if landed:
        page.wait_for_url(f"{base}/dashboard")


def sign_out(page) -> None:
    page.get_by_role("button", name="退出登录").click()
