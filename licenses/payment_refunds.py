"""Refunds of settled payments: the unused share of term and quota (the smaller) on
revocation, through the provider the payment came by (a Stripe refund, or a credit note for
an invoice), with the split reversed in the ledger in proportion to what each party still
holds.

A Stripe refund that fails (Stripe down, refusing, not configured) never blocks the
revocation: the refund becomes a pending credit note (the buyer is owed the money, booked to
``credit_notes:buyer``), which the operator retries (:func:`retry_refund`, same Stripe
idempotency reference every time) or pays back by bank transfer (:func:`pay_credit_note`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from licenses import journal as jr
from licenses import ledger
from licenses import permissions as perm
from licenses.errors import PaymentProviderError
from licenses.locks import lock_license, lock_payment, lock_refund
from licenses.models import License, Payment, PaymentState, Refund
from licenses.payments import invoice_provider, next_sequence, stripe_provider
from licenses.providers.invoice import CREDIT_NOTE_PREFIX, credit_note_number, period_of
from licenses.refunds import split_refund, usage_refund
from market.accounts.actor import Actor
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.web import labels

#: The status of a credit note the operator has not paid back yet, and of one it has.
CREDIT_NOTE_PENDING = "pending"
CREDIT_NOTE_PAID = "paid"
MAX_TRANSFER_REFERENCE = 200
MAX_ERROR = 200


def _error_text(exc: Exception) -> str:
    """The provider's error for the operator: its code and message, never keys (the
    provider's messages carry none) and at most :data:`MAX_ERROR` characters."""
    code = getattr(exc, "code", None)
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return (f"{code}: {text}" if code else text)[:MAX_ERROR]


