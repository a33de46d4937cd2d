"""The catalogue pages: who sees what, the calculator for buyers, review from the page and the
queue, the department's list, dashboard panels, navigation, and escaping everywhere."""

from __future__ import annotations

import json
import re

import pytest

from market.datasets.models import Dataset
from market.extensions import db
from tests.accounts.test_web import csrf_from
from tests.catalog.conftest import XSS_DESCRIPTION, XSS_TITLE


def _html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# -- the catalogue ------------------------------------------------------------------------------


def test_catalogue_is_public_with_cards_facets_and_pagination(client, make_dataset, make_org):
    dept = make_org("department", name="上海市生态环境局")
    for i in range(13):
        make_dataset(title=f"环境行政处罚信息 {i}", category="environment", department=dept)
    make_dataset(title="企业月度纳税信息", category="tax", quality=95)
    html = _html(client.get("/catalog"))
    assert html.count('data-testid="dataset-card"') == 12  # one page
    assert 'rel="next"' in html and "1 / 2" in html
    assert "上海市生态环境局" in html
    # Facets are links with counts; the category facet keeps the search words.
    m = re.search(r'<a href="([^"]+)" data-facet-value="tax">', html)
    assert m and "category=tax" in m.group(1)
    filtered = _html(client.get("/catalog?q=纳税&category=tax"))
    assert filtered.count('data-testid="dataset-card"') == 1 and "企业月度纳税信息" in filtered
    assert 'data-testid="clear-filters"' in filtered
    assert _html(client.get("/catalog?page=2")).count('data-testid="dataset-card"') == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?lang=en", "The catalogue is empty"),
        ("?lang=en&q=没有这个词", "No listed dataset matches these filters."),
        ("?q=没有这个词", "没有符合这些条件的已上架数据集。"),
    ],
)
def test_catalogue_empty_states_say_what_to_do(client, make_dataset, query, message):
    if "q=" in query:
        make_dataset()
    html = _html(client.get(f"/catalog{query}"))
    assert 'data-testid="catalog-empty"' in html and message in html


def test_catalogue_ignores_malformed_parameters(client, make_dataset):
    make_dataset()
    html = _html(client.get("/catalog?page=abc&min_quality=500&department_id=-4&sort=drop"))
    assert html.count('data-testid="dataset-card"') == 1


# -- the dataset page -----------------------------------------------------------------------------


