"""A dataset after publication: metadata edits (wording at once, price-relevant fields through
review), the operator's review of a change, withdrawal, and a new version from the page.
Role AND object are checked on every action (the attack first)."""

from __future__ import annotations

import re

import pytest

from tests.datasets.conftest import csv_bytes, event_types, events, multipart, sample_rows


@pytest.fixture
def listed(published, operator, client):
    """A listed dataset of ``department``."""
    dataset_id = published()
    r = client.post(f"/api/v1/datasets/{dataset_id}/review",
                    json={"decision": "approve", "comment": ""}, headers=operator[1])
    assert r.status_code == 200, r.get_json()
    return dataset_id


def _meta_url(i: int) -> str:
    return f"/api/v1/datasets/{i}/metadata"


def test_wording_applies_at_once_and_is_audited(client, department, listed):
    r = client.put(_meta_url(listed), json={"title": "企业登记（2024）", "description": "新说明",
                                            "update_frequency": "quarterly"},
                   headers=department[1])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["applied"] == ["description", "title", "update_frequency"]
    assert body["change_request"] is None
    assert body["dataset"]["title"] == "企业登记（2024）" and body["dataset"]["status"] == "listed"
    edited = events(listed)[-1]
    assert edited.type == "dataset.edited"
    assert edited.data["before"]["title"] == "企业登记注册信息"
    assert edited.data["after"]["update_frequency"] == "quarterly"


def test_category_and_costs_go_to_review_and_apply_only_when_approved(client, department, operator, listed):
    new_costs = {"collection": 1, "processing": 2, "storage_monthly": 3}
    r = client.put(_meta_url(listed), json={"category": "market_supervision", "costs": new_costs,
                                            "title": "新标题"}, headers=department[1])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["applied"] == ["title"]
    change = body["change_request"]
    assert change["status"] == "pending" and set(change["changes"]) == {"category", "costs"}
    # Buyers still see (and are quoted on) the values in force.
    shown = client.get(f"/api/v1/datasets/{listed}").get_json()
    assert shown["category"] == "enterprise_registry" and shown["costs"]["collection"] == 100_000
    assert event_types(listed)[-2:] == ["dataset.edited", "dataset.change_proposed"]
    # The department cannot approve its own change; nor can the regulator.
    for who in (department[1],):
        assert client.post(f"/api/v1/datasets/{listed}/changes/review",
                           json={"decision": "approve"}, headers=who).status_code == 403
    r = client.post(f"/api/v1/datasets/{listed}/changes/review", json={"decision": "approve"},
                    headers=operator[1])
    assert r.status_code == 200 and r.get_json()["status"] == "approved"
    shown = client.get(f"/api/v1/datasets/{listed}").get_json()
    assert shown["category"] == "market_supervision" and shown["costs"]["collection"] == 1
    reviewed = events(listed)[-1]
    assert reviewed.type == "dataset.change_reviewed" and reviewed.data["decision"] == "approve"
    # Nothing pending any more.
    again = client.post(f"/api/v1/datasets/{listed}/changes/review", json={"decision": "approve"},
                        headers=operator[1])
    assert again.status_code == 409


def test_a_rejection_needs_a_comment_and_keeps_the_values(client, department, operator, listed):
    client.put(_meta_url(listed), json={"costs": {"collection": 9, "processing": 9,
                                                  "storage_monthly": 9}}, headers=department[1])
    r = client.post(f"/api/v1/datasets/{listed}/changes/review", json={"decision": "reject"},
                    headers=operator[1])
    assert r.status_code == 422 and "comment" in r.get_json()["errors"]
    r = client.post(f"/api/v1/datasets/{listed}/changes/review",
                    json={"decision": "reject", "comment": "成本依据不足"}, headers=operator[1])
    assert r.status_code == 200 and r.get_json()["review_comment"] == "成本依据不足"
    assert client.get(f"/api/v1/datasets/{listed}").get_json()["costs"]["collection"] == 100_000
    history = client.get(f"/api/v1/datasets/{listed}/changes", headers=department[1]).get_json()
    assert [c["status"] for c in history] == ["rejected"]


def test_a_newer_proposal_replaces_the_pending_one(client, department, listed):
    client.put(_meta_url(listed), json={"category": "market_supervision"}, headers=department[1])
    r = client.put(_meta_url(listed), json={"costs": {"collection": 5, "processing": 5,
                                                      "storage_monthly": 5}}, headers=department[1])
    assert set(r.get_json()["change_request"]["changes"]) == {"category", "costs"}
    statuses = [c["status"] for c in client.get(f"/api/v1/datasets/{listed}/changes",
                                                 headers=department[1]).get_json()]
    assert statuses == ["pending", "rejected"]


