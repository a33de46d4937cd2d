"""The Celery worker: ``celery -A market.worker worker`` runs the app's background jobs.

Start it with the same environment as the web processes (``DATABASE_URL``,
``MARKET_DATA_DIR``, the ``MARKET_*`` secrets, ``CELERY_BROKER_URL``)::

    celery -A market.worker worker --pool=solo -Q market-jobs          # publication
    celery -A market.worker worker --pool=prefork -c 4 -Q sandbox     # sandbox queries

Publication jobs read a sealed upload whose key must reach this process without being
written anywhere (:mod:`market.jobkeys`): at start-up the worker makes a key pair in memory,
subscribes to a queue of its own (``<MARKET_CELERY_QUEUE>.w.<token>``) and announces it in
Redis every few seconds (expiring after :data:`ANNOUNCE_TTL` seconds unless renewed). A web
process wraps each upload's key for one live worker and routes the task to that worker's
queue. Tasks are acknowledged on receipt (Celery's default): a worker killed mid-job does
not get the job redelivered to another worker, which could not read the upload anyway; the
job's lease expires and the sweeper fails the version with a clear reason and deletes its
files (:mod:`market.leases`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_init, worker_shutdown

from market.jobkeys import KeyUnwrapError, WorkerAnnouncement, WorkerKeyPair

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "market-jobs"
DEFAULT_SANDBOX_QUEUE = "sandbox"
#: Seconds an announcement lives in Redis (``MARKET_WORKER_ANNOUNCE_SECONDS``); renewed every
#: third of it. A dead worker stops being chosen, and the web process stops renewing the
#: leases of jobs it sent there, at most this long after its death.
ANNOUNCE_TTL = 15


def announce_ttl() -> int:
    return max(1, int(os.environ.get("MARKET_WORKER_ANNOUNCE_SECONDS") or ANNOUNCE_TTL))
RUN_JOB = "market.run_job"
RUN_SANDBOX = "market.run_sandbox_query"


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""


def registry_url(broker: str | None = None) -> str:
    """Where workers announce themselves: the broker if it is Redis, else ``REDIS_URL``."""
    broker = broker if broker is not None else broker_url()
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return broker
    return os.environ.get("REDIS_URL") or ""


def queue_name() -> str:
    return os.environ.get("MARKET_CELERY_QUEUE") or DEFAULT_QUEUE


def sandbox_queue_name() -> str:
    return os.environ.get("MARKET_CELERY_SANDBOX_QUEUE") or DEFAULT_SANDBOX_QUEUE


def registry_prefix(queue: str) -> str:
    return f"market:workers:{queue}:"


def make_celery(broker: str | None = None) -> Celery:
    broker = broker if broker is not None else broker_url()
    app = Celery("market", broker=broker)
    app.conf.update(
        # Sandbox query replies (the web process waits for them); jobs ignore results.
        result_backend=os.environ.get("CELERY_RESULT_BACKEND") or broker or None,
        result_expires=300,
        task_default_queue=queue_name(),
        task_ignore_result=True,
        # Acknowledged on receipt: a job is never run twice (see the module docstring).
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


celery = make_celery()

# ----------------------------------------------------------------------------- this worker

#: The key pair of this worker process (the private half never leaves memory).
KEYPAIR = WorkerKeyPair()
#: This worker's own queue: publication tasks whose key is wrapped for KEYPAIR.
TOKEN = uuid.uuid4().hex
_flask_app: Any = None
_flask_lock = threading.Lock()
_announcer_stop = threading.Event()


def own_queue() -> str:
    return f"{queue_name()}.w.{TOKEN}"


def flask_app() -> Any:
    """The app this worker runs jobs in (built once per process from the environment)."""
    global _flask_app
    with _flask_lock:
        if _flask_app is None:
            from market import create_app

            _flask_app = create_app()
        return _flask_app


def _secret() -> str:
    return flask_app().config["MARKET_SECRET_KEY"]


def _announce_loop(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    note = KEYPAIR.announce(_secret(), own_queue())
    key = registry_prefix(queue_name()) + TOKEN
    payload = json.dumps({"queue": note.queue, "public": note.public, "mac": note.mac})
    while not _announcer_stop.is_set():
        try:
            client.set(key, payload, ex=announce_ttl())
        except Exception as exc:  # noqa: BLE001 - Redis may come back
            log.warning("worker announcement failed (%s)", type(exc).__name__)
        _announcer_stop.wait(announce_ttl() / 3)
    try:
        client.delete(key)
    except Exception:  # noqa: BLE001 - it expires anyway
        pass


@celeryd_after_setup.connect
def _subscribe_own_queue(sender: str, instance: Any, **_: Any) -> None:
    """Consume this worker's own queue and announce it (publication workers only).

    Every worker builds the app here, in the main process and before a prefork pool forks:
    a bad configuration fails at start-up, and a pool process does not pay for the app (its
    imports alone take seconds on a busy host) inside its first task's time limit, where it
    would turn a short query into a timeout. The pool processes then drop the inherited
    database pool (:func:`_allow_engine_processes`)."""
    flask_app()
    consumed = set(instance.app.amqp.queues.consume_from or ()) or {queue_name()}
    if queue_name() not in consumed:
        return  # a sandbox-only worker takes no uploads
    instance.app.amqp.queues.select_add(own_queue())
    url = registry_url()
    if not url:
        log.error("no Redis to announce this worker in: publication jobs cannot reach it")
        return
    threading.Thread(target=_announce_loop, args=(url,), name="market-announce", daemon=True).start()


@worker_process_init.connect
def _allow_engine_processes(**_: Any) -> None:
    """A prefork pool child is marked daemonic, and multiprocessing refuses children to
    daemonic processes; the DuckDB engine runs each query in a killable process of its own
    (its pipes close when this child dies, and they exit), so allow it here. Billiard also
    leaves its own authkey type, which the standard library's forkserver cannot pass on: the
    child gets a fresh standard one."""
    import multiprocessing
    from multiprocessing.process import AuthenticationString

    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    config["daemon"] = False
    config["authkey"] = AuthenticationString(os.urandom(32))
    if _flask_app is not None:
        # Connections are never shared across a fork: this process opens its own.
        from market.extensions import db

        with _flask_app.app_context():
            db.engine.dispose(close=False)


@worker_shutdown.connect
def _stop_announcing(**_: Any) -> None:
    _announcer_stop.set()


# ----------------------------------------------------------------------------- web side


def announcement_key(note: WorkerAnnouncement) -> str:
    return registry_prefix(queue_name()) + note.queue.rsplit(".w.", 1)[-1]


def is_announced(note: WorkerAnnouncement, url: str | None = None) -> bool:
    import redis

    return bool(redis.Redis.from_url(url or registry_url()).exists(announcement_key(note)))


def live_workers(secret: str, url: str | None = None) -> list[WorkerAnnouncement]:
    """Announcements of live publication workers whose MAC verifies, sorted by queue."""
    import redis

    url = url or registry_url()
    if not url:
        return []
    client = redis.Redis.from_url(url)
    found = []
    for key in client.scan_iter(match=registry_prefix(queue_name()) + "*", count=100):
        raw = client.get(key)
        if raw is None:
            continue
        try:
            data = json.loads(raw)
            note = WorkerAnnouncement(str(data["queue"]), str(data["public"]), str(data["mac"]))
        except (ValueError, KeyError, TypeError):
            continue
        if note.verify(secret):
            found.append(note)
        else:
            log.warning("ignored a worker announcement with a bad MAC (%s)", key)
    return sorted(found, key=lambda n: n.queue)


# ----------------------------------------------------------------------------- tasks


@celery.task(name=RUN_JOB)
def run_job(path: str, args: list[Any], sealed: dict[str, str] | None = None) -> None:
    """Run ``path(*args)`` in the app; ``sealed`` maps staging paths to their wrapped keys."""
    from market import jobs
    from market.datasets import services

    app = flask_app()
    for staging, wrapped in (sealed or {}).items():
        try:
            services._STAGING_KEYS[staging] = KEYPAIR.unwrap(wrapped, staging)
        except KeyUnwrapError:
            # Not ours (or tampered): the job then fails the version as KEY_UNAVAILABLE.
            log.error("an upload key could not be unwrapped by this worker")
    jobs._run(app, path, tuple(args))


def _local_tables(app: Any, refs: dict[str, Any]) -> dict[str, str]:
    """The job's tables as this host's files: a storage key is fetched (and checked) through
    this worker's own storage, so a query host needs neither the web host's data folder nor
    its paths; a plain path (a folder every host shares) is used as it is."""
    from market.storage import local_copy, storage
    from sandbox.query import StoredTable

    out: dict[str, str] = {}
    with app.app_context():
        store = storage()
        for slug, ref in refs.items():
            out[slug] = (str(local_copy(store, ref.key, ref.sha256))
                         if isinstance(ref, StoredTable) else str(ref))
    return out


@celery.task(name=RUN_SANDBOX, ignore_result=False)
def run_sandbox_query(job: dict[str, Any]) -> dict[str, Any]:
    """The engine's part of one checked query, on this worker's local engine; the reply is
    the result or an error category (sandbox.celery_engine)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from sandbox import app_engine
    from sandbox.celery_engine import decode_job, encode_error, encode_result
    from sandbox.errors import QueryTimeout

    try:
        app = flask_app()
        query, refs, timeout_s, row_cap = decode_job(job)
        tables = _local_tables(app, refs)
        engine = app_engine.local_engine_for(app)
        result = engine.run(query, tables, timeout_s=timeout_s, row_cap=row_cap)
        return encode_result(result)
    except SoftTimeLimitExceeded:
        return encode_error(QueryTimeout())
    except Exception as exc:  # noqa: BLE001 - only its category leaves this process
        log.warning("sandbox query failed on the worker (%s)", type(exc).__name__, exc_info=True)
        return encode_error(exc)
