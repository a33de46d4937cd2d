"""Delivering the e-mail outbox: a pluggable sender (SMTP in production, a fake in tests).

Each pending row is sent and then marked ``sent`` in a transaction of its own, so a crash
loses nothing and repeats at most the one mail being sent (delivery is at least once; two
``market notify send`` running at once may both send a mail: run one at a time). A failure
leaves the row ``pending`` with the error and the attempt count, for the next run.
"""

from __future__ import annotations

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


def _compose(notification: Notification, to: str) -> Mail:
    from market.notifications.services import text

    # Mails go out in Chinese, the product's language (no per-user language is stored).
    with force_locale("zh"):
        subject = _("Public Data Market notification")
        body = text(notification)
    return Mail(to=to, subject=subject, body=body)


def deliver_outbox(
    session: Session, sender: Sender, *, limit: int = 100, commit: Callable[[], None] | None = None
) -> DeliveryReport:
    """Send up to ``limit`` pending mails, oldest first; returns how many went and failed.

    ``commit`` is called after each row (the CLI commits; tests may pass their own).
    """
    commit = commit or session.commit
    report = DeliveryReport()
    ids = session.scalars(
        sa.select(EmailOutbox.id)
        .where(EmailOutbox.status == "pending")
        .order_by(EmailOutbox.id)
        .limit(limit)
    ).all()
    for outbox_id in ids:
        row = session.get(EmailOutbox, outbox_id)
        if row is None or row.status != "pending":
            continue
        user = session.get(User, row.user_id)
        notification = session.get(Notification, row.notification_id)
        mail = _compose(notification, user.email) if user and notification else None
        # End the transaction before the network call: SQLite's write lock (every transaction
        # takes it) must not be held while an SMTP server answers.
        commit()
        error = None
        try:
            if mail is None:
                raise LookupError("recipient or notification missing")
            sender.send(mail)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the row for a retry
            error = f"{type(exc).__name__}: {exc}"[:200]
        row = session.get(EmailOutbox, outbox_id)
        row.attempts += 1
        if error is None:
            row.status = "sent"
            row.sent_at = utcnow()
            row.last_error = None
            report.sent += 1
        else:
            row.last_error = error
            report.failed += 1
        session.flush()
        commit()
    return report


def default_sender() -> Sender:
    return SmtpSender(current_app.config)
