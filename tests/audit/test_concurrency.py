"""Concurrent audited requests leave a single unbroken chain (real commits, threads)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tests.conftest import valid_uscc


def test_concurrent_audited_requests_keep_one_chain(live_app):
    from market.accounts import services
    from market.accounts.actor import Actor
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    with live_app.app_context():
        op_org = services.create_organization(db.session, Actor.system("test"), name="op", kind="operator", credit_code=valid_uscc(1), check=False)
        user = services.create_user(db.session, Actor.system("test"), email="op@x.cn", password="long-password-1", organization_id=op_org.id, check=False)
        db.session.commit()
        import datetime as dt

        token, _ = services.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))

    n = 20
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def worker(i: int) -> None:
        client = live_app.test_client()
        barrier.wait()
        r = client.post(
            "/api/v1/organizations",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": f"buyer-{i}", "kind": "buyer", "credit_code": valid_uscc(100 + i)},
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses.count(201) == n, statuses

    with live_app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert len(events) == before + n
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        result = verify_chain(db.session, public_keys())
        assert result.valid, result
        db.session.remove()
