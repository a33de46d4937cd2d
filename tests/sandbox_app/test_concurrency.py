"""Concurrent queries with real commits (``live_app``): the quota and the privacy budget are
never overspent. Run on PostgreSQL too: ``MARKET_TEST_DB=postgres``."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from decimal import Decimal

import sqlalchemy as sa

from tests.sandbox_app import data


def _seed(app, *, quota: int, budget: str | None = None, dp: bool = False) -> tuple[int, str]:
    """A buyer with a token and an active license over ``loans``; committed."""
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.extensions import db

    with app.app_context():
        buyer = data.org(db.session, "buyer")
        user = accounts.create_user(
            db.session,
            Actor.system("test"),
            email=f"conc{buyer.id}@buyer.sandbox.example.cn",
            password="long-password-1",
            organization_id=buyer.id,
            check=False,
        )
        ds = data.dataset(
            db.session, app.config["MARKET_DATA_DIR"], "loans", dp_budget="5" if dp else None
        )
        lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=quota, budget=budget)
        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        return lic.id, token


def _hammer(app, license_id: int, token: str, sqls: list[str]) -> list[int]:
    barrier = threading.Barrier(len(sqls))
    codes: list[int] = [0] * len(sqls)

    def worker(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post(
            f"/api/v1/sandbox/{license_id}/queries",
            json={"sql": sqls[i]},
            headers={"Authorization": f"Bearer {token}"},
        )
        codes[i] = r.status_code

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(sqls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return codes


def _state(app, license_id: int):
    from licenses.models import License
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys
    from sandbox.models import SandboxQuery

    with app.app_context():
        lic = db.session.get(License, license_id)
        log = Counter(
            (q.status, q.rule)
            for q in db.session.scalars(
                sa.select(SandboxQuery).where(SandboxQuery.license_id == license_id)
            )
        )
        events = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.type == "sandbox.query")
        )
        valid = verify_chain(db.session, public_keys()).valid
        return lic.quota_remaining, lic.privacy_budget_remaining, log, events, valid


def test_fifty_concurrent_queries_against_a_quota_of_ten(live_app):
    from sandbox import app_engine

    license_id, token = _seed(live_app, quota=10)
    sql = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"
    try:
        codes = _hammer(live_app, license_id, token, [sql] * 50)
    finally:
        app_engine.close_engine(live_app)
    assert Counter(codes) == {200: 10, 429: 40}
    quota, _, log, events, valid = _state(live_app, license_id)
    assert quota == 0
    assert log == {("ok", None): 10, ("refused", "quota_exhausted"): 40}
    assert events == 50 and valid


def test_concurrent_new_questions_never_overspend_the_privacy_budget(live_app):
    from sandbox import app_engine

    license_id, token = _seed(live_app, quota=100, budget="1.0", dp=True)
    sqls = [
        f"SELECT district, COUNT(*) AS n FROM loans WHERE industry <> 'x{i}' GROUP BY district"
        for i in range(12)
    ]
    try:
        codes = _hammer(live_app, license_id, token, sqls)
    finally:
        app_engine.close_engine(live_app)
    assert Counter(codes) == {200: 2, 429: 10}  # epsilon 0.5 each, budget 1.0
    quota, budget, log, _, valid = _state(live_app, license_id)
    assert budget == Decimal(0) and quota == 98  # refused queries gave their unit back
    assert log == {("ok", None): 2, ("refused", "privacy_budget_exhausted"): 10}
    assert valid