def test_dataset_page_for_anonymous_visitors(client, make_dataset):
    d = make_dataset()
    html = _html(client.get(f"/datasets/{d.id}"))
    for testid in (
        "schema-table",
        "quality-report",
        "quality-chart",
        "synthetic-label",
        "version-history",
        "price-calculator",
    ):
        assert f'data-testid="{testid}"' in html, testid
    assert 'class="quote-form' not in html  # the calculator asks to sign in as a buyer
    assert 'data-testid="apply"' not in html
    chart = json.loads(
        re.search(
            r'<script type="application/json" id="quality-data">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert chart["values"] == [98.5, 91.0, 100.0, 88.0, 75.0] and chart["score"] == 85
    # Suppressed columns are in the schema table but not in the synthetic preview.
    assert 'data-column="法定代表人身份证号"' in html
    preview = html.split('data-testid="preview"')[1]
    assert "法定代表人身份证号" not in preview and 'data-synthetic="true"' in preview


def test_buyers_get_the_calculator_and_the_way_to_apply(client, make_dataset, member, login):
    d = make_dataset()
    login(member("buyer"))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert 'class="form quote-form"' in html and f'data-dataset-id="{d.id}"' in html
    assert 'data-testid="apply-link"' in html
    # Chart.js is loaded once (by the calculator), and datasets.js draws the quality chart.
    assert html.count("chart.umd.min.js") == 1 and "js/datasets.js" in html


@pytest.mark.parametrize("kind", ["department", "operator", "regulator"])
def test_other_roles_see_no_calculator_form(client, make_dataset, member, login, kind):
    d = make_dataset()
    login(member(kind))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert 'data-testid="price-calculator"' in html and 'class="form quote-form"' not in html
    assert 'data-testid="apply"' not in html and html.count("chart.umd.min.js") == 1


def test_pending_dataset_for_its_department(client, make_dataset, make_org, member, login):
    owner = make_org("department")
    d = make_dataset(
        status="pending_review", department=owner, report_warnings=["列 备注 含有手机号"]
    )
    login(member("department", org=owner))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert 'data-testid="pending-review"' in html and 'data-testid="pii-table"' in html
    assert 'data-pii="credit_code"' in html and 'data-pii="mobile"' in html
    assert "列 备注 含有手机号" in html
    assert 'name="treatment:联系电话"' in html  # can be made stricter (suppressed)
    assert 'name="treatment:法定代表人身份证号"' not in html  # already as strict as it gets
    assert 'data-testid="review-form"' not in html
    assert 'data-testid="price-calculator"' not in html  # not listed: nothing to price


def test_pending_dataset_for_the_operator_and_the_regulator(client, make_dataset, member, login):
    d = make_dataset(status="pending_review")
    login(member("operator"))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert 'data-testid="review-form"' in html and 'name="treatment:' not in html
    login(member("regulator"))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert 'data-testid="pii-table"' in html
    assert 'data-testid="review-form"' not in html and 'name="treatment:' not in html


def test_processing_version_polls_the_status_endpoint(
    client, make_dataset, make_org, member, login
):
    owner = make_org("department")
    d = make_dataset(status="processing", department=owner)
    login(member("department", org=owner))
    html = _html(client.get(f"/datasets/{d.id}"))
    assert f'data-poll-url="/api/v1/datasets/{d.id}/versions/1/status"' in html
    assert 'data-testid="processing-progress"' in html


def _post_review(client, dataset_id, decision, comment="", return_to=None):
    token = csrf_from(client.get("/datasets/review-queue").get_data(as_text=True))
    data = {"csrf_token": token, "decision": decision, "comment": comment}
    if return_to:
        data["return_to"] = return_to
    return client.post(f"/datasets/{dataset_id}/review", data=data)


def test_operator_reviews_from_the_queue(client, make_dataset, member, login):
    a = make_dataset(status="pending_review", title="待审核 A")
    b = make_dataset(status="pending_review", title="待审核 B")
    login(member("operator"))
    queue = _html(client.get("/datasets/review-queue"))
    assert queue.count('data-testid="queue-item"') == 2
    assert 'data-pii="credit_code"' in queue and "12" in queue  # PII and k shown

    r = _post_review(client, a.id, "approve", return_to="queue")
    assert r.status_code == 302 and r.headers["Location"].endswith("/datasets/review-queue")
    db.session.expire_all()
    assert db.session.get(Dataset, a.id).status == "listed"

    # Rejecting needs a comment: the error is shown next to the field, nothing changes.
    r = _post_review(client, b.id, "reject", return_to="queue")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    item = html.split(f'data-dataset-id="{b.id}"')[1]
    assert 'class="field has-error"' in item and 'class="field-error"' in item
    db.session.expire_all()
    assert db.session.get(Dataset, b.id).status == "pending_review"

    r = _post_review(client, b.id, "reject", comment="地址未脱敏到区", return_to=None)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/datasets/{b.id}")
    db.session.expire_all()
    version = db.session.get(Dataset, b.id).versions[-1]
    assert version.status == "rejected" and version.review_comment == "地址未脱敏到区"
    assert 'data-testid="queue-empty"' in _html(client.get("/datasets/review-queue"))


def test_review_of_a_dataset_not_pending_is_refused_politely(client, make_dataset, member, login):
    d = make_dataset()
    login(member("operator"))
    r = _post_review(client, d.id, "approve")
    assert r.status_code == 302
    # The page speaks the session's language (Chinese by default), the refusal included.
    assert "没有待审核的版本" in _html(client.get(f"/datasets/{d.id}"))


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("buyer", "/datasets/review-queue"),
        ("department", "/datasets/review-queue"),
        ("regulator", "/datasets/review-queue"),
        ("buyer", "/datasets/upload"),
        ("operator", "/datasets/upload"),
        ("buyer", "/datasets/mine"),
    ],
)
def test_role_pages_are_forbidden_to_others(client, member, login, kind, path):
    login(member(kind))
    assert client.get(path).status_code == 403


