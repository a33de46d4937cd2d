"""Each seeded role can sign in through the real login page, in Chinese and English."""

from __future__ import annotations

import pytest

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def test_every_demo_role_can_sign_in(live_server, page, shot):
    base = live_server["url"]
    for role, email, password, org in live_server["accounts"]:
        sign_in(page, base, email, password)
        assert org in page.get_by_test_id("dashboard-title").inner_text()
        shot(page, f"foundation-dashboard-{role}")
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url(f"{base}/")


def test_wrong_password_is_shown_next_to_the_form(live_server, page):
    base = live_server["url"]
    sign_in(page, base, "operator@demo.market", "wrong-password", landed=False)
    assert "邮箱或密码错误" in page.get_by_test_id("login-error").inner_text()


def test_language_switch_to_english(live_server, page):
    base = live_server["url"]
    page.goto(f"{base}/login")
    page.get_by_role("button", name="English").click()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.goto(f"{base}/login")  # the choice sticks
    assert page.get_by_role("heading", name="Sign in").is_visible()
