"""Pooled connections are pinged only after sitting idle (market.database.ping_idle_connections):
no round trip per request under load, and a connection that died while idle is replaced
before a request uses it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from market.database import ping_idle_connections
from tests import pg


def _engine(tmp_path, idle_s: float) -> tuple[sa.Engine, list[int], dict]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ping.db'}")
    ping_idle_connections(engine, idle_s)
    pings: list[int] = []
    state = {"alive": True}

    def do_ping(dbapi_connection):
        pings.append(id(dbapi_connection))
        if not state["alive"]:
            raise RuntimeError("server closed the connection")
        return True

    engine.dialect.do_ping = do_ping  # type: ignore[method-assign]
    return engine, pings, state


def test_a_connection_used_a_moment_ago_is_not_pinged(tmp_path):
    engine, pings, _ = _engine(tmp_path, idle_s=60)
    for _ in range(5):
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    assert pings == []
    engine.dispose()


def test_an_idle_connection_is_pinged_and_replaced_if_dead(tmp_path):
    engine, pings, state = _engine(tmp_path, idle_s=0)
    with engine.connect() as conn:  # a new connection: not pinged
        first = conn.connection.dbapi_connection
    assert pings == []
    with engine.connect() as conn:  # idle since its checkin: pinged, alive, reused
        assert conn.connection.dbapi_connection is first
    assert pings == [id(first)]
    state["alive"] = False
    with engine.connect() as conn:  # pinged, dead: replaced before use
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection is not first
    assert pings[-1] == id(first)
    engine.dispose()


def test_a_backend_killed_while_idle_is_replaced(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a real server-side disconnect needs PostgreSQL (MARKET_TEST_DB=postgres)")
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        ping_idle_connections(engine, 0)
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        admin = sa.create_engine(pg.base_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        admin.dispose()
        with engine.connect() as conn:  # no error: the dead connection was replaced
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
