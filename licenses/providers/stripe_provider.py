"""Stripe: a PaymentIntent per payment, confirmed in the buyer's browser, settled by a signed
``payment_intent.succeeded`` webhook.

No Flask and no database here. The provider holds its own :class:`stripe.StripeClient`, so
the global ``stripe.api_key`` / ``stripe.api_base`` are never touched and two providers (or
two tests) with different keys or API bases do not interfere.

Amounts are in fen, which is Stripe's minor unit for CNY (a two-decimal currency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from licenses.errors import InvalidPaymentRequest, InvalidWebhook, PaymentProviderError
from licenses.providers.base import (
    CURRENCY,
    ProviderPayment,
    RefundResult,
    check_amount,
    check_request,
)
from market.i18n import N_

DEFAULT_TOLERANCE = 300


@dataclass(frozen=True)
class WebhookEvent:
    """A verified Stripe event, reduced to what the platform acts on.

    ``id`` is the key for idempotent handling (Stripe retries deliveries). ``payment_ref`` is
    the platform reference from the object's metadata, when it has one. ``data`` is the event's
    ``data.object`` as plain JSON.
    """

    id: str
    type: str
    created: datetime
    object_id: str | None
    payment_ref: str | None
    amount_fen: int | None
    currency: str | None
    status: str | None
    livemode: bool
    data: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PaymentStatus:
    """A PaymentIntent as Stripe sees it now (for reconciling a missed webhook)."""

    provider_id: str
    status: str
    amount_fen: int
    currency: str
    payment_ref: str | None


def _provider_error(exc: stripe.StripeError) -> PaymentProviderError:
    # Stripe's own messages may quote a masked key or card details; keep ours generic.
    code = getattr(exc, "code", None)
    detail = f", {code}" if code else ""
    if isinstance(exc, stripe.CardError):
        return PaymentProviderError(
            N_("the card was declined%(detail)s"),
            code=code or "card_declined", http_status=402, detail=detail,
        )
    return PaymentProviderError(
        N_("Stripe request failed (%(kind)s%(detail)s)"),
        code=code,
        http_status=getattr(exc, "http_status", None),
        kind=type(exc).__name__,
        detail=detail,
    )


class StripeProvider:
    """Payments through Stripe (or a Stripe-compatible server such as localstripe).

    ``api_base`` overrides ``https://api.stripe.com`` (tests point it at localstripe).
    ``payment_method_types`` is sent as is; by default it is omitted, so Stripe uses the
    methods enabled in the dashboard. Call :meth:`close` (or use ``with``) to release the
    HTTP connection pool.
    """

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        webhook_secret: str | None = None,
        *,
        payment_method_types: Sequence[str] | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
    ) -> None:
        if not api_key:
            raise PaymentProviderError(N_("%(setting)s is not configured"), setting="STRIPE_API_KEY")
        self._webhook_secret = webhook_secret
        self._payment_method_types = list(payment_method_types) if payment_method_types else None
        self._http = stripe.RequestsClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            # Retries are safe: every create and refund carries an idempotency key.
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StripeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(
        self,
        payment_ref: str,
        amount_fen: int,
        currency: str = CURRENCY,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderPayment:
        """Create a PaymentIntent for ``amount_fen``; idempotent per ``payment_ref``.

        Raises InvalidPaymentRequest for bad arguments, PaymentProviderError if Stripe fails
        (including reusing a ``payment_ref`` with a different amount).
        """
        meta = check_request(payment_ref, amount_fen, currency, metadata)
        meta["payment_ref"] = payment_ref
        params: dict[str, Any] = {
            "amount": amount_fen,
            "currency": currency.lower(),
            "metadata": meta,
        }
        if self._payment_method_types:
            params["payment_method_types"] = self._payment_method_types
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"market-pi-{payment_ref}"},
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc) from None
        return ProviderPayment(provider_id=intent.id, client_secret=intent.client_secret)

    def refund(
        self, provider_id: str, amount_fen: int, refund_ref: str | None = None
    ) -> RefundResult:
        """Refund ``amount_fen`` of PaymentIntent ``provider_id``.

        Pass the platform's ``refund_ref`` so that a retried call does not refund twice;
        without it, each call is a new refund. Raises InvalidPaymentRequest for bad arguments
        and PaymentProviderError if Stripe refuses (e.g. more than was paid).
        """
        if not isinstance(provider_id, str) or not provider_id.startswith("pi_"):
            raise InvalidPaymentRequest(N_("refunds need the PaymentIntent id of the payment"))
        check_amount(amount_fen)
        params: dict[str, Any] = {"payment_intent": provider_id, "amount": amount_fen}
        options: dict[str, Any] = {}
        if refund_ref:
            params["metadata"] = {"refund_ref": refund_ref}
            options["idempotency_key"] = f"market-re-{refund_ref}"
        try:
            refund = self._client.v1.refunds.create(params=params, options=options)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise _provider_error(exc) from None
        return RefundResult(
            refund_id=refund.id, amount_fen=refund.amount, status=refund.status or "pending"
        )

    def retrieve(self, provider_id: str) -> PaymentStatus:
        """The PaymentIntent's current status. Raises PaymentProviderError if Stripe fails."""
        try:
            intent = self._client.v1.payment_intents.retrieve(provider_id)
        except stripe.StripeError as exc:
            raise _provider_error(exc) from None
        metadata = intent.metadata.to_dict() if intent.metadata else {}
        return PaymentStatus(
            provider_id=intent.id,
            status=intent.status,
            amount_fen=intent.amount,
            currency=intent.currency.upper(),
            payment_ref=metadata.get("payment_ref"),
        )

    def parse_webhook(
        self, payload: bytes | str, sig_header: str | None, tolerance: int = DEFAULT_TOLERANCE
    ) -> WebhookEvent:
        """Verify a webhook's ``Stripe-Signature`` and return its event.

        The signature is an HMAC-SHA256 of ``"{t}.{body}"`` with the endpoint secret; ``t``
        must be at most ``tolerance`` seconds old (replay protection; Stripe does not reject
        timestamps from the future, and neither do we).

        Raises InvalidWebhook for a missing or wrong signature, an old timestamp or a body
        that is not a Stripe event; PaymentProviderError if no webhook secret is configured;
        ValueError if ``tolerance`` is not positive (0 would disable the replay check).
        """
        if not self._webhook_secret:
            raise PaymentProviderError(N_("%(setting)s is not configured"), setting="STRIPE_WEBHOOK_SECRET")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance <= 0:
            raise ValueError("tolerance must be a positive integer number of seconds")
        try:
            event = self._client.construct_event(
                payload, sig_header, self._webhook_secret, tolerance
            )
        except stripe.SignatureVerificationError as exc:
            # Stripe's message says which check failed (signature or timestamp), never the secret.
            raise InvalidWebhook(
                N_("invalid Stripe webhook: %(reason)s"), reason=str(exc.user_message or exc)
            ) from None
        except (
            ValueError,
            UnicodeDecodeError,
            TypeError,
            AttributeError,
            KeyError,
            RecursionError,
        ):
            # stripe-python reads the body as a dict: a JSON list or string fails inside it.
            raise InvalidWebhook(N_("invalid Stripe webhook: the body is not a JSON event")) from None
        return _event(event.to_dict())


def _event(raw: dict[str, Any]) -> WebhookEvent:
    try:
        obj = raw.get("data", {}).get("object") or {}
        if not isinstance(obj, dict):
            raise TypeError
        metadata = obj.get("metadata") or {}
        amount = obj.get("amount")
        currency = obj.get("currency")
        return WebhookEvent(
            id=str(raw["id"]),
            type=str(raw["type"]),
            created=datetime.fromtimestamp(int(raw["created"]), UTC),
            object_id=obj.get("id"),
            payment_ref=metadata.get("payment_ref") if isinstance(metadata, dict) else None,
            amount_fen=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=currency.upper() if isinstance(currency, str) else None,
            status=obj.get("status"),
            livemode=bool(raw.get("livemode", False)),
            data=obj,
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise InvalidWebhook(N_("invalid Stripe webhook: not a Stripe event")) from None
