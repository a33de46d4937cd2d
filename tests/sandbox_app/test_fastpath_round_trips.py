"""How many statements a cached question costs, and that the audit chain's lock is still
held before its head is read (``sandbox.fastpath``; issue 14's throughput). On PostgreSQL the
lock is taken by the log row's INSERT instead of a statement of its own: that is only safe if
it really is held when ``audit.append`` reads the head, which is checked here in pg_locks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

Q1 = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"


#: Each test starts and ends with empty process caches (checks, workspaces).
pytestmark = pytest.mark.usefixtures("empty_sandbox_caches")


def _statements(app):
    from market.extensions import db

    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split())[:80])

    engine = db.engine  # the ``app`` fixture's context
    sa.event.listen(engine, "before_cursor_execute", listener)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", listener)


def test_a_cached_question_costs_seven_statements_on_postgresql(app, world, client):
    buyer = world.party()
    lic_id, headers = world.license(buyer, ["loans"], quota=10).id, buyer.headers
    assert query(client, lic_id, Q1, headers).status_code == 200  # released
    assert query(client, lic_id, Q1, headers).get_json()["cached"] is True
    seen, stop = _statements(app)
    try:
        r = query(client, lic_id, Q1, headers)
    finally:
        stop()
    # The tests' session nests each request's transaction in a SAVEPOINT.
    seen = [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert r.status_code == 200 and r.get_json()["cached"] is True
    kinds = [" ".join(s.split(" ")[:3]) for s in seen]
    # The token; the license with its items; their columns; the release with its budgets;
    # the quota (with the chain's lock on PostgreSQL); the log row (with the chain's head on
    # PostgreSQL; SQLite reads it next); the event.
    assert not any("pg_advisory_xact_lock(%(key)s)" in s for s in seen), seen
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert len(seen) == 7, seen
        assert kinds[-3:] == ["UPDATE licenses SET", "INSERT INTO sandbox_queries",
                              "INSERT INTO audit_events"], seen
    else:
        assert len(seen) == 8, seen
        assert kinds[-4:] == ["UPDATE licenses SET", "INSERT INTO sandbox_queries",
                              "SELECT audit_events.seq, audit_events.hash,",
                              "INSERT INTO audit_events"], seen


def test_the_chain_is_locked_before_its_head_is_read(app, world, client, monkeypatch):
    from market.audit import services as audit

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=10)
    assert query(client, lic.id, Q1, buyer.headers).status_code == 200
    held: list[bool] = []
    real = audit.append

    def checking(session, *args, **kwargs):
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            key = audit._PG_LOCK_KEY
            held.append(bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1"
            ), {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalar()))
        else:
            held.append(True)  # SQLite: BEGIN IMMEDIATE holds the database's write lock
        return real(session, *args, **kwargs)

    monkeypatch.setattr(audit, "append", checking)
    r = query(client, lic.id, Q1, buyer.headers)
    assert r.status_code == 200 and r.get_json()["cached"] is True
    assert held == [True]


def test_concurrent_cached_questions_keep_one_chain(live_app):
    """The lock is taken by the quota's UPDATE and the head read by the log's INSERT: many
    cached questions at once still append one unbroken chain, each charged once."""
    from licenses.models import License
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys
    from sandbox import app_engine
    from tests.sandbox_app.test_concurrency import _hammer, _seed

    license_id, token = _seed(live_app, quota=100)
    try:
        assert _hammer(live_app, license_id, token, [Q1]) == [200]  # released once
        codes = _hammer(live_app, license_id, token, [Q1] * 24)
    finally:
        app_engine.close_engine(live_app)
    assert codes == [200] * 24
    with live_app.app_context():
        assert db.session.get(License, license_id).quota_remaining == 100 - 25
        seqs = db.session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        assert seqs == list(range(1, len(seqs) + 1))
        queries = db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent)
            .where(AuditEvent.type == "sandbox.query")
        )
        assert queries == 25
        assert verify_chain(db.session, public_keys()).valid
        db.session.remove()
