"""Job leases: a background job that dies with its process is noticed, failed and cleaned up.

A job that must not be left half-done (publication: a raw upload being turned into Parquet)
holds a row in ``job_leases`` from the moment its work is recorded (same transaction) until
its outcome is committed. The process that holds it renews it every ``lease / 3`` seconds
(:class:`LeaseKeeper`, one thread per process, for queued and running jobs alike). If the
process dies — ``kill -9``, OOM killer, power cut — nobody renews it, and once it has expired
:func:`sweep` (at the first request of every web process, every
``MARKET_JOB_SWEEP_SECONDS`` in a thread of the web process, and ``market jobs sweep``):

1. takes the expired lease by deleting it (``DELETE … WHERE id = ? AND expires_at < now``:
   exactly one of several concurrent sweepers wins),
2. lets the job kind's handler fail its subject with a clear reason (publication: the version
   becomes ``failed``, audited, and the dataset is free for a new version),
3. deletes the files the lease lists (staging upload, partial outputs and their temp files),

then deletes leftover staging files that no live lease protects and empty dataset folders.

Independent of the job runner (thread, inline or a queue): a lease is a row and a heartbeat,
and whoever runs the job claims it (:meth:`LeaseKeeper.claim`).

Settings: ``MARKET_JOB_LEASE_SECONDS`` (default 60), ``MARKET_JOB_SWEEP_SECONDS`` (default
60; 0 switches the timer off; the timer never runs under ``TESTING`` unless
``MARKET_JOB_SWEEP_THREAD`` is set).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Mapped, Session, mapped_column

from market.db import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60
DEFAULT_SWEEP_SECONDS = 60

#: kind -> dotted path of ``handler(session, subject_id) -> None`` that fails the subject of an
#: expired lease (in the sweeper's transaction, which commits).
EXPIRY_HANDLERS: dict[str, str] = {
    "publication": "market.datasets.processing.fail_expired_publication",
}
#: kind -> dotted path of ``finder(session, older_than) -> list[subject_id]``: subjects that
#: are still "running" but hold no lease at all (crashed before leases existed).
ORPHAN_FINDERS: dict[str, str] = {
    "publication": "market.datasets.processing.unleased_publications",
}


class JobLease(Base):
    __tablename__ = "job_leases"
    __table_args__ = (
        sa.UniqueConstraint("kind", "subject_id", name="uq_job_leases_kind_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What the job is (``publication``); decides the expiry handler.
    kind: Mapped[str] = mapped_column(sa.String(32))
    #: What it works on (publication: the dataset version's id).
    subject_id: Mapped[int] = mapped_column(sa.BigInteger)
    #: ``host:pid:token`` of the process that renews it.
    owner: Mapped[str] = mapped_column(sa.String(160))
    #: Storage keys (relative to MARKET_DATA_DIR) to delete if the job dies.
    files: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


def lease_seconds(app: Flask | None = None) -> int:
    config = (app or current_app).config
    return max(1, int(config.get("MARKET_JOB_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)))


#: This process's identity as a lease owner (a fork gets its own: see _owner()).
_OWNER: tuple[int, str] | None = None


def process_owner() -> str:
    global _OWNER
    if _OWNER is None or _OWNER[0] != os.getpid():
        _OWNER = (os.getpid(), f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    return _OWNER[1]


# ----------------------------------------------------------------------------- holding


def acquire(session: Session, kind: str, subject_id: int, files: Iterable[str] = ()) -> JobLease:
    """Record a lease held by this process (flushes; the caller's transaction commits it).

    Call it in the transaction that records the work, so that no crash can leave the work
    recorded without a lease. The keeper starts renewing it after the commit.
    """
    now = utcnow()
    lease = JobLease(
        kind=kind,
        subject_id=subject_id,
        owner=process_owner(),
        files=sorted(set(files)),
        created_at=now,
        heartbeat_at=now,
        expires_at=now + dt.timedelta(seconds=lease_seconds()),
    )
    session.add(lease)
    session.flush()
    keeper().hold(kind, subject_id)
    return lease


def release(session: Session, kind: str, subject_id: int) -> None:
    """Delete the lease (in the caller's transaction, with the job's outcome)."""
    session.execute(
        sa.delete(JobLease).where(JobLease.kind == kind, JobLease.subject_id == subject_id)
    )
    keeper().drop(kind, subject_id)


class LeaseLost(Exception):
    """The job's lease was taken by a sweeper (its heartbeat stopped for too long)."""


@dataclass
class LeaseKeeper:
    """Renews the leases this process holds, from one daemon thread."""

    app: Flask
    held: set[tuple[str, int]] = field(default_factory=set)
    lost: set[tuple[str, int]] = field(default_factory=set)
    #: Leases seen in the database since held; until then a missing row may just not be
    #: committed yet (acquire() runs inside the request's transaction), which is not a loss.
    confirmed: set[tuple[str, int]] = field(default_factory=set)
    #: When each unconfirmed lease was first held (monotonic), to give up on rolled-back ones.
    since: dict[tuple[str, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    wake: threading.Event = field(default_factory=threading.Event)

    def hold(self, kind: str, subject_id: int, *, confirmed: bool = False) -> None:
        with self.lock:
            self.held.add((kind, subject_id))
            self.lost.discard((kind, subject_id))
            if confirmed:
                self.confirmed.add((kind, subject_id))
            else:
                self.since.setdefault((kind, subject_id), time.monotonic())
            if self.app.testing and not self.app.config.get("MARKET_JOB_KEEPER_THREAD"):
                # Tests run jobs inline inside a rolled-back transaction that another
                # connection cannot see; they call renew() themselves.
                return
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._loop, name="market-lease-keeper", daemon=True
                )
                self.thread.start()

    def drop(self, kind: str, subject_id: int) -> None:
        with self.lock:
            self.held.discard((kind, subject_id))
            self.lost.discard((kind, subject_id))
            self.confirmed.discard((kind, subject_id))
            self.since.pop((kind, subject_id), None)

    def claim(self, session_bind: Any, kind: str, subject_id: int, files: Iterable[str] = ()) -> None:
        """Take the lease for the job about to run here (a queue worker may be another
        process than the one that recorded it), renew it and add ``files``. Its own short
        transaction. Raises LeaseLost if the lease is gone (already swept)."""
        now = utcnow()
        with Session(bind=session_bind, join_transaction_mode="create_savepoint") as s:
            lease = s.scalar(
                sa.select(JobLease).where(JobLease.kind == kind, JobLease.subject_id == subject_id)
            )
            if lease is None:
                raise LeaseLost(f"{kind} {subject_id}")
            lease.owner = process_owner()
            lease.files = sorted(set(lease.files or []) | set(files))
            lease.heartbeat_at = now
            lease.expires_at = now + dt.timedelta(seconds=lease_seconds(self.app))
            s.commit()
        self.hold(kind, subject_id, confirmed=True)

    def check(self, kind: str, subject_id: int) -> None:
        """Raise LeaseLost if a renewal found the lease gone."""
        if (kind, subject_id) in self.lost:
            raise LeaseLost(f"{kind} {subject_id}")

    def renew(self) -> None:
        """One renewal round (also called by tests)."""
        with self.lock:
            held = sorted(self.held)
        if not held:
            return
        from market.extensions import db

        now = utcnow()
        expires = now + dt.timedelta(seconds=lease_seconds(self.app))
        with self.app.app_context(), Session(bind=db.engine) as s:
            for kind, subject_id in held:
                result = s.execute(
                    sa.update(JobLease)
                    .where(
                        JobLease.kind == kind,
                        JobLease.subject_id == subject_id,
                        JobLease.owner == process_owner(),
                    )
                    .values(heartbeat_at=now, expires_at=expires)
                )
                key = (kind, subject_id)
                with self.lock:
                    if result.rowcount:
                        self.confirmed.add(key)
                        self.since.pop(key, None)
                    elif key in self.confirmed:  # it existed: a sweeper took it
                        self.lost.add(key)
                        self.held.discard(key)
                        self.confirmed.discard(key)
                    elif time.monotonic() - self.since.get(key, 0.0) > lease_seconds(self.app):
                        # never committed (the request failed): nothing to keep alive
                        self.held.discard(key)
                        self.since.pop(key, None)
            s.commit()

    def _loop(self) -> None:
        while True:
            self.wake.wait(max(0.2, lease_seconds(self.app) / 3))
            self.wake.clear()
            with self.lock:
                if not self.held:
                    self.thread = None
                    return
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - keep renewing; the DB may come back
                log.warning("lease renewal failed (%s)", type(exc).__name__)


def keeper() -> LeaseKeeper:
    ext = current_app.extensions
    if "market.lease_keeper" not in ext:
        ext["market.lease_keeper"] = LeaseKeeper(current_app._get_current_object())
    return ext["market.lease_keeper"]


# ----------------------------------------------------------------------------- sweeping


@dataclass
class SweepResult:
    expired: list[tuple[str, int]] = field(default_factory=list)
    unleased: list[tuple[str, int]] = field(default_factory=list)
    files_deleted: int = 0

    def __str__(self) -> str:
        return (
            f"{len(self.expired)} expired job(s) failed, {len(self.unleased)} job(s) without a "
            f"lease failed, {self.files_deleted} leftover file(s) deleted"
        )


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def sweep(app: Flask | None = None, *, now: dt.datetime | None = None) -> SweepResult:
    """Fail the jobs whose lease expired, delete their files and leftover staging files.

    Idempotent and safe to run in several processes at once. Each job is handled in its own
    transaction (its own session, never the request's). Needs an app context.
    """
    from market.extensions import db
    from market.storage import storage

    app = app or current_app._get_current_object()
    now = now or utcnow()
    result = SweepResult()
    grace = dt.timedelta(seconds=lease_seconds(app))
    with Session(bind=db.engine) as s:
        expired = s.execute(
            sa.select(JobLease.id, JobLease.kind, JobLease.subject_id).where(
                JobLease.expires_at < now
            )
        ).all()
        s.rollback()
        for lease_id, kind, subject_id in expired:
            lease = s.get(JobLease, lease_id)
            files = list(lease.files or []) if lease is not None else []
            taken = s.execute(
                sa.delete(JobLease).where(JobLease.id == lease_id, JobLease.expires_at < now)
            ).rowcount
            if taken != 1:
                s.rollback()
                continue  # renewed meanwhile, or another sweeper took it
            handler = EXPIRY_HANDLERS.get(kind)
            if handler is not None:
                _resolve(handler)(s, subject_id)
            for key in files:
                result.files_deleted += storage().purge(key)
            s.commit()
            result.expired.append((kind, subject_id))
            log.warning("job %s %s stopped renewing its lease: failed and cleaned up", kind, subject_id)
        for kind, finder in ORPHAN_FINDERS.items():
            leased = set(s.scalars(sa.select(JobLease.subject_id).where(JobLease.kind == kind)))
            for subject_id in _resolve(finder)(s, now - grace):
                if subject_id in leased:
                    continue
                _resolve(EXPIRY_HANDLERS[kind])(s, subject_id)
                s.commit()
                result.unleased.append((kind, subject_id))
        live = set()
        for files in s.scalars(sa.select(JobLease.files).where(JobLease.expires_at >= now)):
            live.update(files or [])
        s.rollback()
    result.files_deleted += storage().sweep_staging(protected=live, older_than=now - 2 * grace)
    return result


# ----------------------------------------------------------------------------- wiring


_started: set[int] = set()
_start_lock = threading.Lock()


def _sweep_loop(app: Flask, interval: float) -> None:
    while True:
        with app.app_context():
            try:
                result = sweep(app)
                if result.expired or result.unleased or result.files_deleted:
                    log.warning("job sweep: %s", result)
            except Exception as exc:  # noqa: BLE001 - e.g. before the first migration
                log.warning("job sweep failed (%s)", type(exc).__name__)
        if interval <= 0:
            return
        time.sleep(interval)


def start_sweeper(app: Flask) -> None:
    """Sweep now, then every MARKET_JOB_SWEEP_SECONDS, in a daemon thread (once per process)."""
    with _start_lock:
        key = hash((os.getpid(), id(app)))
        if key in _started:
            return
        _started.add(key)
    interval = float(app.config.get("MARKET_JOB_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS))
    if app.testing and not app.config.get("MARKET_JOB_SWEEP_THREAD"):
        return
    threading.Thread(
        target=_sweep_loop, args=(app, interval), name="market-job-sweeper", daemon=True
    ).start()


def init_leases(app: Flask) -> None:
    """Start the sweeper with the first request this process serves (cheap after that)."""

    def _first_request() -> None:
        start_sweeper(app)

    app.before_request(_first_request)