def test_before_listing_everything_applies_at_once(client, department, published):
    dataset_id = published()
    r = client.put(_meta_url(dataset_id), json={"category": "market_supervision"}, headers=department[1])
    assert r.status_code == 200 and r.get_json()["applied"] == ["category"]
    assert r.get_json()["change_request"] is None


def test_nothing_changed_is_422(client, department, listed):
    r = client.put(_meta_url(listed), json={"title": "企业登记注册信息"}, headers=department[1])
    assert r.status_code == 422


@pytest.mark.parametrize("body", [{"category": "no_such"}, {"title": "  "}, {"slug": "x"},
                                  {"costs": {"collection": -1, "processing": 0, "storage_monthly": 0}}])
def test_invalid_edits_are_422(client, department, listed, body):
    assert client.put(_meta_url(listed), json=body, headers=department[1]).status_code == 422


def test_only_the_owning_department_edits_or_withdraws(client, as_role, published, listed):
    unlisted = published()
    _, other_dept = as_role("department")
    _, buyer = as_role("buyer")
    _, op = as_role("operator")
    _, reg = as_role("regulator")
    for headers, listed_status, unlisted_status in (
        (other_dept, 403, 404), (buyer, 403, 404), (op, 403, 403), (reg, 403, 403),
    ):
        assert client.put(_meta_url(listed), json={"title": "x"}, headers=headers).status_code == listed_status
        assert client.put(_meta_url(unlisted), json={"title": "x"}, headers=headers).status_code == unlisted_status
        assert client.post(f"/api/v1/datasets/{listed}/withdraw", json={"reason": "x"},
                           headers=headers).status_code == listed_status
    assert client.put(_meta_url(listed), json={"title": "x"}).status_code == 401
    assert client.get(f"/api/v1/datasets/{listed}").get_json()["title"] == "企业登记注册信息"
    assert client.get(f"/api/v1/datasets/{listed}/changes", headers=buyer).status_code == 403


def test_withdrawal_delists_keeps_licenses_serving_and_is_final(app, client, department, listed):
    from market.datasets.models import Dataset
    from market.extensions import db
    from sandbox.workspace import SandboxSettings, table_for

    assert client.post(f"/api/v1/datasets/{listed}/withdraw", json={"reason": ""},
                       headers=department[1]).status_code == 422
    r = client.post(f"/api/v1/datasets/{listed}/withdraw", json={"reason": "数据口径调整"},
                    headers=department[1])
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    event = events(listed)[-1]
    assert event.type == "dataset.withdrawn"
    assert event.data["reason"] == "数据口径调整" and event.data["active_licenses"] == 0
    # Out of the catalogue and invisible to buyers.
    ids = [d["id"] for d in client.get("/api/v1/datasets").get_json()["items"]]
    assert listed not in ids
    assert client.get(f"/api/v1/datasets/{listed}").status_code == 404
    # A license granted before keeps its table: the listed version is still served.
    dataset = db.session.get(Dataset, listed)
    columns = [c.name for c in dataset.current_version.columns]
    assert table_for(dataset, columns, SandboxSettings()) is not None
    # Final: no second withdrawal, no edit, no new version.
    assert client.post(f"/api/v1/datasets/{listed}/withdraw", json={"reason": "x"},
                       headers=department[1]).status_code == 409
    assert client.put(_meta_url(listed), json={"title": "y"}, headers=department[1]).status_code == 409
    body, ctype = multipart([("file", (csv_bytes(sample_rows()), "v2.csv"))])
    r = client.post(f"/api/v1/datasets/{listed}/versions", data=body, headers=department[1],
                    content_type=ctype)
    assert r.status_code == 409


def test_withdrawal_closes_a_pending_change_and_version(client, department, operator, listed):
    client.put(_meta_url(listed), json={"category": "market_supervision"}, headers=department[1])
    body, ctype = multipart([("file", (csv_bytes(sample_rows()), "v2.csv"))])
    r = client.post(f"/api/v1/datasets/{listed}/versions", data=body, headers=department[1],
                    content_type=ctype)
    assert r.status_code == 202 and r.get_json()["status"] == "pending_review"
    client.post(f"/api/v1/datasets/{listed}/withdraw", json={"reason": "停止开放"},
                headers=department[1])
    changes = client.get(f"/api/v1/datasets/{listed}/changes", headers=department[1]).get_json()
    assert changes[0]["status"] == "withdrawn"
    versions = client.get(f"/api/v1/datasets/{listed}/versions", headers=department[1]).get_json()
    assert [v["status"] for v in versions["items"]] == ["rejected", "listed"]
    assert client.post(f"/api/v1/datasets/{listed}/review", json={"decision": "approve", "comment": ""},
                       headers=operator[1]).status_code == 409


