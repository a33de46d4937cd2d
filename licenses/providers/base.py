"""The payment-provider interface, and the value types it exchanges.

A provider knows nothing about licences or the database: it is handed a platform payment
reference and an amount, and answers with the provider's own identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from licenses.errors import InvalidPaymentRequest
from market.i18n import N_

#: The only currency the platform charges in.
CURRENCY = "CNY"


@dataclass(frozen=True)
class ProviderPayment:
    """What a provider returns for a new payment.

    ``provider_id`` is what later refunds and webhooks refer to: the invoice number for
    invoices, the PaymentIntent id for Stripe. ``client_secret`` (Stripe) goes to the buyer's
    browser; ``invoice_number`` (invoice) is printed on the invoice.
    """

    provider_id: str
    client_secret: str | None = None
    invoice_number: str | None = None


@dataclass(frozen=True)
class RefundResult:
    """A refund as the provider recorded it.

    ``status`` is the provider's: ``succeeded``, ``pending`` (money not moved yet, e.g. a
    credit note awaiting a bank transfer), ``failed``, ``requires_action`` or ``canceled``.
    """

    refund_id: str
    amount_fen: int
    status: str
    credit_note_number: str | None = None


@runtime_checkable
class PaymentProvider(Protocol):
    """Creates payments and refunds them. Implementations raise
    :class:`licenses.errors.InvalidPaymentRequest` for bad arguments and
    :class:`licenses.errors.PaymentProviderError` when the provider fails."""

    name: str

    def create(
        self,
        payment_ref: str,
        amount_fen: int,
        currency: str = CURRENCY,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderPayment: ...

    def refund(
        self, provider_id: str, amount_fen: int, refund_ref: str | None = None
    ) -> RefundResult: ...


def check_amount(amount_fen: object) -> int:
    """A positive integer of fen; raises InvalidPaymentRequest otherwise (free licences have
    nothing to pay, so a zero payment is a caller bug)."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise InvalidPaymentRequest(N_("amount_fen must be a positive integer"))
    return amount_fen


def check_request(
    payment_ref: object, amount_fen: object, currency: object, metadata: object
) -> dict[str, str]:
    """Validate the arguments of ``create``; returns the metadata as a plain dict.

    Raises InvalidPaymentRequest for an empty reference, a non-positive amount, a currency
    other than CNY, or metadata that is not a str → str mapping.
    """
    if not isinstance(payment_ref, str) or not payment_ref.strip():
        raise InvalidPaymentRequest(N_("payment_ref must be a non-empty string"))
    check_amount(amount_fen)
    if currency != CURRENCY:
        raise InvalidPaymentRequest(N_("only %(currency)s is supported"), currency=CURRENCY)
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise InvalidPaymentRequest(N_("metadata must map strings to strings"))
    return dict(metadata)
