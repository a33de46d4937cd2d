"""Background jobs behind one small interface.

``MARKET_JOB_RUNNER``:
- ``thread`` (default): a small in-process thread pool — right for the embedded, one-machine
  setup;
- ``inline``: run at once in the caller's thread (tests, CLI);
- a queue (RQ or Celery on Redis) is the scale-out path (docs/scaling.md): jobs are plain
  functions called by dotted path with JSON-able arguments, so they can be enqueued as they are.

A job runs in its own app context and its own session, and commits its own work.

Crash safety does not depend on the runner: a job that must not be left half-done holds a
lease (:mod:`market.leases`) recorded with its work and renewed by the process that runs it;
if that process dies, the sweeper fails the job and deletes its files. The publication job
reads a staged upload sealed with a key that lives only in the memory of the process that
received it (:mod:`market.pipeline.sealed`): a runner in another process gets
``KEY_UNAVAILABLE`` unless the upload is handed over some other way (never by writing the key
to the broker or the disk).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import import_module
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def release_memory() -> None:
    """Hand memory freed by a finished job back to the system (issue 14: a web worker that
    processed an upload otherwise stays near its peak): pyarrow's pool and glibc's malloc
    both keep freed blocks for reuse. Best effort; never raises."""
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001, S110 - an optimization only
        pass
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _run(app: Flask, path: str, args: tuple[Any, ...]) -> None:
    from market.extensions import db

    with app.app_context():
        try:
            _resolve(path)(*args)
        except Exception:
            log.exception("background job %s failed", path)
            db.session.rollback()
            raise
        finally:
            db.session.remove()
            release_memory()


class InlineRunner:
    def submit(self, path: str, *args: Any) -> None:
        _resolve(path)(*args)


#: Jobs submitted to a ThreadRunner of this process and not finished (queued or running).
_pending = 0
_pending_lock = threading.Lock()


def running_jobs() -> int:
    """Background jobs of this process not finished yet. gunicorn.conf.py keeps a worker due
    for recycling (max_requests) alive while there is one: once the interpreter starts to
    exit, no thread pool accepts work, and the upload being processed would fail."""
    return _pending


def _count(delta: int) -> None:
    global _pending
    with _pending_lock:
        _pending += delta


class ThreadRunner:
    def __init__(self, app: Flask, workers: int = 2):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="market-job")

    def submit(self, path: str, *args: Any) -> Future:
        _count(1)
        try:
            future = self.pool.submit(_run, self.app, path, args)
        except BaseException:
            _count(-1)
            raise
        future.add_done_callback(lambda _f: _count(-1))
        return future


def runner() -> InlineRunner | ThreadRunner:
    ext = current_app.extensions
    if "market.jobs" not in ext:
        kind = current_app.config.get("MARKET_JOB_RUNNER", "thread")
        if kind == "inline":
            ext["market.jobs"] = InlineRunner()
        else:
            workers = int(current_app.config.get("MARKET_JOB_WORKERS", 2))
            ext["market.jobs"] = ThreadRunner(current_app._get_current_object(), workers)
    return ext["market.jobs"]


def submit(path: str, *args: Any) -> None:
    """Run ``path(*args)`` in the background (or inline, per configuration)."""
    runner().submit(path, *args)
