"""Background jobs behind one small interface.

``MARKET_JOB_RUNNER``:
- ``thread`` (default): a small in-process thread pool — right for the embedded, one-machine
  setup;
- ``inline``: run at once in the caller's thread (tests, CLI);
- ``celery``: sent to ``celery -A market.worker worker`` through ``CELERY_BROKER_URL``
  (docs/scaling.md): jobs are plain functions called by dotted path with JSON-able arguments.

A job runs in its own app context and its own session, and commits its own work.

Crash safety does not depend on the runner: a job that must not be left half-done holds a
lease (:mod:`market.leases`) recorded with its work and renewed by the process that runs it;
if that process dies, the sweeper fails the job and deletes its files. The publication job
reads a staged upload sealed with a key that lives only in the memory of the process that
received it (:mod:`market.pipeline.sealed`): the Celery runner wraps it for one live worker
process's in-memory key pair and routes the task to that worker's own queue
(:mod:`market.jobkeys`), so the key is never written anywhere in the clear.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import import_module
from pathlib import Path
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


class NoWorker(Exception):
    """No live queue worker could take a job that must reach a particular worker."""


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


#: Job path -> the lease kind its first argument holds (market.leases).
LEASED_JOBS = {"market.datasets.processing.process_version": "publication"}


class CeleryRunner:
    """Sends jobs to ``celery -A market.worker worker`` (``MARKET_JOB_RUNNER=celery``).

    An argument that is a sealed staging file of this process travels as its key wrapped for
    one live worker (chosen round-robin among the announced ones), and the task goes to that
    worker's own queue; this process then forgets the key. Raises NoWorker if no worker is
    announced. Other jobs go to the shared queue.
    """

    def __init__(self, app: Flask):
        from market import worker

        self.app = app
        self.worker = worker
        self.celery = worker.make_celery(app.config.get("CELERY_BROKER_URL") or worker.broker_url())
        self._turn = 0
        self._lock = threading.Lock()
        #: (lease kind, subject) -> the worker it was sent to, until that worker claims it.
        self._sent: dict[tuple[str, int], Any] = {}
        self._watcher: threading.Thread | None = None

    def submit(self, path: str, *args: Any) -> None:
        from market.datasets import services
        from market.jobkeys import wrap_for

        sealed_paths = [a for a in args if isinstance(a, str) and a in services._STAGING_KEYS]
        if not sealed_paths:
            self.celery.send_task(self.worker.RUN_JOB, args=[path, list(args), None],
                                  queue=self.worker.queue_name())
            return
        workers = self.worker.live_workers(self.app.config["MARKET_SECRET_KEY"],
                                           self.worker.registry_url(self.celery.conf.broker_url))
        if not workers:
            raise NoWorker(path)
        with self._lock:
            chosen = workers[self._turn % len(workers)]
            self._turn += 1
        sent, wrapped = list(args), {}
        for p in sealed_paths:
            ref = self._share(p)
            wrapped[ref] = wrap_for(chosen.public, services._STAGING_KEYS[p], ref)
            sent = [ref if a == p else a for a in sent]
        self.celery.send_task(self.worker.RUN_JOB, args=[path, sent, wrapped],
                              queue=chosen.queue)
        for p in sealed_paths:
            services.forget_staging_key(p)
        if path in LEASED_JOBS and args:
            self._watch((LEASED_JOBS[path], int(args[0])), chosen)

    def _share(self, staging: str) -> str:
        """How the worker finds a sealed staging upload: with ``MARKET_STORAGE=s3`` the sealed
        file moves to the bucket and the worker fetches it by its storage key (workers need
        not share this host's data folder); otherwise its local path. If the move fails the
        local file is deleted too (the caller fails the version)."""
        from market.datasets import services
        from market.storage import S3Storage, storage

        store = storage()
        if not isinstance(store, S3Storage):
            return staging
        try:
            return store.share_staging(Path(staging))
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            services.forget_staging_key(staging)
            raise

    def _watch(self, lease: tuple[str, int], chosen: Any) -> None:
        """Keep renewing the job's lease here only while its worker is announced: the job
        sits in that worker's own queue, and if the worker dies before claiming it nobody
        else can read the upload, so the lease must expire and the sweeper fail it."""
        with self._lock:
            self._sent[lease] = chosen
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch_loop, name="market-job-watch", daemon=True
                )
                self._watcher.start()

    def _watch_loop(self) -> None:
        from market import leases

        with self.app.app_context():
            keeper = leases.keeper()
        url = self.worker.registry_url(self.celery.conf.broker_url)
        while True:
            time.sleep(max(0.2, self.worker.announce_ttl() / 3))
            with self._lock:
                sent = dict(self._sent)
            if not sent:
                with self._lock:
                    if not self._sent:
                        self._watcher = None
                        return
                continue
            for lease, chosen in sent.items():
                if lease not in keeper.held:  # claimed by the worker, or done
                    gone = True
                else:
                    try:
                        gone = not self.worker.is_announced(chosen, url)
                    except Exception as exc:  # noqa: BLE001 - Redis may come back
                        log.warning("worker liveness unknown (%s)", type(exc).__name__)
                        continue
                    if gone:
                        log.warning("job %s %s: its worker is gone; letting its lease expire",
                                    *lease)
                        keeper.drop(*lease)
                if gone:
                    with self._lock:
                        self._sent.pop(lease, None)


def runner() -> InlineRunner | ThreadRunner | CeleryRunner:
    ext = current_app.extensions
    if "market.jobs" not in ext:
        kind = current_app.config.get("MARKET_JOB_RUNNER", "thread")
        if kind == "inline":
            ext["market.jobs"] = InlineRunner()
        elif kind == "celery":
            ext["market.jobs"] = CeleryRunner(current_app._get_current_object())
        else:
            workers = int(current_app.config.get("MARKET_JOB_WORKERS", 2))
            ext["market.jobs"] = ThreadRunner(current_app._get_current_object(), workers)
    return ext["market.jobs"]


def submit(path: str, *args: Any) -> None:
    """Run ``path(*args)`` in the background (or inline, per configuration)."""
    runner().submit(path, *args)
