"""Request latency, measured app-wide and merged across processes.

Each process counts its ``/api/`` requests in memory — per (UTC hour, route group, bucket),
a dictionary increment under a lock, nothing else on the request path — and adds its counts
to ``http_latency_buckets`` with one upsert per row (``count = count + n``), so that any
number of gunicorn workers, threads or hosts sharing the database merge exactly.

What is measured: from the moment the WSGI app is called to the moment it returns the
response (routing, authentication, the handler, the commit); for a streamed response, the
time to its first byte. The route group is the blueprint that served the request
(``unmatched`` when no route matched).

When counts are written: after a response has been sent (``ClosingIterator``, so the client
never waits for it) once ``MARKET_HTTP_METRICS_FLUSH_S`` seconds have passed since the last
write (``0``: after every request), before a report is built (:func:`flush_now`), and when the
process exits. Unset, it is 30 s, except under ``TESTING`` where nothing is written unless a
test asks (the test database is held in one rolled-back transaction). A failed write keeps
the counts for the next one.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
from collections import Counter
from typing import Any

import sqlalchemy as sa
from flask import Flask, request
from werkzeug.wsgi import ClosingIterator

from market.metrics import histogram
from market.metrics.models import HttpLatencyBucket

log = logging.getLogger(__name__)

GROUP_KEY = "market.route_group"
DEFAULT_FLUSH_S = 30.0

Key = tuple[dt.datetime, str, int]


class LatencyRecorder:
    """The counts of one process, not yet written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Key] = Counter()
        self._last_flush = time.monotonic()

    def observe(self, group: str, duration_ms: float, at: dt.datetime | None = None) -> None:
        at = at or dt.datetime.now(dt.UTC)
        hour = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        key = (hour, group[:64], histogram.bucket_of(duration_ms))
        with self._lock:
            self._counts[key] += 1

    def pending(self) -> dict[Key, int]:
        with self._lock:
            return dict(self._counts)

    def due(self, every_s: float | None) -> bool:
        return every_s is not None and time.monotonic() - self._last_flush >= every_s

    def flush(self, engine: sa.Engine) -> int:
        """Add the pending counts to the database; returns how many rows were written.

        Raises the database's error (the counts are kept for the next flush)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._last_flush = time.monotonic()
        if not counts:
            return 0
        try:
            with engine.begin() as conn:
                add_counts(conn, counts)
        except Exception:
            with self._lock:
                self._counts.update(counts)
            raise
        return len(counts)


def add_counts(conn: sa.Connection, counts: dict[Key, int]) -> None:
    """``count += n`` for each (hour, group, bucket), inserting the rows that do not exist."""
    table = HttpLatencyBucket.__table__
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # The same key order in every process: two concurrent flushes lock rows in one order.
    for (hour, group, le_ms), n in sorted(counts.items()):
        stmt = insert(table).values(hour=hour, route_group=group, le_ms=le_ms, request_count=n)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["hour", "route_group", "le_ms"],
            set_={"request_count": table.c.request_count + stmt.excluded.request_count},
        ))


def month_histogram(session: Any, start: dt.datetime, end: dt.datetime) -> dict[str, dict[int, int]]:
    """``{route group: {bound: count}}`` of the requests that ended in ``[start, end)``."""
    rows = session.execute(
        sa.select(HttpLatencyBucket.route_group, HttpLatencyBucket.le_ms,
                  sa.func.sum(HttpLatencyBucket.request_count))
        .where(HttpLatencyBucket.hour >= start, HttpLatencyBucket.hour < end)
        .group_by(HttpLatencyBucket.route_group, HttpLatencyBucket.le_ms)
    ).all()
    out: dict[str, dict[int, int]] = {}
    for group, le_ms, n in rows:
        out.setdefault(group, {})[le_ms] = int(n or 0)
    return out


class _Measure:
    """WSGI middleware: time each ``/api/`` request, write the counts after the response."""

    def __init__(self, app: Flask, wsgi_app: Any, recorder: LatencyRecorder):
        self.app, self.wsgi_app, self.recorder = app, wsgi_app, recorder

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/api/"):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            body = self.wsgi_app(environ, start_response)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.recorder.observe(environ.get(GROUP_KEY) or "unmatched", elapsed)
        return ClosingIterator(body, self._after_response)

    def _after_response(self) -> None:
        if self.recorder.due(flush_interval(self.app)):
            _flush_logged(self.app, self.recorder)


def flush_interval(app: Flask) -> float | None:
    value = app.config.get("MARKET_HTTP_METRICS_FLUSH_S")
    if value is None or value == "":
        return None if app.testing else DEFAULT_FLUSH_S
    value = float(value)
    return None if value < 0 else value


def _flush_logged(app: Flask, recorder: LatencyRecorder) -> None:
    from market.extensions import db

    try:
        with app.app_context():
            recorder.flush(db.engine)
    except Exception:  # metrics never fail a request; the counts wait for the next flush
        log.warning("could not write the request-latency counts", exc_info=True)


def _flush_at_exit(app: Flask, recorder: LatencyRecorder) -> None:
    if recorder.pending() and flush_interval(app) is not None:
        _flush_logged(app, recorder)


def flush_now(app: Flask) -> None:
    """Write this process's pending counts (before a report reads them), unless flushing is
    off (tests that did not ask for it)."""
    recorder = app.extensions.get("market.latency")
    if recorder is not None and flush_interval(app) is not None:
        _flush_logged(app, recorder)


def init_metrics(app: Flask) -> LatencyRecorder:
    recorder = LatencyRecorder()
    app.extensions["market.latency"] = recorder

    def _route_group() -> None:
        request.environ[GROUP_KEY] = request.blueprint or "unmatched"

    # First of the before-request functions: one that answers early (401) still has its group.
    app.before_request_funcs.setdefault(None, []).insert(0, _route_group)
    app.wsgi_app = _Measure(app, app.wsgi_app, recorder)  # type: ignore[method-assign]
    atexit.register(_flush_at_exit, app, recorder)
    return recorder
