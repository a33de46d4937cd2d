""""Datasets listed" for a past month comes from the audited listing history, not from today's
listings: a dataset listed last month and withdrawn this month still counts for last month; a
dataset listed this month does not count for last month."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from market.quotes.revenue import current_period, period_bounds
from tests.quotes.conftest import make_dataset  # noqa: F401  (fixture)


def _previous(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def _kpis(client, headers, period: str) -> dict:
    r = client.get(f"/api/v1/reports/{period}", headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["report"]["kpis"]


@pytest.fixture
def two_months(client, as_role, make_user, auth_header, make_dataset, monkeypatch):  # noqa: F811
    _, operator = as_role("operator")
    _, regulator = as_role("regulator")
    dept_user = make_user("department")
    dept = auth_header(dept_user)
    this = current_period()
    last = _previous(this)
    last_start, last_end = period_bounds(last)
    mid_last = last_start + (last_end - last_start) / 2

    def review(dataset_id: int) -> None:
        r = client.post(f"/api/v1/datasets/{dataset_id}/review",
                        json={"decision": "approve", "comment": ""}, headers=operator)
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["status"] == "listed"

    before = {p: _kpis(client, regulator, p) for p in (last, this)}
    old = make_dataset(status="pending_review", department=dept_user.organization)
    new = make_dataset(status="pending_review", department=dept_user.organization)
    # The first listing happened last month: its audit event carries last month's time.
    with monkeypatch.context() as m:
        m.setattr("market.audit.services.utcnow", lambda: mid_last)
        review(old.id)
    review(new.id)
    # ... and this month the department withdrew it (delisted, through the real service).
    r = client.post(f"/api/v1/datasets/{old.id}/withdraw", json={"reason": "数据停止更新"},
                    headers=dept)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "withdrawn"
    return regulator, last, this, before


def test_a_past_month_counts_what_was_listed_then(client, two_months):
    regulator, last, this, before = two_months
    earlier = _kpis(client, regulator, last)
    # Last month: the withdrawn dataset was listed (today's listings would say it is not),
    # the one listed this month was not yet.
    assert earlier["datasets_listed"] == before[last]["datasets_listed"] + 1
    assert earlier["datasets_listed_during_month"] == (
        before[last]["datasets_listed_during_month"] + 1)
    now = _kpis(client, regulator, this)
    # This month: listed at the end, only the new one; listed at some time, both.
    assert now["datasets_listed"] == before[this]["datasets_listed"] + 1
    assert now["datasets_listed_during_month"] == before[this]["datasets_listed_during_month"] + 2


def test_the_replay_of_the_history(app, monkeypatch):
    """The replay itself, on a hand-made history: listed, delisted, relisted, withdrawn."""
    from market.accounts.actor import Actor
    from market.audit import services as audit
    from market.audit.models import AuditEvent
    from market.extensions import db
    from market.reports.services import listing_history

    t0 = dt.datetime(2020, 3, 1, tzinfo=dt.UTC)
    history = [  # (days after t0, event, dataset)
        (1, "dataset.listed", 9001), (2, "dataset.listed", 9002), (3, "dataset.listed", 9003),
        (40, "dataset.delisted", 9001), (45, "dataset.withdrawn", 9002),
        (50, "dataset.relisted", 9001), (70, "dataset.listed", 9004),
        (75, "dataset.withdrawn", 9004),
    ]
    actor = Actor.system("test")
    for days, type_, dataset_id in history:
        at = t0 + dt.timedelta(days=days)
        monkeypatch.setattr("market.audit.services.utcnow", lambda at=at: at)
        audit.record(db.session, type_, actor, ("dataset", dataset_id), {})
    monkeypatch.undo()
    db.session.flush()
    head = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    ours = {9001, 9002, 9003, 9004}

    def replay(start_day: int, end_day: int) -> tuple[set[int], set[int]]:
        at_end, during = listing_history(db.session, t0 + dt.timedelta(days=start_day),
                                         t0 + dt.timedelta(days=end_day), head)
        return at_end & ours, during & ours

    assert replay(0, 30) == ({9001, 9002, 9003}, {9001, 9002, 9003})
    # Days 30-60: 9001 off then on again, 9002 withdrawn.
    assert replay(30, 60) == ({9001, 9003}, {9001, 9002, 9003})
    # Days 60-90: 9004 listed and withdrawn within the month.
    assert replay(60, 90) == ({9001, 9003}, {9001, 9003, 9004})
    assert replay(90, 120) == ({9001, 9003}, {9001, 9003})
    # Before anything was listed.
    assert replay(-30, 0) == (set(), set())
