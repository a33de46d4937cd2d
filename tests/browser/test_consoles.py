"""Consoles a regulator and a department use all day (issue 15): the readable audit trail, the
dataset's lifecycle (edit, review, withdraw, re-upload after a rejection), revenue per dataset
and the quality and k reports in words. Chinese first, English where wording matters.

The live server is seeded with the demo: the tax bureau's dataset is in the demo bank's paid
license, so the tax bureau has revenue.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.browser.flows import sign_in
from tests.datasets.conftest import csv_bytes, sample_rows

pytestmark = pytest.mark.browser

DEPT = ("tax@demo.market", "demo-department-2026")
REGULATOR = ("regulator@demo.market", "demo-regulator-2026")
OPERATOR = ("operator@demo.market", "demo-operator-2026")
SQL = "SELECT 所属区, COUNT(*) AS 企业数 FROM d1_tax GROUP BY 所属区"


def _tax_datasets(app) -> list[int]:
    """The tax bureau's listed datasets, the one in the demo license first."""
    from licenses.models import LicenseItem
    from market.accounts.models import User
    from market.datasets.models import Dataset
    from market.extensions import db

    with app.app_context():
        org_id = db.session.scalar(sa.select(User.organization_id).where(User.email == DEPT[0]))
        ids = list(db.session.scalars(
            sa.select(Dataset.id).where(Dataset.department_id == org_id, Dataset.status == "listed")
            .order_by(Dataset.id)
        ))
        licensed = set(db.session.scalars(sa.select(LicenseItem.dataset_id)))
        db.session.remove()
    assert ids, "the demo lists the tax bureau's datasets"
    return sorted(ids, key=lambda i: (i not in licensed, i))


def _other_department_dataset(live_server) -> tuple[str, str, int]:
    """Another department's listed dataset that no license holds (withdrawn by the last test)."""
    from licenses.models import LicenseItem
    from market.accounts.models import User
    from market.datasets.models import Dataset
    from market.extensions import db

    app = live_server["app"]
    with app.app_context():
        licensed = set(db.session.scalars(sa.select(LicenseItem.dataset_id)))
        for role, email, password, _org in live_server["accounts"]:
            if role != "department" or email == DEPT[0]:
                continue
            org_id = db.session.scalar(sa.select(User.organization_id).where(User.email == email))
            ids = [i for i in db.session.scalars(
                sa.select(Dataset.id).where(Dataset.department_id == org_id, Dataset.status == "listed")
            ) if i not in licensed]
            if ids:
                db.session.remove()
                return email, password, ids[0]
        db.session.remove()
    raise AssertionError("the demo lists datasets of several departments")


def _record_sql_event(app) -> int:
    from market.accounts.actor import Actor
    from market.accounts.models import User
    from market.audit import services
    from market.extensions import db

    with app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == "buyer@demo.market"))
        event = services.record(db.session, "sandbox.query", Actor(buyer.id, buyer.organization_id, "buyer", "active"),
                                ("license", 1), {"sql": SQL, "rule": "no_identifiers"})
        seq = event.seq
        db.session.commit()
        db.session.remove()
    return seq


def test_regulator_reads_the_audit_trail(live_server, page, shot):
    base = live_server["url"]
    seq = _record_sql_event(live_server["app"])
    sign_in(page, base, *REGULATOR)
    page.goto(f"{base}/audit")
    sentences = page.get_by_test_id("event-sentence")
    assert sentences.count() > 5
    # The SQL reads as SQL, in Chinese, never as \uXXXX.
    item = page.locator(f"li.audit-event[data-seq='{seq}']")
    assert SQL in item.locator("pre.audit-sql").inner_text()
    assert "\\u" not in page.content()
    # The object is a link; the type has a human name.
    assert item.get_by_test_id("event-subject").get_attribute("href") == "/licenses/1"
    assert "沙箱查询" in item.get_by_test_id("event-sentence").inner_text() or "查询" in item.inner_text()
    # The hash stays on one line.
    box = page.locator("code.hash-short").first.bounding_box()
    assert box is not None and box["height"] < 30, box
    shot(page, "regulator-audit-trail")

    # Filter by a type chosen by its name; the export buttons carry the filter.
    page.select_option("#type", value="dataset")
    page.get_by_test_id("filter-button").click()
    page.wait_for_url(re.compile(r".*type=dataset.*"))
    types = page.locator("li.audit-event").evaluate_all("els => els.map(e => e.dataset.type)")
    assert types and all(t.startswith("dataset.") for t in types), types
    href = page.get_by_test_id("export-csv").get_attribute("href")
    assert "type=dataset" in href
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    with open(download.value.path(), encoding="utf-8-sig") as fh:
        text = fh.read()
    rows = text.strip().splitlines()[1:]
    assert rows and all(",dataset." in r for r in rows), rows[:3]

    # An event's own page: its neighbours, hashes and the checkpoint that covers it.
    page.goto(f"{base}/audit/events/{seq}")
    chain = page.get_by_test_id("event-chain")
    assert chain.get_by_test_id("previous-event").is_visible()
    assert len(page.get_by_test_id("event-hash").inner_text()) == 64
    assert "完好" in page.get_by_test_id("link-ok").inner_text()
    assert page.get_by_test_id("checkpoint-text").inner_text()
    shot(page, "regulator-audit-event")

    page.goto(f"{base}/audit?lang=en")
    first = page.get_by_test_id("event-sentence").first.inner_text()
    assert " — " in first
    page.goto(f"{base}/audit?lang=zh")


