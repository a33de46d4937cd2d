from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.accounts.models import Organization
from market.db import Base, UTCDateTime, utcnow


class ConsentStatus(StrEnum):
    requested = "requested"
    granted = "granted"
    denied = "denied"
    revoked = "revoked"
    #: Never stored: a granted consent whose ``valid_until`` has passed reads as expired.
    expired = "expired"


STORED_STATUSES = ("requested", "granted", "denied", "revoked")


class Consent(Base):
    """A bank's request to look up one enterprise's records under one license, and the
    enterprise's answer (or the operator's record of a paper authorization letter, 授权书).

    The enterprise is named by its Unified Social Credit Code; the platform finds its rows by
    computing the keyed pseudonym of that code at lookup time and never stores the pseudonym.
    """

    __tablename__ = "consents"
    __table_args__ = (
        sa.CheckConstraint("status IN ('requested','granted','denied','revoked')", name="status"),
        sa.CheckConstraint("length(subject_credit_code) = 18", name="credit_code_length"),
        sa.Index("ix_consents_license_subject", "license_id", "subject_credit_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"))
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The enterprise's code (an organization's, not personal data), upper-cased.
    subject_credit_code: Mapped[str] = mapped_column(sa.String(18), index=True)
    #: The registered subject organization with that code, if any (set again on decision).
    subject_org_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True
    )
    purpose: Mapped[str] = mapped_column(sa.Text)
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16), default=ConsentStatus.requested)
    #: The reference of a paper authorization letter, when the operator recorded one.
    authorization_reference: Mapped[str | None] = mapped_column(sa.String(200))
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    buyer: Mapped[Organization] = relationship(foreign_keys=[buyer_org_id], lazy="joined")
    subject_org: Mapped[Organization | None] = relationship(
        foreign_keys=[subject_org_id], lazy="joined"
    )

    def status_at(self, now: dt.datetime) -> str:
        """The status as callers see it: a granted consent past ``valid_until`` is expired."""
        if self.status == ConsentStatus.granted and self.valid_until <= now:
            return ConsentStatus.expired.value
        return self.status

    def is_usable(self, now: dt.datetime) -> bool:
        return self.status == ConsentStatus.granted and self.valid_until > now


class Lookup(Base):
    """One consented lookup a bank made: which tables and how many rows (never the rows)."""

    __tablename__ = "lookups"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(sa.ForeignKey("consents.id"), index=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"), index=True)
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    subject_org_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True
    )
    #: The table slugs read, in license order.
    tables: Mapped[list[str]] = mapped_column(sa.JSON)
    #: ``{slug: rows returned}``.
    row_counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    consent: Mapped[Consent] = relationship(lazy="joined")
