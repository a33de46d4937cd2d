"""Concurrent queries with real commits (``live_app``): the quota and the privacy budget are
never overspent. Run on PostgreSQL too: ``MARKET_TEST_DB=postgres``."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from decimal import Decimal

import sqlalchemy as sa

from tests.sandbox_app import data


def _seed(app, *, quota: int, budget: str | None = None) -> tuple[int, str]:
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
            db.session, app.config["MARKET_DATA_DIR"], "loans", dp_budget=budget or "100"
        )
        lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=quota)
        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        return lic.id, token


def _hammer(
    app, license_id: int, token: str, sqls: list[str], bodies: list | None = None
) -> list[int]:
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
        if bodies is not None:
            bodies.append(r.get_json())

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
    from sandbox.models import PrivacySpending, SandboxQuery

    with app.app_context():
        lic = db.session.get(License, license_id)
        spent = db.session.scalar(
            sa.select(PrivacySpending.epsilon_spent).where(
                PrivacySpending.buyer_org_id == lic.buyer_org_id
            )
        )
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
        return lic.quota_remaining, Decimal(str(spent or 0)), log, events, valid


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

    license_id, token = _seed(live_app, quota=100, budget="1.0")
    sqls = [
        f"SELECT district, COUNT(*) AS n FROM loans WHERE industry <> 'x{i}' GROUP BY district"
        for i in range(12)
    ]
    try:
        codes = _hammer(live_app, license_id, token, sqls)
    finally:
        app_engine.close_engine(live_app)
    assert Counter(codes) == {200: 2, 429: 10}  # epsilon 0.5 each, budget 1.0
    quota, spent, log, _, valid = _state(live_app, license_id)
    assert spent == Decimal("1.0") and quota == 98  # refused queries gave their unit back
    assert log == {("ok", None): 2, ("refused", "privacy_budget_exhausted"): 10}
    assert valid


def test_the_same_new_question_at_once_gets_one_answer(live_app):
    """Several first askers of one question at once: every answer is the one stored release
    (whoever stored it first), so comparing them reveals nothing."""
    from sandbox import app_engine

    license_id, token = _seed(live_app, quota=100)
    sql = "SELECT industry, COUNT(*) AS n FROM loans GROUP BY industry"
    bodies: list = []
    try:
        codes = _hammer(live_app, license_id, token, [sql] * 6, bodies)
    finally:
        app_engine.close_engine(live_app)
    assert codes == [200] * 6
    assert len({repr(b["rows"]) for b in bodies}) == 1
    _, _, log, events, valid = _state(live_app, license_id)
    assert log == {("ok", None): 6} and events == 6 and valid


def _two_buyers_on_one_dataset(app, *, quota: int = 100) -> list[tuple[int, str, int]]:
    """Two buyer organizations with a license each over the same ``loans`` dataset (so the
    same question has the same release key for both); committed. [(license, token, org)]"""
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.extensions import db

    out = []
    with app.app_context():
        ds = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "loans", dp_budget="100")
        for _ in range(2):
            buyer = data.org(db.session, "buyer")
            user = accounts.create_user(
                db.session,
                Actor.system("test"),
                email=f"flight{buyer.id}@buyer.sandbox.example.cn",
                password="long-password-1",
                organization_id=buyer.id,
                check=False,
            )
            lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=quota)
            token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
            out.append((lic.id, token, buyer.id))
        db.session.commit()
    return out


def test_the_same_new_question_at_once_is_one_release_and_one_charge(live_app, monkeypatch):
    """Attack: eight requests of one new question at once, from two buyer organizations. Each
    fresh noisy draw of the same question would be a new sample to average, and each charge
    spends budget for nothing. Exactly one request makes the release (one engine run, one
    noisy draw, one charge of epsilon); the others wait for it and get the stored answer free.
    """
    from market.extensions import db
    from sandbox import app_engine, runner
    from sandbox.models import (
        PrivacySpending,
        SandboxQuery,
        SandboxRelease,
        SandboxReleaseClaim,
        VersionSpending,
    )

    engine_runs: list[str] = []
    real_postprocess = runner.postprocess

    def counting_postprocess(checked, raw, *, noise=None):
        engine_runs.append(checked.release_key)
        return real_postprocess(checked, raw, noise=noise)

    monkeypatch.setattr(runner, "postprocess", counting_postprocess)
    (lic_a, tok_a, org_a), (lic_b, tok_b, org_b) = _two_buyers_on_one_dataset(live_app)
    sql = "SELECT industry, COUNT(*) AS n, SUM(amount) AS total FROM loans GROUP BY industry"
    n = 8
    barrier = threading.Barrier(n)
    bodies: list = [None] * n
    codes = [0] * n

    def worker(i: int) -> None:
        lic, token = (lic_a, tok_a) if i % 2 == 0 else (lic_b, tok_b)
        client = live_app.test_client()
        barrier.wait()
        r = client.post(
            f"/api/v1/sandbox/{lic}/queries",
            json={"sql": sql},
            headers={"Authorization": f"Bearer {token}"},
        )
        codes[i], bodies[i] = r.status_code, r.get_json()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        app_engine.close_engine(live_app)

    assert codes == [200] * n, bodies
    assert len(engine_runs) == 1  # one noisy draw
    assert len({repr(b["rows"]) for b in bodies}) == 1
    assert sorted(b["cached"] for b in bodies) == [False] + [True] * (n - 1)
    assert sorted(Decimal(str(b["epsilon_spent"])) for b in bodies) == [Decimal(0)] * (
        n - 1
    ) + [Decimal("0.5")]
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SandboxRelease)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SandboxReleaseClaim)) == 0
        spent = dict(
            db.session.execute(
                sa.select(PrivacySpending.buyer_org_id, PrivacySpending.epsilon_spent)
            ).all()
        )
        assert sum(Decimal(str(v)) for v in spent.values()) == Decimal("0.5")
        version = db.session.execute(
            sa.select(VersionSpending.epsilon_spent, VersionSpending.releases)
        ).one()
        assert (Decimal(str(version[0])), version[1]) == (Decimal("0.5"), 1)
        logged = db.session.scalars(sa.select(SandboxQuery)).all()
        assert len(logged) == n and {q.status for q in logged} == {"ok"}
        assert sum(Decimal(str(q.epsilon_spent)) for q in logged) == Decimal("0.5")
        assert len({q.release_id for q in logged}) == 1
