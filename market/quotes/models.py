from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime, utcnow


class PricingParameterSet(Base):
    """One saved version of the pricing parameters. The newest version is current;
    quotes record the version they used and keep it."""

    __tablename__ = "pricing_parameter_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    #: ``pricing.PricingParameters.to_dict()``: JSON-safe, Decimals as strings.
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Quote(Base):
    """A signed price offer, honoured until ``expires_at``.

    An *upgrade quote* (``upgrade_of_license_id`` set) prices widening an active license: its
    total is ``P(new) - P(old)`` under the license's original parameter version, and it can
    only be used to upgrade that license, never to open a new one.
    """

    __tablename__ = "quotes"
    __table_args__ = (
        sa.CheckConstraint("total_fen >= 0", name="total_non_negative"),
        sa.CheckConstraint(
            "purpose IN ('public_welfare','research','internal_risk_control','commercial_product')",
            name="purpose",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    params_version: Mapped[int] = mapped_column()
    model_version: Mapped[str] = mapped_column(sa.String(32))
    purpose: Mapped[str] = mapped_column(sa.String(32))
    duration_months: Mapped[int] = mapped_column()
    query_quota: Mapped[int] = mapped_column()
    total_fen: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
    #: ``[{dataset_id, dataset_version, columns, amount, factors: {name: "decimal"}}]``
    items: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    #: The canonical document that was signed (what a verifier recomputes).
    document: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    signature: Mapped[str] = mapped_column(sa.String(128))
    key_id: Mapped[str] = mapped_column(sa.String(16))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    upgrade_of_license_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("licenses.id", use_alter=True), index=True
    )

    @property
    def is_upgrade(self) -> bool:
        return self.upgrade_of_license_id is not None

    def is_expired(self, now: dt.datetime) -> bool:
        return now >= self.expires_at


class PricingProposal(Base):
    """Ceilings and revenue caps the operator proposes; they apply only once the regulator
    approves (NDRC 发改价格〔2025〕65号), as a new parameter version, and are then published
    with it (``GET /api/v1/pricing/parameters``)."""

    __tablename__ = "pricing_proposals"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending','approved','rejected')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Only :data:`pricing.REGULATED_FIELDS`, in ``PricingParameters.to_dict()`` form.
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: The parameter version current when it was proposed (shown beside the changes).
    based_on_version: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    note: Mapped[str | None] = mapped_column(sa.Text)
    proposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(sa.Text)
    #: The parameter version the approval created.
    result_version: Mapped[int | None] = mapped_column()