# -- pages --------------------------------------------------------------------------------------


def _login(client, user):
    from tests.accounts.test_web import login

    login(client, user.email)
    client.get("/?lang=en")


def _csrf(client, url: str) -> str:
    from tests.accounts.test_web import csrf_from

    return csrf_from(client.get(url).get_data(as_text=True))


def test_pages_edit_review_and_withdraw(app, client, department, as_role, listed):
    user = department[0]
    _login(client, user)
    page = client.get(f"/datasets/{listed}").get_data(as_text=True)
    assert 'data-testid="edit-dataset"' in page and 'data-testid="withdraw-dataset"' in page
    assert 'data-testid="new-version"' in page
    edit_page = client.get(f"/datasets/{listed}/edit").get_data(as_text=True)
    assert "go to the operator’s review" in edit_page and 'value="1000.00"' in edit_page
    form = {"csrf_token": _csrf(client, f"/datasets/{listed}/edit"), "title": "企业登记注册信息",
            "description": "测试", "update_frequency": "monthly", "category": "market_supervision",
            "cost_collection": "1000", "cost_processing": "500", "cost_storage_monthly": "10"}
    r = client.post(f"/datasets/{listed}/edit", data=form)
    assert r.status_code == 302
    page = client.get(f"/datasets/{listed}").get_data(as_text=True)
    assert 'data-testid="change-request"' in page and 'data-testid="change-review-form"' not in page
    # A bad amount is shown next to its field.
    r = client.post(f"/datasets/{listed}/edit", data={**form, "cost_collection": "abc"})
    assert r.status_code == 422 and 'data-field="cost_collection"' in r.get_data(as_text=True)
    # The operator approves on the dataset page.
    op_user, _ = as_role("operator")
    client = app.test_client()
    _login(client, op_user)
    page = client.get(f"/datasets/{listed}").get_data(as_text=True)
    assert 'data-testid="change-review-form"' in page
    queue = client.get("/datasets/review-queue").get_data(as_text=True)
    assert 'data-testid="change-queue"' in queue
    r = client.post(f"/datasets/{listed}/changes/review",
                    data={"csrf_token": _csrf(client, f"/datasets/{listed}"), "decision": "approve",
                          "comment": ""})
    assert r.status_code == 302
    assert client.get(f"/api/v1/datasets/{listed}").get_json()["category"] == "market_supervision"
    assert client.get(f"/datasets/{listed}/withdraw").status_code == 403


def test_withdraw_page(client, department, listed):
    _login(client, department[0])
    page = client.get(f"/datasets/{listed}/withdraw").get_data(as_text=True)
    assert "0 active licenses keep their access" in page
    token = _csrf(client, f"/datasets/{listed}/withdraw")
    r = client.post(f"/datasets/{listed}/withdraw", data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422 and 'data-field="reason"' in r.get_data(as_text=True)
    r = client.post(f"/datasets/{listed}/withdraw", data={"csrf_token": token, "reason": "停止开放"})
    assert r.status_code == 302
    page = client.get(f"/datasets/{listed}").get_data(as_text=True)
    assert 'data-testid="withdrawn-banner"' in page and "停止开放" in page
    assert 'data-testid="edit-dataset"' not in page


def test_a_rejection_is_one_click_from_the_new_version_upload(client, department, operator, published):
    dataset_id = published()
    r = client.post(f"/api/v1/datasets/{dataset_id}/review",
                    json={"decision": "reject", "comment": "地址列未脱敏，请重新上传"},
                    headers=operator[1])
    assert r.status_code == 200
    _login(client, department[0])
    page = client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    link = re.search(r'data-testid="reupload" href="([^"]+)"', page).group(1)
    assert link == f"/datasets/{dataset_id}/versions/new?replaces=1"
    form_page = client.get(link).get_data(as_text=True)
    assert 'data-testid="rejection-context"' in form_page and "地址列未脱敏，请重新上传" in form_page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form_page).group(1)
    body, ctype = multipart([("csrf_token", token), ("replaces", "1"),
                             ("file", (csv_bytes(sample_rows()), "fixed.csv"))])
    r = client.post(link, data=body, content_type=ctype)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    versions = client.get(f"/api/v1/datasets/{dataset_id}/versions", headers=department[1]).get_json()
    assert [v["status"] for v in versions["items"]] == ["pending_review", "rejected"]
    assert event_types(dataset_id)[-2:] == ["dataset.uploaded", "dataset.processed"]


def test_new_version_page_is_the_owners_only(client, as_role, listed):
    other, _ = as_role("department")
    _login(client, other)
    assert client.get(f"/datasets/{listed}/versions/new").status_code == 403
    assert client.get(f"/datasets/{listed}/edit").status_code == 403
