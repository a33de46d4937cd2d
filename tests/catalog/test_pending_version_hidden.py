"""#14.7: a listed dataset with a new version awaiting review shows non-owners only what was
listed — never the pending version's row count, quality or refusal reasons (API and page)."""

from __future__ import annotations

import pytest

from market.extensions import db


@pytest.fixture
def listed_with_pending(make_dataset, make_org):
    owner = make_org("department")
    dataset = make_dataset(versions=["listed", "pending_review"], department=owner, row_count=1000)
    pending = dataset.versions[-1]
    # The pending version's figures differ from the listed one's, so a leak shows.
    pending.row_count = 777_001
    pending.quality_score = 13
    pending.quality = {"score": 13, "dimensions": {"completeness": 13.0}}
    db.session.commit()
    return dataset, owner


def _headers(kind, owner, api_as):
    if kind == "anonymous":
        return {}
    return api_as("department", org=owner) if kind == "owner" else api_as(kind)


@pytest.mark.parametrize("kind", ["anonymous", "buyer", "department"])
def test_non_owners_see_only_listed_versions(client, api_as, listed_with_pending, kind):
    dataset, owner = listed_with_pending
    r = client.get(f"/api/v1/datasets/{dataset.id}", headers=_headers(kind, owner, api_as))
    assert r.status_code == 200
    body = r.get_json()
    text = r.get_data(as_text=True)
    assert "777001" not in text and "pending_review" not in text
    assert body["version"] == 1 and body["row_count"] == 1000
    assert body["latest_version"]["version"] == 1
    assert body["latest_version"]["status"] == "listed"
    assert [v["version"] for v in body["versions"]] == [1]
    assert body["refusal_reasons"] == []


@pytest.mark.parametrize("kind", ["owner", "operator", "regulator"])
def test_insiders_still_see_the_pending_version(client, api_as, listed_with_pending, kind):
    dataset, owner = listed_with_pending
    body = client.get(
        f"/api/v1/datasets/{dataset.id}", headers=_headers(kind, owner, api_as)
    ).get_json()
    assert body["latest_version"]["version"] == 2
    assert body["latest_version"]["row_count"] == 777_001


@pytest.mark.parametrize("kind", ["anonymous", "buyer"])
def test_page_hides_the_pending_version(client, login, member, listed_with_pending, kind):
    dataset, _owner = listed_with_pending
    if kind != "anonymous":
        login(member(kind))
    r = client.get(f"/datasets/{dataset.id}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "777,001" not in html and "777001" not in html
    assert "pending_review" not in html