def test_department_edits_and_the_operator_reviews(live_server, page, browser, shot):
    base = live_server["url"]
    dataset_id = _tax_datasets(live_server["app"])[0]
    sign_in(page, base, *DEPT)
    page.goto(f"{base}/datasets/{dataset_id}")
    page.get_by_test_id("edit-dataset").click()
    assert "运营方审核" in page.get_by_test_id("edit-rule").inner_text()
    page.fill("#title", "纳税信用信息（修订）")
    page.fill("#cost_storage_monthly", "888.00")
    page.get_by_test_id("save-edit").click()
    page.wait_for_url(f"{base}/datasets/{dataset_id}")
    assert page.get_by_test_id("dataset-title").inner_text() == "纳税信用信息（修订）"
    change = page.get_by_test_id("change-request")
    assert "¥888.00" in change.inner_text()
    shot(page, "department-change-proposed")

    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    op = context.new_page()
    try:
        sign_in(op, base, *OPERATOR)
        op.goto(f"{base}/datasets/review-queue")
        op.get_by_test_id("change-queue").get_by_role("link").first.click()
        op.get_by_test_id("approve-change").click()
        op.wait_for_load_state()
        assert op.get_by_test_id("change-request").count() == 0
    finally:
        context.close()


def test_a_rejection_is_one_click_from_the_reupload(live_server, page, shot, tmp_path):
    from market.datasets.models import Dataset, DatasetVersion
    from market.extensions import db

    app = live_server["app"]
    dataset_id = _tax_datasets(app)[0]
    with app.app_context():
        dataset = db.session.get(Dataset, dataset_id)
        number = max(v.version for v in dataset.versions) + 1
        db.session.add(DatasetVersion(dataset_id=dataset_id, version=number, status="rejected",
                                      filename="v.csv", review_comment="地址列未脱敏，请修改后重新上传"))
        db.session.commit()
        db.session.remove()
    base = live_server["url"]
    sign_in(page, base, *DEPT)
    page.goto(f"{base}/datasets/{dataset_id}")
    assert "请修改后重新上传" in page.get_by_test_id("review-comment").inner_text()
    page.get_by_test_id("reupload").click()
    page.wait_for_url(re.compile(rf".*/datasets/{dataset_id}/versions/new\?replaces={number}"))
    assert "地址列未脱敏" in page.get_by_test_id("rejection-context").inner_text()
    shot(page, "department-reupload")
    path = tmp_path / "fixed.csv"
    path.write_bytes(csv_bytes(sample_rows(40)))
    page.set_input_files("#file", str(path))
    page.get_by_test_id("upload-version").click()
    page.wait_for_url(f"{base}/datasets/{dataset_id}")
    state = page.get_by_test_id("version-state")
    assert state.get_attribute("data-status") in ("processing", "pending_review", "failed")
    assert f"{number + 1}" in state.inner_text()


def test_revenue_names_the_datasets(live_server, page, shot):
    base = live_server["url"]
    sign_in(page, base, *DEPT)
    page.goto(f"{base}/revenue")
    table = page.get_by_test_id("earnings-by-dataset")
    assert table.locator("tbody tr").count() >= 1
    assert table.locator("tbody a").first.inner_text().strip()
    assert "payment:" not in page.locator("main").inner_text()
    shot(page, "department-revenue-by-dataset")


def test_quality_and_k_reports_explain_themselves(live_server, page, shot):
    base = live_server["url"]
    dataset_id = _tax_datasets(live_server["app"])[0]
    sign_in(page, base, *DEPT)
    page.goto(f"{base}/datasets/{dataset_id}")
    explained = page.get_by_test_id("quality-explained")
    assert explained.locator("dd").count() >= 5
    k = page.get_by_test_id("k-explained").inner_text()
    assert "准标识符" in k
    assert "总分" in page.get_by_test_id("score-explained").inner_text()
    shot(page, "department-quality-explained")
    page.goto(f"{base}/datasets/{dataset_id}?lang=en")
    k = page.get_by_test_id("k-explained").inner_text()
    assert "quasi-identifier" in k
    assert page.get_by_role("heading", name="What was measured").is_visible()
    assert "weighted mean" in page.get_by_test_id("score-explained").inner_text()
    page.goto(f"{base}/datasets/{dataset_id}?lang=zh")


def test_department_withdraws_a_dataset(live_server, page, shot):
    base = live_server["url"]
    email, password, dataset_id = _other_department_dataset(live_server)
    sign_in(page, base, email, password)
    page.goto(f"{base}/datasets/{dataset_id}")
    page.get_by_test_id("withdraw-dataset").click()
    assert "到期" in page.get_by_test_id("withdraw-effects").inner_text()
    page.get_by_test_id("confirm-withdraw").click()
    assert page.locator(".field-error[data-field=reason]").is_visible()  # the reason is required
    page.fill("#reason", "统计口径调整，暂停开放")
    page.get_by_test_id("confirm-withdraw").click()
    page.wait_for_url(f"{base}/datasets/{dataset_id}")
    assert "统计口径调整" in page.get_by_test_id("withdrawn-banner").inner_text()
    shot(page, "department-withdrawn")
    page.goto(f"{base}/datasets")
    assert page.locator(f"a[href='/datasets/{dataset_id}']").count() == 0
