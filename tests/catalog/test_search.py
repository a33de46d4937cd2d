"""Catalogue search: listed only, text search, filters, facets, sorting and pagination."""

from __future__ import annotations

import pytest

from market.datasets import catalog
from tests.catalog.conftest import Col


def _ids(body) -> set[int]:
    return {item["id"] for item in body["items"]}


def test_lists_only_listed_datasets(client, make_dataset):
    listed = make_dataset()
    hidden = [
        make_dataset(status=s) for s in ("processing", "pending_review", "rejected", "refused")
    ]
    relisting = make_dataset(versions=["listed", "pending_review"])
    body = client.get("/api/v1/datasets").get_json()
    assert _ids(body) == {listed.id, relisting.id}
    assert body["total"] == 2 and body["page"] == 1
    assert not _ids(body) & {d.id for d in hidden}
    item = next(i for i in body["items"] if i["id"] == relisting.id)
    # Figures come from the listed version, not the one awaiting review.
    assert item["version"] == 1 and item["status"] == "listed"


def test_item_fields(client, make_dataset, make_org):
    dept = make_org("department", name="上海市税务局")
    d = make_dataset(
        department=dept, quality=93, row_count=4321, category="tax", grade="conditional"
    )
    (item,) = client.get("/api/v1/datasets").get_json()["items"]
    assert item["id"] == d.id
    assert item["department"] == {"id": dept.id, "name": "上海市税务局"}
    assert item["quality_score"] == 93 and item["quality_band"] == "excellent"
    assert item["row_count"] == 4321 and item["open_grade"] == "conditional"
    assert item["category"] == "tax" and item["updated_at"].startswith("2026-10-02")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("纳税", {"tax"}),  # title
        ("信用等级", {"tax"}),  # description
        ("法院", {"court"}),  # department name
        ("裁判文书号", {"court"}),  # a column name
        ("judicial", {"court"}),  # category code
        ("企业 月度", {"tax"}),  # every word must match
        ("企业 不存在的词", set()),
        ("100%", set()),  # LIKE wildcards are literal
        ("_", set()),
    ],
)
def test_text_search(client, make_dataset, make_org, q, expected):
    made = {
        "tax": make_dataset(
            title="企业月度纳税信息",
            description="按所属期汇总的实缴税额及纳税信用等级",
            category="tax",
        ),
        "court": make_dataset(
            title="涉诉裁判信息",
            description="已公开的一审判决",
            category="judicial",
            department=make_org("department", name="上海市高级人民法院"),
            columns=[
                Col(
                    "统一社会信用代码",
                    pii_kind="credit_code",
                    treatment="pseudonymized",
                    role="entity_key",
                ),
                Col("裁判文书号", role="identifier"),
            ],
        ),
    }
    body = client.get("/api/v1/datasets", query_string={"q": q}).get_json()
    assert _ids(body) == {made[k].id for k in expected}


def test_filters(client, make_dataset, make_org):
    a_dept, b_dept = make_org("department"), make_org("department")
    tax = make_dataset(category="tax", department=a_dept, quality=95, grade="conditional")
    reg = make_dataset(category="enterprise_registry", department=a_dept, quality=80)
    env = make_dataset(category="environment", department=b_dept, quality=55)
    unscored = make_dataset(category="environment", department=b_dept, quality=None)

    def ids(**args):
        return _ids(client.get("/api/v1/datasets", query_string=args).get_json())

    assert ids(category="tax") == {tax.id}
    assert ids(department_id=b_dept.id) == {env.id, unscored.id}
    assert ids(open_grade="conditional") == {tax.id}
    assert ids(open_grade="open") == {reg.id, env.id, unscored.id}
    assert ids(min_quality=80) == {tax.id, reg.id}
    assert ids(min_quality=96) == set()
    assert ids(quality_band="poor") == {env.id}
    assert ids(quality_band="unscored") == {unscored.id}
    assert ids(category="environment", min_quality=50) == {env.id}
    assert ids(category="no_such_category") == set()


@pytest.mark.parametrize(
    "args",
    [
        {"min_quality": 101},
        {"min_quality": -1},
        {"open_grade": "restricted"},
        {"quality_band": "great"},
        {"sort": "price"},
        {"per_page": 1000},
        {"page": 0},
    ],
)
def test_invalid_filters_are_422(client, args):
    r = client.get("/api/v1/datasets", query_string=args)
    assert r.status_code == 422
    assert set(r.get_json()["errors"]) == set(args)


