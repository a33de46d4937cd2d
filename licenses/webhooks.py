"""Stripe webhooks: verified, recorded once per event id, applied to the payment they name.

A replay (Stripe retries until it gets a 2xx) finds its event id already stored, under a
unique constraint, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses.locks import lock_license, lock_payment
from licenses.models import Payment, PaymentState, WebhookEvent
from licenses.payments import STRIPE_ACTOR, settle, stripe_provider
from market.audit import services as audit


def handle_stripe_webhook(
    session: Session,
    payload: bytes,
    signature: str | None,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Verify and apply a Stripe event; idempotent by event id.

    ``payment_intent.succeeded`` settles the payment, ``payment_intent.payment_failed`` marks
    it failed; other events are recorded and ignored. A replay returns
    ``{"duplicate": true}`` and changes nothing.

    Raises InvalidWebhook (→ 400) for a bad signature, an old timestamp or a malformed body;
    ValidationFailed (→ 422) if Stripe webhooks are not configured.
    """
    with stripe_provider(config, webhook=True) as stripe:
        event = stripe.parse_webhook(payload, signature)
    row = WebhookEvent(provider="stripe", event_id=event.id, type=event.type, outcome="received")
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return {"received": True, "duplicate": True, "event_id": event.id, "outcome": "duplicate"}

    payment = None
    # The event is signed but its fields are still Stripe's JSON: only text names a payment
    # (PostgreSQL refuses to compare a text column with a number).
    if isinstance(event.payment_ref, str) and event.payment_ref:
        payment = session.scalar(sa.select(Payment).where(Payment.reference == event.payment_ref))
    if payment is None and isinstance(event.object_id, str) and event.object_id:
        payment = session.scalar(sa.select(Payment).where(Payment.provider_id == event.object_id))
    if payment is not None and payment.provider != "stripe":
        payment = None

    if event.type == "payment_intent.succeeded":
        if payment is None:
            outcome = "unknown_payment"
        elif event.amount_fen != payment.amount_fen or event.currency != payment.currency:
            outcome = "amount_mismatch"
            audit.record(
                session,
                "payment.mismatch",
                STRIPE_ACTOR,
                ("payment", payment.id),
                {"event_id": event.id, "amount": event.amount_fen, "currency": event.currency},
            )
        else:
            if payment.provider_id != event.object_id and event.object_id:
                payment.provider_id = event.object_id
            outcome = settle(
                session, STRIPE_ACTOR, payment.id, config=config, strict=False, now=now
            )
    elif event.type == "payment_intent.payment_failed":
        if payment is None:
            outcome = "unknown_payment"
        else:
            # The license first, as everywhere: a revocation holding it (and the audit chain)
            # would otherwise wait for this payment's lock while we wait for the chain.
            lock_license(session, payment.license_id)
            locked = lock_payment(session, payment.id)
            if locked.status == PaymentState.pending:
                error = event.data.get("last_payment_error") or {}
                code = error.get("code") if isinstance(error, dict) else None
                locked.status = PaymentState.failed.value
                locked.failure_reason = str(code or "payment_failed")[:200]
                session.flush()
                audit.record(
                    session,
                    "payment.failed",
                    STRIPE_ACTOR,
                    ("payment", locked.id),
                    {"license_id": locked.license_id, "event_id": event.id, "code": code},
                )
                outcome = "failed"
            else:
                outcome = "ignored"
    else:
        outcome = "ignored"
    row.outcome = outcome
    row.payment_id = payment.id if payment is not None else None
    session.flush()
    return {"received": True, "duplicate": False, "event_id": event.id, "outcome": outcome}
