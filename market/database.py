"""Engine set-up per backend.

SQLite: every transaction begins with ``BEGIN IMMEDIATE``. That takes the write lock up
front, which is what serializes audit-chain appends and atomic quota updates on the embedded
backend; pysqlite's own implicit BEGIN is switched off so that SAVEPOINTs work too.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event


def configure_engine(engine: sa.Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    if getattr(engine, "_market_configured", False):
        return
    engine._market_configured = True  # type: ignore[attr-defined]

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
