"""A department declares differential privacy and ranges on the upload page: a wrong value is
refused next to its field; the saved settings and ranges show on the dataset page, where the
department can change them."""

from __future__ import annotations

import re

import pytest

from tests.browser.flows import sign_in, sign_out
from tests.browser.test_publish_flow import account
from tests.catalog.conftest import registry_csv

pytestmark = pytest.mark.browser

TITLE = "企业注册资本（隐私设置浏览器测试）"
CAPITAL = "注册资本(万元)"


def test_a_department_sets_privacy_and_ranges_on_the_upload_page(live_server, page, shot,
                                                                 tmp_path):
    base = live_server["url"]
    csv = tmp_path / "capital.csv"
    csv.write_bytes(registry_csv(rows=40))
    sign_in(page, base, *account(live_server, "department"))
    page.goto(f"{base}/datasets/upload")
    form = page.locator("[data-testid=upload-form]")
    form.locator("input[name=title]").fill(TITLE)
    form.locator("select[name=category]").select_option("enterprise_registry")
    form.locator("select[name=open_grade]").select_option("conditional")
    form.locator("select[name=update_frequency]").select_option("monthly")
    form.locator("input[name=cost_collection]").fill("1000")
    form.locator("input[name=cost_processing]").fill("1000")
    form.locator("input[name=cost_storage_monthly]").fill("10")
    privacy = page.locator("[data-testid=privacy-fieldset]")
    privacy.locator("input[name=dp_epsilon_budget]").fill("3")
    privacy.locator("input[name=dp_epsilon_per_query]").fill("20")  # above the maximum
    privacy.locator("textarea[name=dp_ranges]").fill(f"{CAPITAL}: 0, 1000")
    form.locator("input[name=file]").set_input_files(str(csv))
    page.click("[data-testid=upload-submit]")
    error = page.locator('[data-errors-for="dp_epsilon_per_query"] .field-error')
    error.wait_for()
    assert page.url == f"{base}/datasets/upload"
    shot(page, "privacy-01-upload-field-error")

    privacy.locator("input[name=dp_epsilon_per_query]").fill("0.25")
    form.locator("input[name=file]").set_input_files(str(csv))
    page.click("[data-testid=upload-submit]")
    page.wait_for_url(re.compile(rf"{re.escape(base)}/datasets/\d+$"), timeout=60_000)
    section = page.locator("[data-testid=privacy-settings]")
    assert section.locator("[data-testid=privacy-epsilon-budget]").inner_text() == "3.0000"
    assert section.locator("[data-testid=privacy-epsilon-per-query]").inner_text() == "0.2500"
    ranges = section.locator("[data-testid=privacy-ranges]")
    assert "1000" in ranges.locator(f'tr[data-range="{CAPITAL}"]').inner_text()
    shot(page, "privacy-02-dataset-page")

    # The department changes a value on the dataset page.
    section.locator("input[name=dp_epsilon_budget]").fill("2.5")
    section.locator("[data-testid=privacy-save]").click()
    page.wait_for_url(re.compile(r"#privacy$"))
    assert page.locator("[data-testid=privacy-epsilon-budget]").inner_text() == "2.5000"
    sign_out(page)
