"""Engine set-up per backend.

Every backend but SQLite: pooled connections are pinged on checkout only after sitting idle
(``ping_idle_connections``), not on every checkout.

SQLite: every transaction begins with ``BEGIN IMMEDIATE``. That takes the write lock up
front, which is what serializes audit-chain appends and atomic quota updates on the embedded
backend; pysqlite's own implicit BEGIN is switched off so that SAVEPOINTs work too.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy import event


def configure_engine(engine: sa.Engine, ping_idle_s: float = 10.0) -> None:
    if getattr(engine, "_market_configured", False):
        return
    engine._market_configured = True  # type: ignore[attr-defined]
    if engine.dialect.name != "sqlite":
        ping_idle_connections(engine, ping_idle_s)
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A streamed export reads in a transaction of its own (market.csvutil): a deferred
        # BEGIN, so that a slow download never holds the write lock.
        if conn.get_execution_options().get("market_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def ping_idle_connections(engine: sa.Engine, idle_s: float) -> None:
    """Check a pooled connection on checkout only if it sat idle for ``idle_s`` seconds or
    more (SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per request).

    A connection that fails the ping is replaced before the request uses it (the pool
    retries the checkout on ``DisconnectionError``). One that died within ``idle_s`` of its
    last use (the server restarted just then) fails its request, which answers 503 with
    Retry-After (``market.errors``), and SQLAlchemy then invalidates the whole pool, so the
    next requests reconnect. ``idle_s`` 0 pings on every checkout, like ``pool_pre_ping``.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record):
        if record is not None:
            record.info["market_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy):
        since = record.info.get("market_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # just connected, or used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure means: do not use it
            raise sa.exc.DisconnectionError("stale pooled connection") from exc
        if not alive:
            raise sa.exc.DisconnectionError("stale pooled connection")