def test_facets_are_disjunctive(client, make_dataset, make_org):
    dept = make_org("department", name="市场监管局")
    make_dataset(category="tax", quality=95)
    make_dataset(category="tax", quality=70, department=dept)
    make_dataset(category="environment", quality=82, department=dept)
    make_dataset(category="environment", status="pending_review")  # never counted

    facets = client.get("/api/v1/datasets").get_json()["facets"]
    assert {f["value"]: f["count"] for f in facets["category"]} == {"tax": 2, "environment": 1}
    assert {f["value"]: f["count"] for f in facets["quality_band"]} == {
        "excellent": 1,
        "good": 1,
        "fair": 1,
    }
    assert [f["value"] for f in facets["quality_band"]] == ["excellent", "good", "fair"]
    dept_facet = {f["label"]: f["count"] for f in facets["department"]}
    assert dept_facet["市场监管局"] == 2

    # Picking a category narrows the other facets but keeps every category's own count.
    facets = client.get("/api/v1/datasets", query_string={"category": "tax"}).get_json()["facets"]
    assert {f["value"]: f["count"] for f in facets["category"]} == {"tax": 2, "environment": 1}
    assert {f["value"]: f["count"] for f in facets["quality_band"]} == {"excellent": 1, "fair": 1}
    assert {f["label"]: f["count"] for f in facets["department"]}["市场监管局"] == 1
    assert {f["value"]: f["count"] for f in facets["grade"]} == {"open": 2}


def test_pagination_covers_every_result_once(client, make_dataset):
    made = {make_dataset().id for _ in range(5)}
    seen: list[int] = []
    for page in (1, 2, 3):
        body = client.get("/api/v1/datasets", query_string={"page": page, "per_page": 2}).get_json()
        assert body["total"] == 5 and body["per_page"] == 2
        assert len(body["items"]) == (2 if page < 3 else 1)
        seen += [i["id"] for i in body["items"]]
    assert len(seen) == 5 and set(seen) == made
    beyond = client.get("/api/v1/datasets", query_string={"page": 9, "per_page": 2}).get_json()
    assert beyond["items"] == [] and beyond["total"] == 5


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("quality", lambda d: -(d["quality"] or -1)),
        ("title", lambda d: d["title"]),
        ("rows", lambda d: -d["rows"]),
    ],
)
def test_sorting(client, make_dataset, sort, key):
    specs = [
        {"title": "B", "quality": 70, "rows": 10},
        {"title": "A", "quality": 90, "rows": 5},
        {"title": "C", "quality": None, "rows": 50},
    ]
    made = {
        make_dataset(title=s["title"], quality=s["quality"], row_count=s["rows"]).id: s
        for s in specs
    }
    body = client.get("/api/v1/datasets", query_string={"sort": sort}).get_json()
    got = [made[i["id"]]["title"] for i in body["items"]]
    assert got == [s["title"] for s in sorted(specs, key=key)]


def test_default_order_is_most_recently_updated(client, make_dataset):
    import datetime as dt

    old = make_dataset(processed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    new = make_dataset(processed_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    body = client.get("/api/v1/datasets").get_json()
    assert [i["id"] for i in body["items"]] == [new.id, old.id]


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (None, "unscored"),
        (0, "poor"),
        (59, "poor"),
        (60, "fair"),
        (74, "fair"),
        (75, "good"),
        (89, "good"),
        (90, "excellent"),
        (100, "excellent"),
    ],
)
def test_quality_bands(score, band):
    assert catalog.quality_band(score) == band


def test_search_service_counts_without_facets(app, make_dataset):
    from market.extensions import db

    for _ in range(3):
        make_dataset(category="tax")
    page = catalog.search(
        db.session, catalog.CatalogQuery(category="tax", per_page=2), facets=False
    )
    assert page.total == 3 and page.pages == 2 and len(page.items) == 2 and page.facets == {}
    # An unknown sort falls back to the default instead of failing.
    assert catalog.search(db.session, catalog.CatalogQuery(sort="bogus")).total == 3
