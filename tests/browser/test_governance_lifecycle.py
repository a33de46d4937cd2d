"""The governance lifecycle pages in the browser, in zh (the default) and en (issue 16):

- ``/agreements/keys``: a department revokes its registered signing key with a reason; the
  agreement that key signed before then states the revocation in its verification result;
- ``/scenarios/new`` and ``/scenarios/<id>``: the operator drafts a scenario with its term, the
  regulator approves it, the operator withdraws it with a reason; the page shows it withdrawn;
- ``/security-levels``: a department raises a dataset to important (applies at once) and asks
  to lower it back; the operator and the regulator approve on the page; the change applies.

Set-up that is not the point (registering a key, signing an agreement) goes through the v1 API
over the wire, as a department's own software would.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from tests.browser.flows import sign_in

pytestmark = pytest.mark.browser


def _account(live_server, role: str) -> tuple[str, str, str]:
    return next((e, p, o) for r, e, p, o in live_server["accounts"] if r == role)


def _api(base: str, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _token(base: str, email: str, password: str) -> str:
    status, body = _api(base, "/api/v1/auth/token", {"email": email, "password": password})
    assert status == 201, body
    return body["token"]


def _agreement_signed_by_a_registered_key(base: str, dept: str, operator: str) -> tuple[int, str]:
    """A department registers its own key, signs an agreement with it; the operator
    countersigns. Returns the agreement's id and the key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from market.agreements import document as doc

    key = Ed25519PrivateKey.generate()
    status, body = _api(base, "/api/v1/agreements/keys",
                        {"public_key": doc.public_key_b64(key.public_key())}, dept)
    assert status == 201, body
    kid = body["key_id"]
    now = dt.datetime.now(dt.UTC)
    terms = {
        "categories": ["browser_key_revocation"],
        "starts_at": (now - dt.timedelta(days=1)).isoformat(),
        "ends_at": (now + dt.timedelta(days=365)).isoformat(),
        "revenue_share_bps": 8500,
        "signing": "registered",
    }
    status, draft = _api(base, "/api/v1/agreements", terms, dept)
    assert status == 201, draft
    status, body = _api(base, f"/api/v1/agreements/{draft['id']}/sign",
                        {"key_id": kid, "signature": doc.sign_document(key, draft["document"])},
                        dept)
    assert status == 200, body
    status, body = _api(base, f"/api/v1/agreements/{draft['id']}/countersign", {}, operator)
    assert status == 200 and body["status"] == "active", body
    return draft["id"], kid


def test_a_department_revokes_its_key_and_the_agreement_states_it(page, live_server, shot):
    base = live_server["url"]
    dept_email, dept_pw, _ = _account(live_server, "department")
    op_email, op_pw, _ = _account(live_server, "operator")
    agreement_id, kid = _agreement_signed_by_a_registered_key(
        base, _token(base, dept_email, dept_pw), _token(base, op_email, op_pw)
    )

    sign_in(page, base, dept_email, dept_pw, lang="zh")
    page.goto(f"{base}/agreements/{agreement_id}")
    assert page.get_by_test_id("agreement-verification").inner_text() == "签名验证通过"
    assert page.get_by_test_id("department-key-revoked").count() == 0

    page.goto(f"{base}/agreements/keys")
    assert page.get_by_role("heading", name="协议签名密钥").is_visible()
    row = page.get_by_test_id(f"key-{kid}")
    assert row.get_by_test_id("key-revoked").count() == 0
    # No reason: refused, the field says why, the key stays.
    page.get_by_test_id(f"revoke-{kid}").click()
    assert "请填写理由。" in row.inner_text()
    assert row.get_by_test_id("key-revoked").count() == 0
    row.locator("textarea[name=reason]").fill("签名设备遗失")
    with page.expect_navigation(url=f"{base}/agreements/keys"):
        page.get_by_test_id(f"revoke-{kid}").click()
    assert f"密钥 {kid} 已吊销" in page.content()
    row = page.get_by_test_id(f"key-{kid}")
    assert row.get_by_test_id("key-revoked").is_visible()
    assert "签名设备遗失" in row.inner_text()
    assert page.get_by_test_id(f"revoke-{kid}").count() == 0
    shot(page, "agreement-key-revoked-zh")

    # The agreement signed before the revocation stays valid and says the key was revoked.
    page.goto(f"{base}/agreements/{agreement_id}")
    revoked = page.get_by_test_id("department-key-revoked").inner_text()
    assert "在吊销之前签署：仍然有效" in revoked
    assert page.get_by_test_id("agreement-verification").inner_text() == "签名验证通过"
    shot(page, "agreement-key-revoked-verification-zh")

    page.goto(f"{base}/agreements/{agreement_id}?lang=en")
    revoked = page.get_by_test_id("department-key-revoked").inner_text()
    assert revoked.startswith("revoked ")
    assert "signed before the revocation: still valid" in revoked
    assert page.get_by_test_id("agreement-verification").inner_text() == "the signatures verify"
    page.goto(f"{base}/agreements/keys?lang=en")
    assert page.get_by_role("heading", name="Agreement signing keys").is_visible()
    assert page.get_by_test_id(f"key-{kid}").get_by_test_id("key-revoked").is_visible()
    shot(page, "agreement-keys-en")


