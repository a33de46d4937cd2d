"""Delivering the e-mail outbox: a pluggable sender (SMTP in production, a fake in tests).

Each pending row is claimed (``sending``) in a transaction of its own before its mail is
handed to the sender, then marked ``sent``: delivery is at most once, also with several
``market notify send`` running at once (see :func:`deliver_outbox`). A failure leaves the row
``pending`` with the error and the attempt count, for the next run. Each mail is written in
its recipient's language (``users.language``; Chinese when they never chose).
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from market.accounts.models import User
from market.db import utcnow
from market.notifications.models import EmailOutbox, Notification


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Sender(Protocol):
    def send(self, mail: Mail) -> None:
        """Deliver ``mail``; raise any exception when it was not accepted."""


class SmtpSender:
    """Sends through the SMTP server of ``MARKET_SMTP_*``."""

    def __init__(self, config) -> None:
        self.host = config["MARKET_SMTP_HOST"]
        self.port = int(config["MARKET_SMTP_PORT"])
        self.user = config.get("MARKET_SMTP_USER")
        self.password = config.get("MARKET_SMTP_PASSWORD")
        self.starttls = bool(config.get("MARKET_SMTP_STARTTLS"))
        self.sender = config["MARKET_SMTP_FROM"]

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0


#: The languages a mail can be written in; a user who never chose gets the first.
MAIL_LOCALES = ("zh", "en")
#: A row claimed longer ago than this without an outcome is reported as stuck.
STUCK_AFTER = dt.timedelta(minutes=15)


def mail_locale(user: User) -> str:
    """The recipient's language (``users.language``), Chinese when they never chose."""
    return user.language if user.language in MAIL_LOCALES else MAIL_LOCALES[0]


def _compose(notification: Notification, user: User) -> Mail:
    from market.notifications.services import text

    with force_locale(mail_locale(user)):
        subject = _("Public Data Market notification")
        body = text(notification)
    return Mail(to=user.email, subject=subject, body=body)


def _claim(session: Session, after_id: int) -> int | None:
    """Claim the oldest pending row after ``after_id`` for this run; returns its id, or None
    when no pending row is left.

    The claim is a conditional UPDATE (``status`` from ``pending`` to ``sending``): of two
    runs that pick the same row, only the one whose UPDATE changed it owns it, so each mail is
    handed to the sender at most once. On PostgreSQL the candidate is read ``FOR UPDATE SKIP
    LOCKED``, so that concurrent runs take different rows instead of waiting on each other.
    """
    while True:
        pick = (
            sa.select(EmailOutbox.id)
            .where(EmailOutbox.status == "pending", EmailOutbox.id > after_id)
            .order_by(EmailOutbox.id)
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        candidate = session.scalar(pick)
        if candidate is None:
            return None
        claimed = session.execute(
            sa.update(EmailOutbox)
            .where(EmailOutbox.id == candidate, EmailOutbox.status == "pending")
            .values(status="sending", claimed_at=utcnow(), attempts=EmailOutbox.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            return candidate
        after_id = candidate  # another run took it: look further


def deliver_outbox(
    session: Session, sender: Sender, *, limit: int = 100, commit: Callable[[], None] | None = None
) -> DeliveryReport:
    """Send up to ``limit`` pending mails, oldest first; returns how many went and failed.

    Each row is claimed (``sending``, committed) before the mail is handed to ``sender``, then
    marked ``sent``, or ``pending`` again with the error for the next run. Delivery is at most
    once: two runs at once never send the same row, and a run that dies between the claim and
    the outcome leaves its row ``sending`` (reported by :func:`stuck_count`, requeued only by
    :func:`requeue_stuck`, since the mail may have gone). ``commit`` is called after each
    step (the CLI commits; tests may pass their own).
    """
    commit = commit or session.commit
    report = DeliveryReport()
    last_id = 0
    while report.sent + report.failed < limit:
        outbox_id = _claim(session, last_id)
        # End the transaction before the network call: the claim must be visible to other
        # runs, and SQLite's write lock must not be held while an SMTP server answers.
        commit()
        if outbox_id is None:
            break
        last_id = outbox_id
        row = session.get(EmailOutbox, outbox_id)
        session.refresh(row)
        user = session.get(User, row.user_id)
        notification = session.get(Notification, row.notification_id)
        mail = _compose(notification, user) if user and notification else None
        error = None
        try:
            if mail is None:
                raise LookupError("recipient or notification missing")
            sender.send(mail)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the row for a retry
            error = f"{type(exc).__name__}: {exc}"[:200]
        if error is None:
            row.status = "sent"
            row.sent_at = utcnow()
            row.last_error = None
            report.sent += 1
        else:
            row.status = "pending"
            row.last_error = error
            report.failed += 1
        row.claimed_at = None
        session.flush()
        commit()
    return report


def stuck_count(session: Session, now: dt.datetime | None = None) -> int:
    """Rows claimed more than :data:`STUCK_AFTER` ago with no outcome (a run died mid-send)."""
    cutoff = (now or utcnow()) - STUCK_AFTER
    return session.scalar(
        sa.select(sa.func.count()).select_from(EmailOutbox)
        .where(EmailOutbox.status == "sending", EmailOutbox.claimed_at < cutoff)
    ) or 0


def requeue_stuck(session: Session, now: dt.datetime | None = None) -> int:
    """Put stuck rows back to ``pending`` (their mail may be sent twice); returns how many."""
    cutoff = (now or utcnow()) - STUCK_AFTER
    return session.execute(
        sa.update(EmailOutbox)
        .where(EmailOutbox.status == "sending", EmailOutbox.claimed_at < cutoff)
        .values(status="pending", claimed_at=None, last_error="requeued after an unknown outcome")
        .execution_options(synchronize_session=False)
    ).rowcount


def default_sender() -> Sender:
    return SmtpSender(current_app.config)
