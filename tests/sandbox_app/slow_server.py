"""A test-only gunicorn entry point: the app over a given database whose sandbox engine first
sleeps (``SBX_SLOW_SECONDS``) on queries that mention ``'slow`` (so that a warm-up query is
fast), then runs the query on the real DuckDB engine.

The sleep stands in for a long DuckDB query (a 10-second scan), so that the availability test
does not need gigabytes of data. The seam is installed by code here
(``sandbox.app_engine.install``), never by configuration. It also checks the property under
test: when the engine is called, the request's database session holds no transaction (and so
no connection, and on SQLite no write lock).

    gunicorn -k gthread --threads 8 -w 1 'tests.sandbox_app.slow_server:create()'
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


class SlowEngine:
    def __init__(self, real: Any, seconds: float) -> None:
        self.real = real
        self.seconds = seconds

    def run(self, checked: Any, tables: Any, *, timeout_s: float, **kw: Any) -> Any:
        from market.extensions import db

        if db.session().in_transaction():
            raise RuntimeError("the sandbox engine was called inside a database transaction")
        if "'slow" in checked.canonical:
            time.sleep(self.seconds)
        if db.session().in_transaction():
            raise RuntimeError("the session began a transaction while the engine ran")
        return self.real.run(checked, tables, timeout_s=timeout_s, **kw)

    def close(self) -> None:
        self.real.close()


def create() -> Any:
    from market import create_app
    from market.extensions import limiter
    from sandbox import app_engine

    app = create_app(json.loads(os.environ["SBX_SLOW_CONFIG"]))
    limiter.enabled = False
    app_engine.install(
        app, SlowEngine(app_engine.engine_for(app), float(os.environ["SBX_SLOW_SECONDS"]))
    )
    return app
