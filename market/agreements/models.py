"""Authorization agreements (授权运营协议) and the departments' registered signing keys."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.accounts.models import Organization
from market.db import Base, UTCDateTime, utcnow


class AgreementStatus(StrEnum):
    #: Written by the department, not signed yet (a department that signs client-side).
    draft = "draft"
    #: Signed by the department, waiting for the operator's countersignature.
    proposed = "proposed"
    #: Both signatures: datasets in its scope may be listed while its term runs.
    active = "active"
    #: The operator declined to countersign.
    declined = "declined"
    #: The term ended (the sweeper delisted its datasets).
    expired = "expired"


class KeyOrigin(StrEnum):
    #: A key the department registered; the platform only holds the public half.
    registered = "registered"
    #: A key the platform derives and holds for the department (demo and web flow).
    custodial = "custodial"


class DepartmentKey(Base):
    """A public key a department registered to sign agreements client-side."""

    __tablename__ = "department_signing_keys"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "key_id", name="uq_department_signing_keys_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    key_id: Mapped[str] = mapped_column(sa.String(16))
    #: Raw Ed25519 public key, base64url without padding.
    public_key: Mapped[str] = mapped_column(sa.String(64))
    registered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revocation_reason: Mapped[str | None] = mapped_column(sa.Text)


class Agreement(Base):
    """A department authorizes the operator over a scope, for a term, at a revenue share."""

    __tablename__ = "authorization_agreements"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('draft','proposed','active','declined','expired')", name="status"
        ),
        sa.CheckConstraint(
            "revenue_share_bps >= 0 AND revenue_share_bps <= 10000", name="revenue_share_bps"
        ),
        sa.CheckConstraint("ends_at > starts_at", name="term"),
        sa.CheckConstraint("key_origin IN ('registered','custodial')", name="key_origin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(40), unique=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=AgreementStatus.draft, index=True)
    #: Scope: dataset categories and/or dataset ids (JSON lists; either may be empty).
    categories: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    dataset_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    #: The department's share of each payment for its data, in basis points; the operator's
    #: fee is the rest.
    revenue_share_bps: Mapped[int] = mapped_column(sa.Integer)
    #: The signed document exactly as signed (JSON-native values).
    document: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    key_origin: Mapped[str] = mapped_column(sa.String(12), default=KeyOrigin.custodial)
    department_key_id: Mapped[str | None] = mapped_column(sa.String(16))
    department_public_key: Mapped[str | None] = mapped_column(sa.String(64))
    department_signature: Mapped[str | None] = mapped_column(sa.String(128))
    operator_key_id: Mapped[str | None] = mapped_column(sa.String(16))
    operator_signature: Mapped[str | None] = mapped_column(sa.String(128))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    countersigned_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    countersigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[Organization] = relationship(lazy="joined")