def test_only_the_operator_can_post_a_review(client, make_dataset, make_org, member, login):
    owner = make_org("department")
    d = make_dataset(status="pending_review", department=owner)
    login(member("department", org=owner))
    token = csrf_from(client.get(f"/datasets/{d.id}").get_data(as_text=True))
    r = client.post(f"/datasets/{d.id}/review", data={"csrf_token": token, "decision": "approve"})
    assert r.status_code == 403
    db.session.expire_all()
    assert db.session.get(Dataset, d.id).status == "pending_review"


def test_my_datasets_lists_status_and_review_comments(
    client, make_dataset, make_org, member, login
):
    owner = make_org("department")
    make_dataset(title="已上架", department=owner)
    rejected = make_dataset(title="被驳回", status="rejected", department=owner)
    rejected.versions[-1].review_comment = "请补充说明"
    db.session.commit()
    make_dataset(title="别人的数据", status="pending_review")
    login(member("department", org=owner))
    html = _html(client.get("/datasets/mine"))
    assert (
        "已上架" in html and "被驳回" in html and "请补充说明" in html and "别人的数据" not in html
    )
    dashboard = _html(client.get("/dashboard"))
    assert 'data-panel="my_datasets"' in dashboard and "被驳回" in dashboard


def test_my_datasets_empty_state(client, member, login):
    login(member("department"))
    assert 'data-testid="mine-empty"' in _html(client.get("/datasets/mine"))


def test_operator_dashboard_counts_the_queue(client, make_dataset, member, login):
    make_dataset(status="pending_review")
    make_dataset(status="pending_review")
    make_dataset()
    login(member("operator"))
    html = _html(client.get("/dashboard"))
    assert 'data-panel="publication_queue"' in html
    assert re.search(r'data-testid="publication-queue-count">2<', html)


@pytest.mark.parametrize(
    ("kind", "present", "absent"),
    [
        (
            "department",
            {"/catalog", "/datasets/upload", "/datasets/mine"},
            {"/datasets/review-queue"},
        ),
        ("buyer", {"/catalog"}, {"/datasets/upload", "/datasets/mine", "/datasets/review-queue"}),
        (
            "operator",
            {"/catalog", "/datasets/review-queue"},
            {"/datasets/upload", "/datasets/mine"},
        ),
        ("regulator", {"/catalog"}, {"/datasets/upload", "/datasets/review-queue"}),
    ],
)
def test_navigation_links_per_role(client, member, login, kind, present, absent):
    login(member(kind))
    nav = _html(client.get("/dashboard")).split('<nav class="mainnav">')[1].split("</nav>")[0]
    links = set(re.findall(r'href="([^"]+)"', nav))
    assert present <= links and not absent & links


# -- escaping -----------------------------------------------------------------------------------


def test_titles_and_descriptions_are_escaped_on_every_page(
    client, make_dataset, make_org, member, login
):
    owner = make_org("department")
    listed = make_dataset(title=XSS_TITLE, description=XSS_DESCRIPTION, department=owner)
    pending = make_dataset(
        title=XSS_TITLE + " 待审",
        description=XSS_DESCRIPTION,
        status="pending_review",
        department=owner,
        report_warnings=[XSS_DESCRIPTION],
    )
    pending.versions[-1].review_comment = XSS_TITLE
    db.session.commit()
    pages = {
        "catalogue": "/catalog",
        "search": "/catalog?q=script",
        "detail": f"/datasets/{listed.id}",
    }
    for name, path in pages.items():
        _assert_escaped(client.get(path), name)
    login(member("department", org=owner))
    for path in (
        "/datasets/mine",
        "/dashboard",
        f"/datasets/{pending.id}",
        f"/datasets/{listed.id}",
    ):
        _assert_escaped(client.get(path), path)
    login(member("operator"))
    for path in ("/datasets/review-queue", "/dashboard", f"/datasets/{pending.id}"):
        _assert_escaped(client.get(path), path)
    login(member("buyer"))
    _assert_escaped(client.get(f"/datasets/{listed.id}"), "buyer detail")


def _assert_escaped(response, where):
    html = _html(response)
    assert "<script>alert(1)</script>" not in html, where
    assert "<img src=x onerror" not in html, where
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, where