def test_a_scenario_with_a_term_is_approved_then_withdrawn(page, live_server, shot):
    base = live_server["url"]
    op_email, op_pw, _ = _account(live_server, "operator")
    reg_email, reg_pw, _ = _account(live_server, "regulator")
    today = dt.datetime.now(dt.UTC).date()
    ends = today + dt.timedelta(days=365)

    # The operator, in English once: the new-scenario form has the term fields.
    sign_in(page, base, op_email, op_pw, lang="en")
    page.goto(f"{base}/scenarios/new?lang=en")
    assert page.get_by_role("heading", name="New scenario").is_visible()
    assert page.get_by_label("Term starts on").is_visible()
    assert page.get_by_label("Term ends on").is_visible()
    assert page.get_by_text("Empty: three years from the start.").is_visible()

    # In Chinese, the operator drafts the scenario with a one-year term and submits it.
    page.goto(f"{base}/scenarios/new?lang=zh")
    assert page.get_by_role("heading", name="新建场景").is_visible()
    form = page.get_by_test_id("scenario-form")
    form.locator("input[name=code]").fill("browser-term-scenario")
    form.locator("input[name=title]").fill("浏览器测试场景")
    form.locator("input[name=title_en]").fill("Browser test scenario")
    form.locator("textarea[name=description]").fill("有期限的场景，用于撤回流程。")
    form.locator("input[name=dataset_ids]").first.check()
    form.locator("input[name=purposes]").first.check()
    form.get_by_label("期限起始日").fill(today.isoformat())
    form.get_by_label("期限截止日").fill(ends.isoformat())
    shot(page, "scenario-new-term-zh")
    with page.expect_navigation(url=re.compile(r".*/scenarios/\d+$")):
        page.get_by_test_id("scenario-save").click()
    detail = page.url
    term = page.get_by_test_id("scenario-term").inner_text()
    assert today.isoformat() in term and ends.isoformat() in term
    with page.expect_navigation(url=detail):
        page.get_by_test_id("scenario-submit").click()
    page.context.clear_cookies()

    # The regulator approves it.
    sign_in(page, base, reg_email, reg_pw, lang="zh")
    page.goto(detail)
    form = page.get_by_test_id("scenario-decision")
    form.locator("select[name=decision]").select_option("approve")
    with page.expect_navigation(url=detail):
        page.get_by_test_id("scenario-decide").click()
    assert page.get_by_test_id("scenario-status").inner_text() == "已批准"
    page.context.clear_cookies()

    # The operator withdraws it: a reason is required; then the page shows it withdrawn.
    sign_in(page, base, op_email, op_pw, lang="zh")
    page.goto(detail)
    withdraw = page.get_by_test_id("withdraw-form")
    assert "撤回不可恢复" in withdraw.inner_text()
    page.get_by_test_id("scenario-withdraw").click()
    assert "请填写理由。" in page.get_by_test_id("withdraw-form").inner_text()
    assert page.get_by_test_id("scenario-withdrawn").count() == 0
    page.get_by_test_id("withdraw-form").locator("textarea[name=reason]").fill("试点结束")
    with page.expect_navigation(url=detail):
        page.get_by_test_id("scenario-withdraw").click()
    assert page.get_by_test_id("scenario-status").inner_text() == "已下架"  # msgid "Withdrawn"
    withdrawn = page.get_by_test_id("scenario-withdrawn").inner_text()
    assert "不再据此场景授予新的许可" in withdrawn and "试点结束" in withdrawn
    assert page.get_by_test_id("withdraw-form").count() == 0
    shot(page, "scenario-withdrawn-zh")

    page.goto(f"{detail}?lang=en")
    assert page.get_by_test_id("scenario-status").inner_text() == "Withdrawn"
    withdrawn = page.get_by_test_id("scenario-withdrawn").inner_text()
    assert "no new license is granted under this scenario" in withdrawn
    assert "试点结束" in withdrawn
    shot(page, "scenario-withdrawn-en")


