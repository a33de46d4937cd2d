from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    """One event. ``hash = SHA-256(prev_hash || canonical JSON of the event)``.

    ``seq`` is assigned under the append lock (see services), never by a sequence, so the
    chain has no gaps unless someone deletes a row.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    type: Mapped[str] = mapped_column(sa.String(64), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(index=True)
    actor_org_id: Mapped[int | None] = mapped_column(index=True)
    #: ``{"user_id", "org_id", "role"}`` or ``{"system": "cli"}``; ids only, no personal data.
    actor: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    subject_type: Mapped[str | None] = mapped_column(sa.String(40))
    subject_id: Mapped[str | None] = mapped_column(sa.String(64))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    __table_args__ = (sa.Index("ix_audit_events_subject", "subject_type", "subject_id"),)


class AuditCheckpoint(Base):
    """An Ed25519 signature over ``(seq, hash)``, written every N events.

    A checkpoint anchors the chain: rewriting history before it would need the platform's
    signing key, and truncating the tail past it is detected.
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(sa.String(64))
    key_id: Mapped[str] = mapped_column(sa.String(16))
    signature: Mapped[str] = mapped_column(sa.String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditHeadObservation(Base):
    """A signed head that a regulator saw (on the audit console, or from ``/audit/head``).

    Kept so that a later truncation of the chain below a head someone has already seen is
    detected by every verification, not only by whoever kept a copy of the head. Ids only.
    """

    __tablename__ = "audit_head_observations"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), index=True)
    hash: Mapped[str] = mapped_column(sa.String(64))
    observer_user_id: Mapped[int | None] = mapped_column()
    observer_org_id: Mapped[int | None] = mapped_column()
    source: Mapped[str] = mapped_column(sa.String(16))
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