def _stripe_refund(
    config: Mapping[str, Any], payment: Payment, amount_fen: int, ref: str
) -> tuple[Any, Exception | None]:
    """Ask Stripe; answers ``(result, None)`` or ``(None, error)``, never raises for a
    provider failure (a missing configuration is one too: revocation must not wait for it)."""
    try:
        with stripe_provider(config) as stripe:
            return stripe.refund(payment.provider_id, amount_fen, refund_ref=ref), None
    except (PaymentProviderError, ValidationFailed) as exc:
        return None, exc


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

    A Stripe refund that fails (or Stripe not configured) does not raise: the refund is
    recorded as a pending credit note (``provider_ref`` kept for the retry) and audited
    ``payment.refund_failed``.

    Raises NotFound, Conflict (not settled; more than what is left).
    """
    found = session.get(Payment, payment_id)
    if found is None:
        raise NotFound(_("No such payment."))
    lock_license(session, found.license_id)
    payment = lock_payment(session, payment_id)
    if payment.status != PaymentState.settled:
        raise Conflict(
            _("Payment %(id)s is not settled; there is nothing to refund.", id=payment.id)
        )
    if amount_fen <= 0:
        return None
    left = payment.amount_fen - payment.refunded_fen
    if amount_fen > left:
        raise Conflict(
            _("Only %(left)s fen of payment %(id)s is left to refund.", left=left, id=payment.id)
        )
    parts = split_refund(
        amount_fen,
        ledger.settled_split(session, payment.id),
        ledger.refunded_split(session, payment.id),
    )
    now = now or utcnow()
    earlier = session.scalar(
        sa.select(sa.func.count()).select_from(Refund).where(Refund.payment_id == payment.id)
    )
    # A deterministic reference: a retried revocation or refund does not refund twice.
    ref = f"{payment.reference}-r{earlier + 1}"
    failure: Exception | None = None
    if payment.provider == "invoice":
        result = invoice_provider(session, now).refund(payment.provider_id, amount_fen)
        number, provider_refund_id, status = (
            result.credit_note_number,
            result.refund_id,
            result.status,
        )
    else:
        result, failure = _stripe_refund(config, payment, amount_fen, ref)
        if failure is None:
            number, provider_refund_id, status = None, result.refund_id, result.status
        else:
            # The buyer is owed the refund all the same: a credit note, retried later.
            number = credit_note_number(
                now, next_sequence(session, CREDIT_NOTE_PREFIX, period_of(now))
            )
            provider_refund_id, status = number, CREDIT_NOTE_PENDING
    refund = Refund(
        payment_id=payment.id,
        license_id=payment.license_id,
        amount_fen=amount_fen,
        provider_refund_id=provider_refund_id,
        credit_note_number=number,
        status=status,
        reason=reason,
        created_by_id=actor.user_id,
        created_at=now,
        provider_ref=ref if payment.provider == "stripe" else None,
        attempts=1,
        last_error=_error_text(failure) if failure is not None else None,
    )
    session.add(refund)
    session.flush()
    ledger.post(
        session,
        jr.refund_issued(
            f"refund:{refund.id}",
            payment.license.buyer_org_id,
            parts,
            via_credit_note=number is not None,
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
    if failure is not None:
        audit.record(
            session,
            "payment.refund_failed",
            actor,
            ("payment", payment.id),
            {
                "license_id": payment.license_id,
                "refund_id": refund.id,
                "amount": amount_fen,
                "credit_note_number": number,
                "error_code": getattr(failure, "code", None),
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
    """Refund what the buyer did not use of its settled payment: the smaller of the unused
    share of the term and of the query quota, rounded up to the fen
    (:func:`licenses.refunds.usage_refund`). Returns None when there is nothing to refund.

    Never fails because of Stripe: a failed Stripe refund becomes a pending credit note."""
    payment = settled_payment(session, lic.id)
    if payment is None or lic.starts_at is None or lic.ends_at is None:
        return None
    now = now or utcnow()
    due = usage_refund(
        payment.amount_fen,
        lic.starts_at,
        lic.ends_at,
        now,
        lic.query_quota,
        min(max(lic.quota_remaining, 0), lic.query_quota),
    )
    due = min(due, payment.amount_fen - payment.refunded_fen)
    return refund_payment(session, actor, payment.id, due, reason, config=config, now=now)


def is_retryable(refund: Refund) -> bool:
    """A failed Stripe refund still owed: a pending credit note on a Stripe payment."""
    return (
        refund.credit_note_number is not None
        and refund.status == CREDIT_NOTE_PENDING
        and refund.provider_ref is not None
        and refund.payment.provider == "stripe"
    )


def pending_credit_notes(session: Session) -> list[Refund]:
    """Refunds whose credit note is not paid back yet (invoice refunds, and Stripe refunds
    that failed), oldest first."""
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
        raise Forbidden(_("Only the operator pays credit notes back."))
    reference = ledger.transfer_reference(
        reference,
        field="reference",
        max_length=MAX_TRANSFER_REFERENCE,
        message=_("The payment needs its bank transfer reference."),
        hint=_(
            "Give the transfer reference (1 to %(max)s characters).", max=MAX_TRANSFER_REFERENCE
        ),
    )
    # The row lock serializes two operators paying the same note; the journal's unique
    # (kind, reference) would refuse the second one anyway.
    refund = lock_refund(session, refund_id)
    if refund is None:
        raise NotFound(_("No such refund."))
    if refund.credit_note_number is None:
        raise Conflict(
            _("Refund %(id)s was paid through Stripe; it has no credit note.", id=refund.id)
        )
    if refund.status != CREDIT_NOTE_PENDING:
        raise Conflict(
            _(
                "Credit note %(credit_note_number)s is already %(status)s.",
                credit_note_number=refund.credit_note_number,
                status=labels.name("payment_status", refund.status),
            )
        )
    now = now or utcnow()
    journal = _post_credit_note_paid(session, actor, refund, now, reference)
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


def retry_refund(
    session: Session,
    actor: Actor,
    refund_id: int,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> Refund:
    """Try a failed Stripe refund again (operator), with its original idempotency reference.

    On success the credit note is paid: the ledger moves the amount from
    ``credit_notes:buyer`` to ``cash``, and ``paid_reference`` is Stripe's refund id. On
    failure it stays pending with one more attempt and the provider's error: that is a
    recorded outcome, not an error of the request (audited ``refund.retried``).

    Raises Forbidden (not the operator), NotFound, Conflict (not a failed Stripe refund, or
    already paid).
    """
    if not perm.can_pay_credit_note(actor):
        raise Forbidden(_("Only the operator retries refunds."))
    found = session.get(Refund, refund_id)
    if found is None:
        raise NotFound(_("No such refund."))
    lock_license(session, found.license_id)
    lock_payment(session, found.payment_id)
    refund = lock_refund(session, refund_id)
    if refund.status != CREDIT_NOTE_PENDING:
        raise Conflict(
            _(
                "Refund %(id)s is already %(status)s; there is nothing to retry.",
                id=refund.id,
                status=labels.name("payment_status", refund.status),
            )
        )
    if not is_retryable(refund):
        raise Conflict(
            _(
                "Refund %(id)s is a credit note of an invoice; pay it back by bank transfer.",
                id=refund.id,
            )
        )
    now = now or utcnow()
    # The provider first: the audit record takes the chain's lock, not to be held meanwhile.
    result, failure = _stripe_refund(config, refund.payment, refund.amount_fen, refund.provider_ref)
    refund.attempts += 1
    if failure is not None:
        refund.last_error = _error_text(failure)
        session.flush()
        audit.record(
            session,
            "refund.retried",
            actor,
            ("refund", refund.id),
            {
                "license_id": refund.license_id,
                "outcome": "failed",
                "attempts": refund.attempts,
                "error_code": getattr(failure, "code", None),
            },
        )
        return refund
    journal = _post_credit_note_paid(session, actor, refund, now, result.refund_id)
    refund.status = CREDIT_NOTE_PAID
    refund.paid_at = now
    refund.paid_by_id = actor.user_id
    refund.paid_reference = result.refund_id
    refund.last_error = None
    session.flush()
    audit.record(
        session,
        "refund.retried",
        actor,
        ("refund", refund.id),
        {
            "license_id": refund.license_id,
            "outcome": "succeeded",
            "attempts": refund.attempts,
            "stripe_refund_id": result.refund_id,
            "amount": refund.amount_fen,
            "journal_id": journal.id,
        },
    )
    return refund


def _post_credit_note_paid(session, actor, refund, now, memo):
    """The ``credit_note_paid`` journal (Dr credit_notes:buyer, Cr cash) of a credit note paid
    back, by bank transfer or by a successful retry of the provider's refund."""
    return ledger.post(
        session,
        jr.credit_note_paid(
            f"credit_note:{refund.id}", refund.payment.license.buyer_org_id, refund.amount_fen
        ),
        actor=actor,
        posted_at=now,
        license_id=refund.license_id,
        payment_id=refund.payment_id,
        refund_id=refund.id,
        memo=memo,
    )
