"""Row locks, taken in one order everywhere: the license, then its payments, then their
refunds, then (through ``market.audit.services.record``) the audit chain's head. A
transaction that took them in another order could deadlock with one that follows it.

``SELECT … FOR UPDATE`` on PostgreSQL; SQLite ignores it, and needs nothing more: every
transaction there starts with ``BEGIN IMMEDIATE``, so writers are serialized anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licenses.models import License, Payment, Refund


def lock_license(session: Session, license_id: int) -> License | None:
    """The license row, locked and re-read from the database (not from the identity map)."""
    return session.execute(
        sa.select(License)
        .where(License.id == license_id)
        .with_for_update(of=License)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def lock_payment(session: Session, payment_id: int) -> Payment | None:
    """The payment row, locked and re-read. Lock its license first."""
    return session.execute(
        sa.select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def lock_refund(session: Session, refund_id: int) -> Refund | None:
    """The refund row, locked and re-read."""
    return session.execute(
        sa.select(Refund)
        .where(Refund.id == refund_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
