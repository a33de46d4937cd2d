"""Who may read a dataset: listed ones are public; others only for their department, the
operator and the regulator — everyone else gets 404, as if the dataset did not exist."""

from __future__ import annotations

import pytest

API_FIELDS = {
    "status",
    "refusal_reasons",
    "department",
    "row_count",
    "columns",
    "quality",
    "k_anonymity",
    "version",
    "versions",
    "title",
    "description",
    "category",
    "open_grade",
    "update_frequency",
}


@pytest.fixture
def pending(make_dataset, make_org):
    owner = make_org("department")
    return make_dataset(status="pending_review", department=owner), owner


def _headers_for(kind, owner, api_as):
    if kind == "anonymous":
        return {}
    return api_as("department", org=owner) if kind == "owner" else api_as(kind)


@pytest.mark.parametrize(
    ("kind", "visible"),
    [
        ("anonymous", False),
        ("buyer", False),
        ("department", False),
        ("subject", False),
        ("owner", True),
        ("operator", True),
        ("regulator", True),
    ],
)
@pytest.mark.parametrize("suffix", ["", "/preview"])
def test_unlisted_dataset_api(client, api_as, pending, kind, visible, suffix):
    dataset, owner = pending
    headers = _headers_for(kind, owner, api_as)
    r = client.get(f"/api/v1/datasets/{dataset.id}{suffix}", headers=headers)
    assert r.status_code == (200 if visible else 404)
    if not visible:
        assert r.get_json()["message"] == "No such dataset."  # same as a missing id
        missing = client.get(f"/api/v1/datasets/{dataset.id + 999}{suffix}", headers=headers)
        assert missing.status_code == 404 and missing.get_json() == r.get_json()


@pytest.mark.parametrize(
    ("kind", "visible"),
    [
        ("anonymous", False),
        ("buyer", False),
        ("department", False),
        ("owner", True),
        ("operator", True),
        ("regulator", True),
    ],
)
def test_unlisted_dataset_page(client, login, member, pending, kind, visible):
    dataset, owner = pending
    if kind != "anonymous":
        login(member("department", org=owner) if kind == "owner" else member(kind))
    r = client.get(f"/datasets/{dataset.id}")
    assert r.status_code == (200 if visible else 404)
    assert (dataset.title in r.get_data(as_text=True)) is visible


def test_listed_dataset_is_public_with_api_fields(client, make_dataset):
    d = make_dataset()
    body = client.get(f"/api/v1/datasets/{d.id}").get_json()
    assert API_FIELDS <= set(body)
    assert body["status"] == "listed" and body["version"] == 1 and body["row_count"] == 1000
    assert body["department"]["id"] == d.department_id
    assert body["quality"]["score"] == 85
    assert set(body["quality"]["dimensions"]) == {
        "completeness",
        "validity",
        "uniqueness",
        "consistency",
        "timeliness",
    }
    assert body["k_anonymity"] == 12 and body["refusal_reasons"] == []
    by_name = {c["name"]: c for c in body["columns"]}
    key = by_name["统一社会信用代码"]
    assert (key["type"], key["pii_kind"], key["treatment"]) == (
        "string",
        "credit_code",
        "pseudonymized",
    )
    assert by_name["行业"]["pii_kind"] is None and by_name["行业"]["treatment"] == "none"
    assert client.get(f"/datasets/{d.id}").status_code == 200


def test_version_history_depends_on_who_asks(client, make_dataset, make_org, api_as):
    owner = make_org("department")
    d = make_dataset(
        department=owner, versions=["superseded", "listed", "rejected", "pending_review"]
    )
    public = client.get(f"/api/v1/datasets/{d.id}").get_json()
    assert [v["version"] for v in public["versions"]] == [2, 1]
    assert public["version"] == 2  # the listed version describes the dataset
    for kind in ("owner", "operator", "regulator"):
        headers = api_as("department", org=owner) if kind == "owner" else api_as(kind)
        body = client.get(f"/api/v1/datasets/{d.id}", headers=headers).get_json()
        assert [v["version"] for v in body["versions"]] == [4, 3, 2, 1]
        assert [v["status"] for v in body["versions"]][:2] == ["pending_review", "rejected"]


def test_refused_dataset_shows_reasons_to_its_department(client, make_dataset, make_org, api_as):
    owner = make_org("department")
    d = make_dataset(status="refused", department=owner)
    headers = api_as("department", org=owner)
    body = client.get(f"/api/v1/datasets/{d.id}", headers=headers).get_json()
    assert body["status"] == "refused" and body["refusal_reasons"]
    assert client.get(f"/api/v1/datasets/{d.id}").status_code == 404
