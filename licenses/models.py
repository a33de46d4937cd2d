from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.accounts.models import Organization
from market.datasets.models import Dataset
from market.db import Base, UTCDateTime, utcnow


class License(Base):
    """A usage right (never ownership) over licensed datasets and columns."""

    __tablename__ = "licenses"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending_review','awaiting_payment','active','expired','revoked','suspended','rejected')",
            name="status",
        ),
        sa.CheckConstraint("quota_remaining >= 0", name="quota_non_negative"),
        sa.CheckConstraint("price_total_fen >= 0", name="price_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: One license per quote.
    quote_id: Mapped[int] = mapped_column(sa.ForeignKey("quotes.id"), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(32))
    purpose_statement: Mapped[str] = mapped_column(sa.Text)
    duration_months: Mapped[int] = mapped_column()
    query_quota: Mapped[int] = mapped_column()
    #: Decremented atomically (``UPDATE … WHERE quota_remaining > 0``), never in Python.
    quota_remaining: Mapped[int] = mapped_column()
    privacy_budget_total: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 4))
    privacy_budget_remaining: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 4))
    price_total_fen: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
    #: Set when the license turns active.
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    review_comment: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: A free license's reason for public-welfare use, as the buyer wrote it: the operator
    #: reviews it (every free license goes to review; ``licenses.welfare``).
    free_use_justification: Mapped[str | None] = mapped_column(sa.Text)
    #: The signed ODRL policy, once active.
    document: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    signature: Mapped[str | None] = mapped_column(sa.String(128))
    key_id: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: A license for a data product (数据产品) under a scenario (场景): ``market.scenarios``.
    scenario_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scenarios.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("data_products.id"), index=True)

    items: Mapped[list[LicenseItem]] = relationship(
        back_populates="license", cascade="all, delete-orphan", order_by="LicenseItem.id"
    )
    buyer: Mapped[Organization] = relationship(foreign_keys=[buyer_org_id], lazy="joined")
    payments: Mapped[list[Payment]] = relationship(back_populates="license", order_by="Payment.id")


