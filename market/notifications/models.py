from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """One state change told to one user of the organization it concerns.

    Written in the transaction of the audit event it comes from (``rules``), so a change
    that rolls back leaves no notification. ``params`` holds ids and public names only,
    never personal data; the text is rendered in the reader's language when shown.
    """

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_user_unread", "recipient_user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    recipient_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: A stable code such as ``license.invoiced`` (``rules.MESSAGES``), never translated.
    type: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: The audit event this came from.
    audit_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class EmailOutbox(Base):
    """An e-mail to send about one notification (only when ``MARKET_NOTIFY_EMAIL`` is on).

    The address is read from the user at sending time, so no address is copied here. A
    failed delivery stays ``pending`` with its error and attempt count and is tried again
    by the next ``market notify send``: nothing is dropped. A row is claimed (``sending``)
    before its mail goes, so that no two runs send it (``sender.deliver_outbox``).
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending','sending','sent')", name="status"),
        sa.Index("ix_email_outbox_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        sa.ForeignKey("notifications.id"), unique=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When a ``market notify send`` claimed the row (status ``sending``): the mail is being
    #: handed to the SMTP server; a row left ``sending`` has an unknown outcome.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
