"""gunicorn settings for production (README): ``gunicorn -c gunicorn.conf.py 'market:create_app()'``.

Every value can be overridden on the command line or with ``GUNICORN_CMD_ARGS``.
"""

from __future__ import annotations

import json
import os
from http import HTTPStatus

bind = os.environ.get("MARKET_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))

# Request line: gunicorn's hard maximum. The app answers URLs past MARKET_MAX_URL_BYTES
# (8000 by default, just below this) with a 414 in the JSON envelope itself; only a line
# past this one is refused by gunicorn, and that refusal is JSON too (below).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Recycle workers: memory a worker gathered over large uploads goes back to the system
# after at most max_requests requests; the jitter keeps workers from restarting together.
# A worker is not recycled while it runs a background job (pre_request below).
max_requests = int(os.environ.get("MARKET_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("MARKET_MAX_REQUESTS_JITTER", "100"))

# Uploads of hundreds of megabytes stream for a while: a longer timeout than the default 30s.
timeout = int(os.environ.get("MARKET_WORKER_TIMEOUT", "120"))
graceful_timeout = 30


def _json_write_error(sock, status_int, reason, mesg):
    """gunicorn's own refusals (414, 431, 400 before the app runs) in the app's envelope,
    instead of its HTML page. The message is English: no request, so no language, yet."""
    from gunicorn import util

    try:
        phrase = HTTPStatus(status_int).phrase
    except ValueError:
        phrase = reason
    body = json.dumps({"code": status_int, "status": phrase,
                       "message": f"{phrase}: the request was refused before it reached the "
                                  "application."}).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


def on_starting(server):
    # The workers are forked from the arbiter, so they all inherit the patched writer.
    from gunicorn import util

    util.write_error = _json_write_error


def pre_request(worker, req):
    """A worker due for recycling (max_requests) is kept while a background job of the
    ``thread`` runner runs in it: once the interpreter starts to exit no thread pool accepts
    work, so the upload being processed would fail. It is recycled at the first request after
    its jobs end. (A shutdown or a crash still interrupts a job: the job lease's sweeper
    fails it cleanly.)"""
    if worker.nr + 1 < worker.max_requests:
        return
    try:
        from market.jobs import running_jobs
    except ImportError:
        return
    if running_jobs():
        worker.nr = max(0, worker.max_requests - 2)
