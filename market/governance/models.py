"""Governance records: red/black list entries and registration certificates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.accounts.models import Organization
from market.db import Base, UTCDateTime, utcnow


class ListEntry(Base):
    """A red-list entry (an organization or a free-text subject), or a black-list entry for a
    free-text subject (a scenario or project).

    Black-listed *organizations* stay in ``blacklist_entries`` (``licenses.blacklist``), which
    every area already enforces; this table holds the rest of the 红黑榜. Removal deletes the
    row; the audit log keeps the history.
    """

    __tablename__ = "governance_list_entries"
    __table_args__ = (
        sa.CheckConstraint("list IN ('red','black')", name="list"),
        sa.CheckConstraint(
            "(organization_id IS NULL) <> (subject IS NULL)", name="organization_or_subject"
        ),
        sa.CheckConstraint("list = 'red' OR organization_id IS NULL", name="black_orgs_elsewhere"),
        sa.UniqueConstraint("list", "organization_id", name="uq_governance_list_entries_org"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list: Mapped[str] = mapped_column(sa.String(8), index=True)
    organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    #: A scenario or project named in free text (no personal data).
    subject: Mapped[str | None] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organization: Mapped[Organization | None] = relationship(lazy="joined")


class RegistrationCertificate(Base):
    """The signed registration certificate (数据资产登记证书) of one listed dataset version."""

    __tablename__ = "registration_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("dataset_versions.id"), unique=True)
    #: The signed payload exactly as signed (JSON-native values only).
    certificate: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    signature: Mapped[str] = mapped_column(sa.String(128))
    key_id: Mapped[str] = mapped_column(sa.String(16))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LicenseRegulatorDecision(Base):
    """The regulator's decision on a license application that includes important data (重要数据,
    GB/T 43697-2024): such a license needs it as well as the operator's approval."""

    __tablename__ = "license_regulator_decisions"
    __table_args__ = (sa.CheckConstraint("decision IN ('approve','reject')", name="decision"),)

    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"), primary_key=True)
    decision: Mapped[str] = mapped_column(sa.String(8))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SecurityLevelChange(Base):
    """A department's request to change a dataset's GB/T 43697 security level after upload
    (``market.governance.levels``). Raising applies at once (stricter rules); lowering needs
    the operator's and the regulator's approval; ``core`` is never stored (refused)."""

    __tablename__ = "security_level_changes"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending','applied','rejected')", name="status"),
        sa.CheckConstraint("from_level IN ('general','important')", name="from_level"),
        sa.CheckConstraint("to_level IN ('general','important')", name="to_level"),
        sa.CheckConstraint("from_level <> to_level", name="changes"),
        sa.CheckConstraint(
            "operator_decision IS NULL OR operator_decision IN ('approve','reject')",
            name="operator_decision",
        ),
        sa.CheckConstraint(
            "regulator_decision IS NULL OR regulator_decision IN ('approve','reject')",
            name="regulator_decision",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    from_level: Mapped[str] = mapped_column(sa.String(16))
    to_level: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    operator_decision: Mapped[str | None] = mapped_column(sa.String(8))
    operator_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    operator_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    regulator_decision: Mapped[str | None] = mapped_column(sa.String(8))
    regulator_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    regulator_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The rejecting party's comment.
    comment: Mapped[str | None] = mapped_column(sa.Text)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
