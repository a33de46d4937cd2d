"""The red and black lists (红黑榜): the regulator keeps them with a reason, a term and an audit
event; anyone reads them; black-listed buyers are refused (and an expired term ends it);
red-listed buyers get a quota bonus and a fast-track flag in the review queue."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from market.audit.models import AuditEvent
from market.extensions import db
from tests.licenses_app.conftest import apply


def _events(prefix: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type.startswith(prefix)).order_by(AuditEvent.seq)
    ))


def _future(days: int = 30) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def test_anyone_reads_both_lists(client):
    r = client.get("/api/v1/lists")
    assert r.status_code == 200
    assert set(r.get_json()) == {"red", "black"}


def test_regulator_lists_a_buyer_red_and_black(client, market):
    buyer = market.buyer.org
    other = market.party("buyer").org
    r = client.post("/api/v1/lists/red", headers=market.regulator.headers,
                    json={"organization_id": buyer.id, "reason": "守信激励", "until": _future()})
    assert r.status_code == 201, r.get_json()
    r = client.post("/api/v1/lists/black", headers=market.regulator.headers,
                    json={"organization_id": other.id, "reason": "违规使用数据"})
    assert r.status_code == 201, r.get_json()
    got = client.get("/api/v1/lists").get_json()
    (red,) = got["red"]
    assert red["organization"]["id"] == buyer.id and red["kind"] == "buyer"
    assert red["reason"] == "守信激励" and red["until"] and red["since"]
    (black,) = got["black"]
    assert black["organization"]["id"] == other.id and black["until"] is None
    types = [e.type for e in _events("lists.")]
    assert types == ["lists.added", "lists.added"]
    # The existing blacklist API sees the black listing: one source of truth.
    legacy = client.get("/api/v1/blacklist", headers=market.regulator.headers).get_json()
    assert [e["organization"]["id"] for e in legacy["items"]] == [other.id]


def test_subjects_can_be_listed(client, market):
    r = client.post("/api/v1/lists/black", headers=market.regulator.headers,
                    json={"subject": "某违规数据产品项目", "reason": "超范围使用"})
    assert r.status_code == 201, r.get_json()
    entry = r.get_json()
    assert entry["organization"] is None and entry["kind"] == "subject"
    r = client.delete(f"/api/v1/lists/black/subjects/{entry['id']}",
                      headers=market.regulator.headers, json={"reason": "已整改"})
    assert r.status_code == 204
    assert client.get("/api/v1/lists").get_json()["black"] == []


@pytest.mark.parametrize("kind", ["buyer", "department", "operator", "subject"])
def test_only_the_regulator_changes_the_lists(client, market, kind):
    party = market.party(kind)
    target = market.party("buyer").org
    r = client.post("/api/v1/lists/red", headers=party.headers,
                    json={"organization_id": target.id, "reason": "x"})
    assert r.status_code == 403
    assert client.get("/api/v1/lists").get_json()["red"] == []


def test_anonymous_cannot_write(client, market):
    target = market.party("buyer").org
    r = client.post("/api/v1/lists/red", json={"organization_id": target.id, "reason": "x"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x"}, "organization_id"),  # neither organization nor subject
        ({"organization_id": 1, "subject": "s", "reason": "x"}, "organization_id"),  # both
        ({"subject": "s", "reason": "   "}, "reason"),
        ({"subject": "s", "reason": "x", "until": "2000-01-01T00:00:00+00:00"}, "until"),
    ],
)
def test_invalid_entries(client, market, body, field):
    r = client.post("/api/v1/lists/red", headers=market.regulator.headers, json=body)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]


def test_platform_organizations_cannot_be_listed(client, market):
    r = client.post("/api/v1/lists/black", headers=market.regulator.headers,
                    json={"organization_id": market.operator.org.id, "reason": "x"})
    assert r.status_code == 422


def test_unknown_list_is_404(client, market):
    r = client.post("/api/v1/lists/grey", headers=market.regulator.headers,
                    json={"subject": "s", "reason": "x"})
    assert r.status_code == 404


def test_twice_on_the_same_list_is_a_conflict(client, market):
    body = {"organization_id": market.buyer.org.id, "reason": "x"}
    assert client.post("/api/v1/lists/red", headers=market.regulator.headers,
                       json=body).status_code == 201
    assert client.post("/api/v1/lists/red", headers=market.regulator.headers,
                       json=body).status_code == 409


def test_black_listed_buyer_is_refused_until_the_term_ends(client, market):
    dataset = market.dataset()
    r = client.post("/api/v1/lists/black", headers=market.regulator.headers,
                    json={"organization_id": market.buyer.org.id, "reason": "违规",
                          "until": _future(1)})
    assert r.status_code == 201
    refused = apply(client, market, market.quote([(dataset, 1000)]))
    assert refused.status_code == 403

    # The term passes: the listing has ended, the buyer applies again.
    from licenses.models import BlacklistEntry

    entry = db.session.scalar(sa.select(BlacklistEntry))
    entry.until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/lists").get_json()["black"] == []
    ok = apply(client, market, market.quote([(dataset, 1000)]))
    assert ok.status_code == 201, ok.get_json()
    # And a new listing replaces the expired one.
    again = client.post("/api/v1/lists/black", headers=market.regulator.headers,
                        json={"organization_id": market.buyer.org.id, "reason": "再次违规"})
    assert again.status_code == 201


def test_removal_is_audited_and_needs_a_reason(client, market):
    org = market.buyer.org.id
    client.post("/api/v1/lists/red", headers=market.regulator.headers,
                json={"organization_id": org, "reason": "x"})
    r = client.delete(f"/api/v1/lists/red/{org}", headers=market.regulator.headers, json={})
    assert r.status_code == 422
    r = client.delete(f"/api/v1/lists/red/{org}", headers=market.regulator.headers,
                      json={"reason": "期满"})
    assert r.status_code == 204
    assert _events("lists.")[-1].type == "lists.removed"
    r = client.delete(f"/api/v1/lists/red/{org}", headers=market.regulator.headers,
                      json={"reason": "again"})
    assert r.status_code == 404


def test_black_removal_through_the_lists_api(client, market):
    org = market.buyer.org.id
    client.post("/api/v1/lists/black", headers=market.regulator.headers,
                json={"organization_id": org, "reason": "x"})
    r = client.delete(f"/api/v1/lists/black/{org}", headers=market.regulator.headers,
                      json={"reason": "整改完成"})
    assert r.status_code == 204
    assert [e.type for e in _events("blacklist.")] == ["blacklist.added", "blacklist.removed"]


def test_red_listed_buyer_gets_the_quota_bonus(client, market, app):
    app.config["MARKET_RED_LIST_QUOTA_BONUS_PERCENT"] = 20
    dataset = market.dataset()
    plain = apply(client, market, market.quote([(dataset, 1000)], query_quota=1000)).get_json()
    assert plain["scope"]["query_quota"] == 1000
    client.post("/api/v1/lists/red", headers=market.regulator.headers,
                json={"organization_id": market.buyer.org.id, "reason": "守信"})
    bonus = apply(client, market, market.quote([(dataset, 1000)], query_quota=1000)).get_json()
    assert bonus["scope"]["query_quota"] == 1200 and bonus["quota_remaining"] == 1200
    applied = _events("license.applied")[-1]
    assert applied.data["red_list_quota_bonus"] == 200


def test_an_expired_red_listing_gives_nothing(client, market):
    from market.governance.models import ListEntry

    client.post("/api/v1/lists/red", headers=market.regulator.headers,
                json={"organization_id": market.buyer.org.id, "reason": "守信",
                      "until": _future(1)})
    entry = db.session.scalar(sa.select(ListEntry))
    entry.until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    dataset = market.dataset()
    lic = apply(client, market, market.quote([(dataset, 1000)], query_quota=1000)).get_json()
    assert lic["scope"]["query_quota"] == 1000
    assert client.get("/api/v1/lists").get_json()["red"] == []


def test_fast_track_flag_in_the_review_queue(client, market, login):
    dataset = market.dataset(grade="conditional")
    red_buyer = market.party("buyer")
    client.post("/api/v1/lists/red", headers=market.regulator.headers,
                json={"organization_id": red_buyer.org.id, "reason": "守信"})
    # The plain application comes first in time; the red-listed one is reviewed first.
    plain_lic = apply(client, market, market.quote([(dataset, 1000)])).get_json()
    red_lic = apply(client, market, market.quote([(dataset, 1000)], buyer=red_buyer.org),
                    party=red_buyer).get_json()
    assert red_lic["status"] == plain_lic["status"] == "pending_review"
    login(market.operator.user)
    page = client.get("/licenses/review").get_data(as_text=True)
    assert f'data-testid="fast-track-{red_lic["id"]}"' in page
    assert f'data-testid="fast-track-{plain_lic["id"]}"' not in page
    assert page.index(f'data-testid="review-{red_lic["id"]}"') < page.index(
        f'data-testid="review-{plain_lic["id"]}"'
    )


def test_public_page_shows_both_lists_to_anonymous(client, market):
    client.post("/api/v1/lists/red", headers=market.regulator.headers,
                json={"organization_id": market.buyer.org.id, "reason": "守信激励"})
    client.post("/api/v1/lists/black", headers=market.regulator.headers,
                json={"subject": "违规项目甲", "reason": "超范围"})
    page = client.get("/lists")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "守信激励" in text and "违规项目甲" in text
    assert 'data-testid="list-add-form"' not in text  # only the regulator gets the form


def test_anonymous_cannot_post_the_page_form(client):
    r = client.post("/lists", data={"list_name": "red", "subject": "x", "reason": "y"})
    assert r.status_code in (400, 403)  # CSRF or role: never a listing
    assert client.get("/api/v1/lists").get_json()["red"] == []


def test_regulator_lists_through_the_page(client, market, login):
    login(market.regulator.user)
    page = client.get("/lists").get_data(as_text=True)
    assert 'data-testid="list-add-form"' in page
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    token = token or re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"list_name": "red", "organization_id": str(market.buyer.org.id), "subject": "",
            "reason": "守信", "until": "", "csrf_token": token.group(1) if token else ""}
    r = client.post("/lists", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    assert client.get("/api/v1/lists").get_json()["red"][0]["reason"] == "守信"
