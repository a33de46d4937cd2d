"""The sandbox query log: one row per query a buyer ran on its own license, accepted or not.

The log keeps what was asked and what was decided, never what was answered: result rows are
not stored (a result is the buyer's, and storing it would be a copy of data outside the
operation domain). The privacy-budget ledger is the ``epsilon_spent`` column together with
``licenses.privacy_budget_remaining``; ``(license_id, canonical_hash)`` finds an earlier run
of the same question, which is answered again without spending budget twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime, utcnow


class QueryStatus(StrEnum):
    ok = "ok"
    refused = "refused"  # the policy, the license state, the quota or the budget said no
    error = "error"  # the engine could not run an accepted query
    timeout = "timeout"  # the engine stopped an accepted query at its time limit


class SandboxQuery(Base):
    __tablename__ = "sandbox_queries"
    __table_args__ = (
        sa.CheckConstraint("status IN ('ok','refused','error','timeout')", name="status"),
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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
