"""Payments in the database: creating them through a provider, and settling them (which
activates the license and writes the revenue split to the ledger). Stripe webhooks are in
:mod:`licenses.webhooks`, refunds in :mod:`licenses.payment_refunds`.

**Settling exactly once.** Settlement locks the license row, then the payment row
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every transaction is ``BEGIN IMMEDIATE``, so
writers are serialized anyway), and re-checks the payment's status under the lock. Two
unique constraints are the last line: a webhook event id is stored once
(``payment_webhook_events``), and a journal's ``(kind, reference)`` once (``ledger_journals``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from licenses import journal as jr
from licenses import ledger
from licenses import permissions as perm
from licenses.activation import activate
from licenses.errors import InvalidSplit
from licenses.locks import lock_license, lock_payment
from licenses.models import (
    DocumentSequence,
    License,
    Payment,
    PaymentState,
)
from licenses.providers import InvoiceProvider, ProviderPayment, StripeProvider
from licenses.split import SplitItem, split_payment_by_rates
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.i18n import N_
from market.web import labels

PROVIDERS = ("invoice", "stripe")
STRIPE_ACTOR = Actor.system("stripe")
DEFAULT_FEE_SHARE = "0.10"
MAX_BANK_REFERENCE = 200
_OPEN = (PaymentState.pending.value, PaymentState.failed.value)


# ---------------------------------------------------------------------------- configuration


def operator_fee_share(config: Mapping[str, Any]) -> Fraction:
    """``MARKET_OPERATOR_FEE_SHARE`` (a decimal string such as ``"0.10"``) as an exact
    Fraction. Raises InvalidSplit if it is not a number in [0, 1]."""
    raw = config.get("MARKET_OPERATOR_FEE_SHARE") or DEFAULT_FEE_SHARE
    try:
        share = Fraction(Decimal(str(raw).strip()))
    except (InvalidOperation, ValueError):
        raise InvalidSplit(
            N_("%(setting)s is not a decimal number: %(value)r"),
            setting="MARKET_OPERATOR_FEE_SHARE", value=raw,
        ) from None
    if not 0 <= share <= 1:
        raise InvalidSplit(
            N_("%(setting)s must be between 0 and 1"), setting="MARKET_OPERATOR_FEE_SHARE"
        )
    return share


def stripe_configured(config: Mapping[str, Any]) -> bool:
    return bool(config.get("STRIPE_API_KEY"))


def require_stripe(config: Mapping[str, Any]) -> None:
    """Raise ValidationFailed (→ 422, "stripe is not configured") without STRIPE_API_KEY."""
    if not stripe_configured(config):
        raise ValidationFailed(
            _("stripe is not configured"),
            {"provider": [_("Stripe is not configured on this platform; pay by invoice.")]},
        )


def stripe_provider(config: Mapping[str, Any], *, webhook: bool = False) -> StripeProvider:
    """A provider from ``STRIPE_API_KEY``, ``STRIPE_API_BASE`` and ``STRIPE_WEBHOOK_SECRET``;
    use it in a ``with`` block. Raises ValidationFailed (→ 422) if Stripe (or, for webhooks,
    its webhook secret) is not configured."""
    require_stripe(config)
    if webhook and not config.get("STRIPE_WEBHOOK_SECRET"):
        raise ValidationFailed(_("stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)"))
    return StripeProvider(
        config["STRIPE_API_KEY"],
        api_base=config.get("STRIPE_API_BASE") or None,
        webhook_secret=config.get("STRIPE_WEBHOOK_SECRET") or None,
        max_network_retries=int(config.get("STRIPE_MAX_NETWORK_RETRIES", 2)),
        timeout=float(config.get("STRIPE_TIMEOUT", 30)),
    )


def next_sequence(session: Session, prefix: str, period: str) -> int:
    """The next document number for ``prefix`` and ``period``, atomically (an upsert that
    increments under the row's lock), so concurrent invoices never share a number."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(DocumentSequence).values(prefix=prefix, period=period, last_value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["prefix", "period"],
            set_={"last_value": DocumentSequence.last_value + 1},
        ).returning(DocumentSequence.last_value)
        return int(session.execute(stmt).scalar_one())
    row = session.execute(
        sa.select(DocumentSequence)
        .where(DocumentSequence.prefix == prefix, DocumentSequence.period == period)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        row = DocumentSequence(prefix=prefix, period=period, last_value=0)
        session.add(row)
    row.last_value += 1
    session.flush()
    return row.last_value


def invoice_provider(session: Session, now: dt.datetime | None = None) -> InvoiceProvider:
    return InvoiceProvider(
        lambda prefix, period: next_sequence(session, prefix, period),
        clock=(lambda: now) if now else utcnow,
    )


# ----------------------------------------------------------------------------------- reading


def open_payments(session: Session, license_id: int) -> list[Payment]:
    return list(
        session.scalars(
            sa.select(Payment)
            .where(Payment.license_id == license_id, Payment.status.in_(_OPEN))
            .order_by(Payment.id)
        )
    )


def list_payments(
    actor: Actor, *, status: str | None = None, provider: str | None = None
) -> sa.Select:
    """Payments, oldest first (the operator's settlement queue). Raises Forbidden."""
    if not perm.can_list_payments(actor):
        raise Forbidden(_("Only the operator and the regulator list payments."))
    stmt = sa.select(Payment).order_by(Payment.created_at, Payment.id)
    if status:
        stmt = stmt.where(Payment.status == status)
    if provider:
        stmt = stmt.where(Payment.provider == provider)
    return stmt


def payment_result(payment: Payment, provided: ProviderPayment | None = None) -> dict[str, Any]:
    """The body of ``POST /licenses/{id}/payments``."""
    body: dict[str, Any] = {
        "payment_id": payment.id,
        "provider": payment.provider,
        "status": payment.status,
        "amount": payment.amount_fen,
        "currency": payment.currency,
    }
    if payment.provider == "invoice":
        body["invoice_number"] = payment.invoice_number
    elif provided is not None:
        body["client_secret"] = provided.client_secret
    return body


# ---------------------------------------------------------------------------------- creating


def _cancel(session: Session, actor: Actor, payment: Payment, reason: str) -> None:
    previous = payment.status
    payment.status = PaymentState.canceled.value
    if payment.provider == "invoice" and payment.invoice_number:
        # The invoice was booked as a receivable; voiding it reverses that.
        ledger.post(
            session,
            jr.invoice_voided(
                f"payment:{payment.id}", payment.license.buyer_org_id, payment.amount_fen
            ),
            actor=actor,
            license_id=payment.license_id,
            payment_id=payment.id,
            memo=reason,
        )
    session.flush()
    audit.record(
        session,
        "payment.canceled",
        actor,
        ("payment", payment.id),
        {"license_id": payment.license_id, "from": previous, "reason": reason},
    )


def cancel_open_payments(
    session: Session, actor: Actor, lic: License, *, reason: str, keep: int | None = None
) -> int:
    """Cancel the license's pending or failed payments (but ``keep``); returns how many."""
    count = 0
    for payment in open_payments(session, lic.id):
        if payment.id != keep:
            locked = lock_payment(session, payment.id)
            if locked is not None and locked.status in _OPEN:
                _cancel(session, actor, locked, reason)
                count += 1
    return count


def create_payment(
    session: Session,
    actor: Actor,
    license_id: int,
    provider: str,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> tuple[Payment, ProviderPayment | None, bool]:
    """Start paying for a license awaiting payment (its buyer): an invoice, or a Stripe
    PaymentIntent. Returns ``(payment, provider answer, created)``.

    Asking again for the same provider returns the open payment (the same invoice; for
    Stripe, the same PaymentIntent thanks to the idempotency key); asking for the other
    provider cancels the open one (voiding the invoice) and starts a new one.

    Raises NotFound (not the buyer's license), Forbidden (not its buyer), ValidationFailed
    (unknown provider; Stripe not configured), Conflict (not awaiting payment),
    PaymentProviderError (→ 502) if Stripe fails.
    """
    lic = session.get(License, license_id)
    if lic is None or not perm.can_view_license(actor, lic.buyer_org_id):
        raise NotFound(_("No such license."))
    if not perm.can_pay_license(actor, lic.buyer_org_id):
        raise Forbidden(_("Only the buyer that holds the license pays for it."))
    if provider not in PROVIDERS:
        raise ValidationFailed(
            _("Unknown provider."), {"provider": [_("Use 'invoice' or 'stripe'.")]}
        )
    if provider == "stripe":
        require_stripe(config)
    lic = lock_license(session, license_id)
    if lic.status != LicenseStatus.AWAITING_PAYMENT:
        raise Conflict(
            _(
                "Only a license awaiting payment can be paid; this one is %(status)s.",
                status=labels.name("license_status", lic.status),
            ),
            {
                "license_id": [
                    _(
                        "The license is %(status)s.",
                        status=labels.name("license_status", lic.status),
                    )
                ]
            },
        )
    if lic.price_total_fen <= 0:
        raise Conflict(_("This license is free; it needs no payment."))

    for existing in open_payments(session, lic.id):
        if existing.provider == provider and existing.status == PaymentState.pending:
            if provider == "invoice":
                return existing, None, False
            with stripe_provider(config) as stripe:
                provided = stripe.create(
                    existing.reference,
                    existing.amount_fen,
                    existing.currency,
                    {"license_id": str(lic.id), "payment_id": str(existing.id)},
                )
            existing.provider_id = provided.provider_id
            session.flush()
            return existing, provided, False

    payment = Payment(
        license_id=lic.id,
        provider=provider,
        status=PaymentState.pending.value,
        amount_fen=lic.price_total_fen,
        currency=lic.currency,
        reference=f"pay_{uuid.uuid4().hex[:20]}",
        refunded_fen=0,
        created_by_id=actor.user_id,
        created_at=now or utcnow(),
    )
    session.add(payment)
    session.flush()
    metadata = {"license_id": str(lic.id), "payment_id": str(payment.id)}
    if provider == "invoice":
        provided = invoice_provider(session, now).create(
            payment.reference, payment.amount_fen, payment.currency, metadata
        )
        payment.invoice_number = provided.invoice_number
    else:
        with stripe_provider(config) as stripe:
            provided = stripe.create(
                payment.reference, payment.amount_fen, payment.currency, metadata
            )
    payment.provider_id = provided.provider_id
    session.flush()
    # Only now, after the provider call: audit records take the chain's lock, which must not
    # be held while waiting for Stripe.
    cancel_open_payments(
        session, actor, lic, reason=f"replaced by a {provider} payment", keep=payment.id
    )
    if provider == "invoice":
        ledger.post(
            session,
            jr.invoice_issued(f"payment:{payment.id}", lic.buyer_org_id, payment.amount_fen),
            actor=actor,
            license_id=lic.id,
            payment_id=payment.id,
            posted_at=payment.created_at,
        )
    audit.record(
        session,
        "payment.created",
        actor,
        ("payment", payment.id),
        {
            "license_id": lic.id,
            "provider": provider,
            "amount": payment.amount_fen,
            "invoice_number": payment.invoice_number,
        },
    )
    return payment, provided, True


# ---------------------------------------------------------------------------------- settling


def revenue_split(
    lic: License,
    amount_fen: int,
    config: Mapping[str, Any],
    *,
    session: Session | None = None,
    at: dt.datetime | None = None,
):
    """The split of ``amount_fen`` for ``lic``: the operator's fee, then the departments by
    item amount, and within an item by the dataset's contributor weights (the dataset's own
    department, weight 1, when it declares none). Each department's part carries the fee
    share of its authorization agreement (``market.agreements.services.fee_shares``);
    ``MARKET_OPERATOR_FEE_SHARE`` is the share of a department without one."""
    from market.agreements.services import fee_shares

    items = []
    parts = []
    for item in lic.items:
        dataset = item.dataset
        weights = [(c.department_id, c.weight) for c in dataset.contributors] or [
            (dataset.department_id, 1)
        ]
        items.append(SplitItem(item.dataset_id, item.amount_fen, weights))
        parts += [(item.dataset_id, dataset.category, dept) for dept, _ in weights]
    default = operator_fee_share(config)
    session = session or sa.orm.object_session(lic)
    shares = fee_shares(session, parts, at or utcnow(), default) if session is not None else {}
    return split_payment_by_rates(amount_fen, items, shares, default)


def settle(
    session: Session,
    actor: Actor,
    payment_id: int,
    *,
    config: Mapping[str, Any],
    bank_reference: str | None = None,
    strict: bool = True,
    now: dt.datetime | None = None,
) -> str:
    """Settle a payment: the license turns active and the split goes to the ledger.

    Returns the outcome: ``settled``, or, with ``strict=False`` (webhooks, where a
    redelivery must not fail), ``already_settled`` / ``license_not_awaiting_payment``.
    With ``strict=True`` those raise Conflict instead.

    Raises NotFound (no such payment), Conflict, InvalidSplit (a misconfigured fee share).
    """
    now = now or utcnow()
    found = session.get(Payment, payment_id)
    if found is None:
        raise NotFound(_("No such payment."))
    lic = lock_license(session, found.license_id)
    payment = lock_payment(session, payment_id)
    if payment.status == PaymentState.settled:
        if strict:
            raise Conflict(_("Payment %(id)s is already settled.", id=payment.id))
        return "already_settled"
    if payment.status == PaymentState.canceled and strict:
        raise Conflict(
            _(
                "Payment %(id)s was canceled (replaced by another payment or the license was revoked); it cannot be settled.",
                id=payment.id,
            )
        )
    if lic.status != LicenseStatus.AWAITING_PAYMENT:
        if strict:
            raise Conflict(
                _(
                    "License %(id)s is %(status)s, not awaiting payment; the payment cannot settle it.",
                    id=lic.id,
                    status=labels.name("license_status", lic.status),
                )
            )
        # Money arrived for a license that no longer waits for it: the operator refunds it.
        audit.record(
            session,
            "payment.unapplied",
            actor,
            ("payment", payment.id),
            {"license_id": lic.id, "license_status": lic.status, "amount": payment.amount_fen},
        )
        return "license_not_awaiting_payment"

    split = revenue_split(lic, payment.amount_fen, config, session=session, at=now)
    # An invoice was booked as a receivable when issued; a Stripe payment settles from cash.
    invoiced = payment.provider == "invoice"
    ledger.post(
        session,
        jr.payment_settled(f"payment:{payment.id}", lic.buyer_org_id, split, invoiced=invoiced),
        actor=actor,
        posted_at=now,
        license_id=lic.id,
        payment_id=payment.id,
        memo=bank_reference,
    )
    previous = payment.status
    payment.status = PaymentState.settled.value
    payment.settled_at = now
    payment.settled_by_id = actor.user_id
    payment.bank_reference = bank_reference
    session.flush()
    audit.record(
        session,
        "payment.settled",
        actor,
        ("payment", payment.id),
        {
            "license_id": lic.id,
            "provider": payment.provider,
            "amount": payment.amount_fen,
            "from": previous,
            "bank_reference": bank_reference,
            "operator_fee": split.operator_fee,
            "departments": {str(k): v for k, v in split.departments.items()},
        },
    )
    cancel_open_payments(
        session, actor, lic, reason=f"settled by payment {payment.id}", keep=payment.id
    )
    activate(session, lic, actor, now=now, payment_id=payment.id)
    return "settled"


def settle_invoice(
    session: Session,
    actor: Actor,
    payment_id: int,
    bank_reference: str,
    *,
    config: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> Payment:
    """The operator records the buyer's bank transfer for an invoice.

    Raises Forbidden, ValidationFailed (no bank reference), NotFound, Conflict (not an
    invoice; already settled or canceled; the license is not awaiting payment).
    """
    if not perm.can_settle_payment(actor):
        raise Forbidden(_("Only the operator settles payments."))
    reference = ledger.transfer_reference(
        bank_reference,
        field="bank_reference",
        max_length=MAX_BANK_REFERENCE,
        message=_("The bank reference is required."),
        hint=_("Give the reference of the buyer's bank transfer."),
    )
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(_("No such payment."))
    if payment.provider != "invoice":
        raise Conflict(_("Stripe payments settle through Stripe's webhook, not by hand."))
    settle(session, actor, payment_id, config=config, bank_reference=reference, now=now)
    return payment
