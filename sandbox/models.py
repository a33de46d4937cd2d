"""The sandbox query log: one row per query a buyer ran on its own license, accepted or not.

The log keeps what was asked and what was decided. What was answered is kept once per
*release* (:class:`SandboxRelease`): a differentially private answer, keyed by the canonical
question, its privacy parameters and the data versions, returned again to whoever asks the same
question of the same data (no new noise, no new budget). A release holds only noisy aggregates
above the noisy threshold, never rows of the data.

The privacy-budget ledger is :class:`PrivacySpending` (per buyer organization and dataset,
across all the organization's licenses) and :class:`VersionSpending` (per dataset version,
across all buyers); both are charged by atomic ``UPDATE … WHERE spent + cost <= total``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime, utcnow


class QueryStatus(StrEnum):
    ok = "ok"
    refused = "refused"  # the policy, the license state, the quota or the budget said no
    error = "error"  # the engine could not run an accepted query
    timeout = "timeout"  # the engine stopped an accepted query at its time limit
    running = "running"  # charged and committed; the engine has not answered yet


class SandboxQuery(Base):
    __tablename__ = "sandbox_queries"
    __table_args__ = (
        sa.CheckConstraint("status IN ('ok','refused','error','timeout','running')", name="status"),
        sa.CheckConstraint("epsilon_spent >= 0", name="epsilon_non_negative"),
        sa.Index("ix_sandbox_queries_license_canonical", "license_id", "canonical_hash"),
        sa.Index("ix_sandbox_queries_license_created", "license_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(sa.ForeignKey("licenses.id"))
    #: The license's buyer; rows are only written for queries by that buyer's users.
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The buyer's SQL, cut to 4,000 characters (queries over licensed columns, not personal data).
    sql_text: Mapped[str] = mapped_column(sa.Text)
    #: SHA-256 of the full SQL text as sent.
    sql_hash: Mapped[str] = mapped_column(sa.String(64))
    #: SHA-256 of the policy's canonical form; null when the policy refused the text.
    canonical_hash: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    #: A stable rule code (``not_aggregated``, ``quota_exhausted``, ``timeout``…); null if ok.
    rule: Mapped[str | None] = mapped_column(sa.String(40))
    rows_returned: Mapped[int | None] = mapped_column()
    suppressed_groups: Mapped[int | None] = mapped_column()
    truncated: Mapped[bool] = mapped_column(default=False)
    elapsed_ms: Mapped[int | None] = mapped_column()
    #: Whether the query used one unit of the license's quota.
    quota_charged: Mapped[bool] = mapped_column(default=False)
    #: Differential-privacy budget this query spent (0 for repeats and non-DP tables).
    epsilon_spent: Mapped[Decimal] = mapped_column(sa.Numeric(10, 4), default=Decimal(0))
    #: The release this answer is (a first run stores it; a cached answer points to it).
    release_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sandbox_releases.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxRelease(Base):
    """One released answer: the same question over the same data versions gets it again."""

    __tablename__ = "sandbox_releases"
    __table_args__ = (
        sa.CheckConstraint("epsilon >= 0 AND delta >= 0", name="cost_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the policy's release key (canonical question + privacy parameters) and the
    #: data versions (``slug@version,…``).
    release_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    data_versions: Mapped[str] = mapped_column(sa.String(1000))
    #: ``{columns, column_kinds, rows, error_bounds, truncated}`` (noisy aggregates only).
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    epsilon: Mapped[Decimal] = mapped_column(sa.Numeric(10, 4))
    delta: Mapped[Decimal] = mapped_column(sa.Numeric(20, 15))
    #: The organization whose query made the release (who paid for it).
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SandboxReleaseClaim(Base):
    """A release being made: the first asker of a new question holds it from its charge until
    its answer is stored (or its query failed). Anyone asking the same question meanwhile
    waits for that release instead of drawing (and paying for) a second one. The primary key
    is what makes the claim exclusive on SQLite and on PostgreSQL alike."""

    __tablename__ = "sandbox_release_claims"

    release_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: The ``running`` query that holds the claim (set in the same transaction).
    query_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sandbox_queries.id"))
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: After this the holder is presumed dead (its process was killed) and the claim may be
    #: taken over: the engine's time limit plus a margin.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PrivacySpending(Base):
    """What one buyer organization spent on one dataset, across all its licenses."""

    __tablename__ = "privacy_spending"
    __table_args__ = (
        sa.UniqueConstraint("buyer_org_id", "dataset_id", name="uq_privacy_spending_org_dataset"),
        sa.CheckConstraint("epsilon_spent >= 0 AND delta_spent >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    epsilon_spent: Mapped[Decimal] = mapped_column(sa.Numeric(10, 4), default=Decimal(0))
    delta_spent: Mapped[Decimal] = mapped_column(sa.Numeric(20, 15), default=Decimal(0))
    releases: Mapped[int] = mapped_column(default=0)


class VersionSpending(Base):
    """What all buyers together spent on one dataset version."""

    __tablename__ = "privacy_version_spending"
    __table_args__ = (
        sa.CheckConstraint("epsilon_spent >= 0 AND delta_spent >= 0", name="non_negative"),
    )

    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset_versions.id"), primary_key=True, autoincrement=False
    )
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    epsilon_spent: Mapped[Decimal] = mapped_column(sa.Numeric(10, 4), default=Decimal(0))
    delta_spent: Mapped[Decimal] = mapped_column(sa.Numeric(20, 15), default=Decimal(0))
    releases: Mapped[int] = mapped_column(default=0)
