"""Refunds of settled payments: pro rata for the unused term on revocation, through the
provider the payment came by (a Stripe refund, or a credit note for an invoice), with the
split reversed in the ledger in proportion to what each party still holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licenses import journal as jr
from licenses import ledger
from licenses import permissions as perm
from licenses.locks import lock_license, lock_payment, lock_refund
from licenses.models import License, Payment, PaymentState, Refund
from licenses.payments import invoice_provider, stripe_provider
from licenses.refunds import prorata_refund, split_refund
from market.accounts.actor import Actor
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound

#: The status of a credit note the operator has not paid back yet, and of one it has.
CREDIT_NOTE_PENDING = "pending"
CREDIT_NOTE_PAID = "paid"
MAX_TRANSFER_REFERENCE = 200


def settled_payment(session: Session, license_id: int) -> Payment | None:
    return session.scalar(
        sa.select(Payment)
        .where(Payment.license_id == license_id, Payment.status == PaymentState.settled.value)
        .order_by(Payment.settled_at.desc(), Payment.id.desc())
    )


def refund_payment(
    session: Session,
    actor: Actor,
    payment_id: int,
    amount_fen: int,
    reason: str,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> Refund | None:
    """Give back ``amount_fen`` of a settled payment through its provider, and reverse the
    split proportionally in the ledger. Returns None for a zero amount.

    Raises Conflict (not settled; more than what is left), PaymentProviderError (→ 502).
    """
    found = session.get(Payment, payment_id)
    if found is None:
        raise NotFound("No such payment.")
    lock_license(session, found.license_id)
    payment = lock_payment(session, payment_id)
    if payment.status != PaymentState.settled:
        raise Conflict(f"Payment {payment.id} is not settled; there is nothing to refund.")
    if amount_fen <= 0:
        return None
    left = payment.amount_fen - payment.refunded_fen
    if amount_fen > left:
        raise Conflict(f"Only {left} fen of payment {payment.id} is left to refund.")
    parts = split_refund(
        amount_fen,
        ledger.settled_split(session, payment.id),
        ledger.refunded_split(session, payment.id),
    )
    now = now or utcnow()
    earlier = session.scalar(
        sa.select(sa.func.count()).select_from(Refund).where(Refund.payment_id == payment.id)
    )
    if payment.provider == "invoice":
        result = invoice_provider(session, now).refund(payment.provider_id, amount_fen)
    else:
        with stripe_provider(config) as stripe:
            # A deterministic reference: a retried revocation does not refund twice.
            result = stripe.refund(
                payment.provider_id, amount_fen, refund_ref=f"{payment.reference}-r{earlier + 1}"
            )
    refund = Refund(
        payment_id=payment.id,
        license_id=payment.license_id,
        amount_fen=amount_fen,
        provider_refund_id=result.refund_id,
        credit_note_number=result.credit_note_number,
        status=result.status,
        reason=reason,
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(refund)
    session.flush()
    ledger.post(
        session,
        jr.refund_issued(
            f"refund:{refund.id}",
            payment.license.buyer_org_id,
            parts,
            via_credit_note=payment.provider == "invoice",
        ),
        actor=actor,
        posted_at=now,
        license_id=payment.license_id,
        payment_id=payment.id,
        refund_id=refund.id,
        memo=reason,
    )
    payment.refunded_fen += amount_fen
    session.flush()
    audit.record(
        session,
        "payment.refunded",
        actor,
        ("payment", payment.id),
        {
            "license_id": payment.license_id,
            "refund_id": refund.id,
            "amount": amount_fen,
            "provider": payment.provider,
            "credit_note_number": refund.credit_note_number,
            "status": refund.status,
        },
    )
    return refund


def refund_unused_term(
    session: Session,
    actor: Actor,
    lic: License,
    reason: str,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> Refund | None:
    """Refund the unused share of the license's term on its settled payment (pro rata,
    rounded up to the fen). Returns None when there is nothing to refund."""
    payment = settled_payment(session, lic.id)
    if payment is None or lic.starts_at is None or lic.ends_at is None:
        return None
    now = now or utcnow()
    due = prorata_refund(payment.amount_fen, lic.starts_at, lic.ends_at, now)
    due = min(due, payment.amount_fen - payment.refunded_fen)
    return refund_payment(session, actor, payment.id, due, reason, config=config, now=now)


def pending_credit_notes(session: Session) -> list[Refund]:
    """Invoice refunds whose credit note is not paid back yet, oldest first."""
    return list(
        session.scalars(
            sa.select(Refund)
            .where(
                Refund.credit_note_number.is_not(None),
                Refund.status == CREDIT_NOTE_PENDING,
            )
            .order_by(Refund.created_at, Refund.id)
        )
    )


def pay_credit_note(
    session: Session,
    actor: Actor,
    refund_id: int,
    reference: str,
    *,
    now: dt.datetime | None = None,
) -> Refund:
    """The operator paid an invoice refund's credit note back to the buyer by bank transfer
    ``reference``: the ledger moves the amount from ``credit_notes:buyer`` to ``cash``.

    Raises Forbidden (not the operator), ValidationFailed (no reference), NotFound, Conflict
    (not a credit note, or already paid).
    """
    if not perm.can_pay_credit_note(actor):
        raise Forbidden("Only the operator pays credit notes back.")
    reference = ledger.transfer_reference(
        reference,
        field="reference",
        max_length=MAX_TRANSFER_REFERENCE,
        message="The payment needs its bank transfer reference.",
        hint=f"Give the transfer reference (1 to {MAX_TRANSFER_REFERENCE} characters).",
    )
    # The row lock serializes two operators paying the same note; the journal's unique
    # (kind, reference) would refuse the second one anyway.
    refund = lock_refund(session, refund_id)
    if refund is None:
        raise NotFound("No such refund.")
    if refund.credit_note_number is None:
        raise Conflict(f"Refund {refund.id} was paid through Stripe; it has no credit note.")
    if refund.status != CREDIT_NOTE_PENDING:
        raise Conflict(f"Credit note {refund.credit_note_number} is already {refund.status}.")
    now = now or utcnow()
    journal = ledger.post(
        session,
        jr.credit_note_paid(
            f"credit_note:{refund.id}", refund.payment.license.buyer_org_id, refund.amount_fen
        ),
        actor=actor,
        posted_at=now,
        license_id=refund.license_id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
        memo=reference,
    )
    refund.status = CREDIT_NOTE_PAID
    refund.paid_at = now
    refund.paid_by_id = actor.user_id
    refund.paid_reference = reference
    session.flush()
    audit.record(
        session,
        "refund.credit_note_paid",
        actor,
        ("refund", refund.id),
        {
            "license_id": refund.license_id,
            "payment_id": refund.payment_id,
            "credit_note_number": refund.credit_note_number,
            "amount": refund.amount_fen,
            "reference": reference,
            "journal_id": journal.id,
        },
    )
    return refund
