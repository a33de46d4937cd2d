"""How many statements a cached question costs, and that the audit chain's lock is still
held before its head is read (``sandbox.fastpath``; issue 14's throughput). On PostgreSQL the
lock is taken by the log row's INSERT instead of a statement of its own: that is only safe if
it really is held when ``audit.append`` reads the head, which is checked here in pg_locks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

Q1 = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"


@pytest.fixture(autouse=True)
def _empty_caches():
    from sandbox import fastpath, services

    services.checks.clear()
    fastpath.workspaces.clear()
    yield
    services.checks.clear()
    fastpath.workspaces.clear()


def _statements(app):
    from market.extensions import db

    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split())[:80])

    engine = db.engine  # the ``app`` fixture's context
    sa.event.listen(engine, "before_cursor_execute", listener)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", listener)


def test_a_cached_question_costs_eight_statements(app, world, client):
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
    kinds = [s.split(" ")[0] + " " + s.split(" ")[1] for s in seen]
    # The token; the license with its items; their columns; the release with its budgets;
    # the quota; the log row (with the chain's lock on PostgreSQL); the chain's head; the event.
    assert len(seen) == 8, seen
    assert not any("pg_advisory_xact_lock(%(key)s)" in s for s in seen), seen
    assert kinds[-4:] == ["UPDATE licenses", "INSERT INTO", "SELECT audit_events.seq,",
                          "INSERT INTO"], seen


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
