"""The agreement-expiry sweeper, scheduled in the app like the job-lease sweeper
(:mod:`market.leases`): at the first request of every web process, then every
``MARKET_AGREEMENT_SWEEP_SECONDS`` (default 300; 0 runs it only once at start-up) in a daemon
thread of that process. ``market agreements expire`` runs the same sweep from cron.

Each agreement is expired in its own transaction, claimed by a conditional ``UPDATE``
(:func:`market.agreements.services.expire_agreement`), so that any number of processes may
sweep at once: one of them expires an agreement, audits it and delists its datasets; the
others skip it. Between the end of a term and the next sweep the catalogue already hides the
datasets (read-time expiry, :func:`market.agreements.services.lapsed_dataset_ids`).

Under ``TESTING`` the timer never starts unless ``MARKET_AGREEMENT_SWEEP_THREAD`` is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading

from flask import Flask, current_app
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.db import utcnow

log = logging.getLogger(__name__)

DEFAULT_SWEEP_SECONDS = 300


def sweep(app: Flask | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Expire every agreement whose term has ended, each in its own committed transaction on
    a session of its own (never the request's). Returns the numbers of the agreements this
    call expired (another process's are not listed). Idempotent; needs an app context."""
    from market.agreements import services
    from market.extensions import db

    app = app or current_app._get_current_object()
    now = now or utcnow()
    actor = Actor.system("agreement-sweeper")
    done: list[str] = []
    with Session(bind=db.engine) as s:
        due = services.due_agreement_ids(s, now)
        s.rollback()
        for agreement_id in due:
            try:
                agreement = services.expire_agreement(s, actor, agreement_id, now)
                if agreement is None:
                    s.rollback()
                    continue
                number = agreement.number
                s.commit()
            except Exception:
                s.rollback()
                raise
            done.append(number)
            log.info("agreement %s expired by the sweeper", number)
    return done


_started: set[int] = set()
_start_lock = threading.Lock()
#: Set to stop every sweeper thread of this process (tests; interpreter exit needs nothing).
_stop = threading.Event()
_threads: list[threading.Thread] = []


def _loop(app: Flask, interval: float) -> None:
    while True:
        with app.app_context():
            try:
                sweep(app)
            except Exception as exc:  # noqa: BLE001 - e.g. before the first migration
                log.warning("agreement sweep failed (%s)", type(exc).__name__)
        if interval <= 0 or _stop.wait(interval):
            return


def start_sweeper(app: Flask) -> bool:
    """Sweep now, then every MARKET_AGREEMENT_SWEEP_SECONDS, in a daemon thread (once per
    process and app). Returns whether this call started it."""
    with _start_lock:
        key = hash((os.getpid(), id(app)))
        if key in _started:
            return False
        _started.add(key)
    if app.testing and not app.config.get("MARKET_AGREEMENT_SWEEP_THREAD"):
        return False
    interval = float(app.config.get("MARKET_AGREEMENT_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS))
    _stop.clear()
    thread = threading.Thread(
        target=_loop, args=(app, interval), name="market-agreement-sweeper", daemon=True
    )
    _threads.append(thread)
    thread.start()
    return True


def stop_sweepers(timeout: float = 10.0) -> None:
    """Stop the sweeper threads of this process and wait for them (tests)."""
    _stop.set()
    while _threads:
        _threads.pop().join(timeout)


def init_agreement_sweeper(app: Flask) -> None:
    """Start the sweeper with the first request this process serves (cheap after that)."""

    def _first_request() -> None:
        start_sweeper(app)

    app.before_request(_first_request)