class LicenseItem(Base):
    __tablename__ = "license_items"
    __table_args__ = (
        sa.UniqueConstraint("license_id", "dataset_id", name="uq_license_items_license_dataset"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    #: The version current when the license was granted (for the ODRL target); the
    #: sandbox always reads the dataset's current version.
    dataset_version: Mapped[int] = mapped_column()
    #: Licensed column names (output names); the entity key is always included.
    columns: Mapped[list[str]] = mapped_column(sa.JSON)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)

    license: Mapped[License] = relationship(back_populates="items")
    dataset: Mapped[Dataset] = relationship(lazy="joined")


class PaymentState(StrEnum):
    pending = "pending"
    settled = "settled"
    #: Stripe reported a failed attempt; a later success (another card) still settles it.
    failed = "failed"
    #: Replaced by another payment before it settled (an invoice is voided).
    canceled = "canceled"


class Payment(Base):
    """One attempt to pay for a license, through ``invoice`` or ``stripe``."""

    __tablename__ = "payments"
    __table_args__ = (
        sa.CheckConstraint("provider IN ('invoice','stripe')", name="provider"),
        sa.CheckConstraint("status IN ('pending','settled','failed','canceled')", name="status"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= amount_fen", name="refunded_within_amount"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default=PaymentState.pending, index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
    #: The platform's reference, sent to the provider (Stripe metadata ``payment_ref``).
    reference: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The invoice number, or the Stripe PaymentIntent id.
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    invoice_number: Mapped[str | None] = mapped_column(sa.String(32))
    #: The buyer's bank transfer, as the operator recorded it when settling an invoice.
    bank_reference: Mapped[str | None] = mapped_column(sa.String(200))
    #: Sum of the refunds issued against this payment.
    refunded_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    settled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    license: Mapped[License] = relationship(back_populates="payments")


class Refund(Base):
    """Money given back on a payment: a Stripe refund, or a credit note for an invoice."""

    __tablename__ = "refunds"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: Stripe's refund id, or the credit-note number.
    provider_refund_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    credit_note_number: Mapped[str | None] = mapped_column(sa.String(32))
    #: The provider's status: ``succeeded``, ``pending`` (a credit note awaiting transfer),
    #: ``paid`` (a credit note the operator paid back), …
    status: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: A credit note paid back to the buyer: when, by whom, and the bank transfer's reference.
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    paid_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    paid_reference: Mapped[str | None] = mapped_column(sa.String(200))
    #: A Stripe refund that failed becomes a pending credit note: the idempotency reference
    #: of its Stripe refund (the same on every retry, so Stripe never refunds twice), how
    #: many times it was tried, and the provider's last error (never keys or card data).
    provider_ref: Mapped[str | None] = mapped_column(sa.String(80))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.String(200))

    payment: Mapped[Payment] = relationship()


class WebhookEvent(Base):
    """A provider event already handled: the key of idempotent webhook processing."""

    __tablename__ = "payment_webhook_events"
    __table_args__ = (
        sa.UniqueConstraint(
            "provider", "event_id", name="uq_payment_webhook_events_provider_event"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    event_id: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(100))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    #: What the platform did: ``settled``, ``failed``, ``ignored``, ``unknown_payment``, …
    outcome: Mapped[str] = mapped_column(sa.String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerJournal(Base):
    """A balanced set of ledger lines about one business reference (``licenses.journal``).

    ``(kind, reference)`` is unique: a settlement, refund or payout can be written only once,
    even by two transactions racing past every other check.
    """

    __tablename__ = "ledger_journals"
    __table_args__ = (
        sa.UniqueConstraint("kind", "reference", name="uq_ledger_journals_kind_reference"),
        sa.CheckConstraint(
            "kind IN ('invoice_issued','invoice_voided','payment_settled','refund_issued',"
            "'credit_note_paid','payout')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    reference: Mapped[str] = mapped_column(sa.String(200))
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    license_id: Mapped[int | None] = mapped_column(sa.ForeignKey("licenses.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(sa.ForeignKey("refunds.id"))
    #: The department paid, for payouts.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    memo: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    lines: Mapped[list[LedgerLine]] = relationship(
        back_populates="journal", cascade="all, delete-orphan", order_by="LedgerLine.id"
    )


class LedgerLine(Base):
    """One debit or credit, in fen. Never updated or deleted: corrections are new journals."""

    __tablename__ = "ledger_lines"
    __table_args__ = (
        sa.CheckConstraint(
            "(debit_fen > 0 AND credit_fen = 0) OR (debit_fen = 0 AND credit_fen > 0)",
            name="one_side",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    journal_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_journals.id"), index=True)
    account: Mapped[str] = mapped_column(sa.String(100), index=True)
    debit_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    credit_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Parsed from ``payable:department:{id}`` so that statements filter without parsing.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"), index=True)

    journal: Mapped[LedgerJournal] = relationship(back_populates="lines")


class BlacklistEntry(Base):
    """An organization on the regulator's blacklist: it may not apply, query or look up.

    One row per listed organization; removals delete the row (the audit log keeps the
    history, with the reasons).
    """

    __tablename__ = "blacklist_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), unique=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The end of the listing's term (exclusive); ``None``: until removed (governance, 红黑榜).
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    organization: Mapped[Organization] = relationship(lazy="joined")


class PublicWelfareBody(Base):
    """An organization the operator recognizes as a public-welfare body: it may apply for free
    (public-welfare) licenses, each still reviewed by the operator. Removal deletes the row;
    the audit log keeps the history with the reasons."""

    __tablename__ = "public_welfare_bodies"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), unique=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")


class DocumentSequence(Base):
    """The last number issued per document prefix (``INV``, ``CN``) and month (``YYYYMM``)."""

    __tablename__ = "document_sequences"

    prefix: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    last_value: Mapped[int] = mapped_column(sa.BigInteger, default=0)