def _conditional_general_dataset(app, dept_email: str) -> tuple[int, str]:
    from market.accounts.models import User
    from market.datasets.models import Dataset
    from market.extensions import db

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == dept_email))
        dataset = db.session.scalar(
            sa.select(Dataset).where(
                Dataset.department_id == user.organization_id,
                Dataset.open_grade == "conditional", Dataset.security_level == "general",
                Dataset.status != "withdrawn",
            ).order_by(Dataset.id)
        )
        assert dataset is not None, "the demo department has a conditionally opened dataset"
        found = dataset.id, dataset.title
        db.session.remove()
    return found


def _level_of(app, dataset_id: int) -> str:
    from market.datasets.models import Dataset
    from market.extensions import db

    with app.app_context():
        level = db.session.get(Dataset, dataset_id).security_level
        db.session.remove()
    return level


def _newest_change(page):
    row = page.get_by_test_id("level-changes").locator("tbody tr").first
    return row, int(row.get_attribute("data-testid").rsplit("-", 1)[1])


def test_security_level_raised_then_lowered_with_both_approvals(page, live_server, shot):
    base = live_server["url"]
    app = live_server["app"]
    dept_email, dept_pw, _ = _account(live_server, "department")
    dataset_id, title = _conditional_general_dataset(app, dept_email)

    # The department raises the dataset to important: it applies at once.
    sign_in(page, base, dept_email, dept_pw, lang="zh")
    page.goto(f"{base}/security-levels")
    assert page.get_by_role("heading", name="安全级别").is_visible()
    form = page.get_by_test_id("level-request-form")
    form.locator("select[name=dataset_id]").select_option(str(dataset_id))
    form.locator("select[name=to_level]").select_option("important")
    form.locator("textarea[name=reason]").fill("含企业纳税明细，定为重要数据")
    with page.expect_navigation(url=f"{base}/security-levels"):
        page.get_by_test_id("level-request").click()
    assert "安全级别已提升" in page.content()
    row, raised = _newest_change(page)
    assert title in row.inner_text() and "一般数据 → 重要数据" in row.inner_text()
    assert page.get_by_test_id(f"level-change-status-{raised}").inner_text() == "已生效"
    assert _level_of(app, dataset_id) == "important"

    # Then asks to lower it back: it waits for both approvals.
    form = page.get_by_test_id("level-request-form")
    form.locator("select[name=dataset_id]").select_option(str(dataset_id))
    form.locator("select[name=to_level]").select_option("general")
    form.locator("textarea[name=reason]").fill("明细已脱敏汇总，恢复一般数据")
    with page.expect_navigation(url=f"{base}/security-levels"):
        page.get_by_test_id("level-request").click()
    assert "须经运营单位和监管方共同批准" in page.content()
    row, change = _newest_change(page)
    assert "重要数据 → 一般数据" in row.inner_text()
    assert page.get_by_test_id(f"level-change-status-{change}").inner_text() == "待审批"
    assert page.get_by_test_id(f"level-decide-{change}").count() == 0  # not the department's
    shot(page, "security-level-requested-zh")
    assert _level_of(app, dataset_id) == "important"
    page.context.clear_cookies()

    # The operator approves on the page, in Chinese: still pending (the regulator decides too).
    sign_in(page, base, *_account(live_server, "operator")[:2], lang="zh")
    page.goto(f"{base}/security-levels")
    decide = page.get_by_test_id(f"level-decide-{change}")
    decide.locator("select[name=decision]").select_option("approve")
    decide.locator("textarea[name=comment]").fill("同意")
    with page.expect_navigation(url=f"{base}/security-levels"):
        decide.get_by_role("button").click()
    assert "已记录决定。" in page.content()
    assert page.get_by_test_id(f"level-change-status-{change}").inner_text() == "待审批"
    assert page.get_by_test_id(f"level-decide-{change}").count() == 0
    assert _level_of(app, dataset_id) == "important"
    page.context.clear_cookies()

    # The regulator approves, in English: the lowering applies.
    sign_in(page, base, *_account(live_server, "regulator")[:2], lang="en")
    page.goto(f"{base}/security-levels?lang=en")
    assert page.get_by_role("heading", name="Security levels").is_visible()
    row = page.get_by_test_id(f"level-change-{change}")
    assert "Important (重要数据) → General (一般数据)" in row.inner_text()
    decide = page.get_by_test_id(f"level-decide-{change}")
    decide.locator("select[name=decision]").select_option("approve")
    with page.expect_navigation(url=f"{base}/security-levels"):
        decide.get_by_role("button", name="Record the decision").click()
    assert "Decision recorded." in page.content()
    assert page.get_by_test_id(f"level-change-status-{change}").inner_text() == "Applied"
    assert page.get_by_test_id(f"level-decide-{change}").count() == 0
    assert _level_of(app, dataset_id) == "general"
    shot(page, "security-level-lowered-en")
