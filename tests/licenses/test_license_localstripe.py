"""The Stripe provider against localstripe, a local fake of the Stripe API.

The buyer's browser (Stripe.js confirming the PaymentIntent with a card) is played by a
second StripeClient that attaches localstripe's test card ``pm_card_visa`` and confirms.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import stripe

from licenses.errors import InvalidWebhook, PaymentProviderError
from licenses.providers import StripeProvider

WEBHOOK_SECRET = "whsec_localstripe_test"


@pytest.fixture
def provider(localstripe) -> Iterator[StripeProvider]:
    with StripeProvider(
        localstripe.api_key,
        api_base=localstripe.base_url,
        webhook_secret=WEBHOOK_SECRET,
        max_network_retries=0,
        timeout=10,
    ) as p:
        yield p


@pytest.fixture
def browser(localstripe) -> Iterator[stripe.StripeClient]:
    http = stripe.RequestsClient(timeout=10)
    client = stripe.StripeClient(
        localstripe.api_key,
        base_addresses={"api": localstripe.base_url},
        max_network_retries=0,
        http_client=http,
    )
    yield client
    http.close()


def pay_with_test_card(browser: stripe.StripeClient, intent_id: str) -> None:
    # localstripe's confirm endpoint does not accept a payment_method (it answers 500 "Not
    # implemented"), so the card is attached first, then the intent confirmed.
    browser.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    browser.v1.payment_intents.confirm(intent_id)


def test_create_confirm_refund(provider: StripeProvider, browser: stripe.StripeClient) -> None:
    ref = f"pay-{uuid.uuid4().hex[:8]}"
    payment = provider.create(ref, 12_345, "CNY", {"license_id": "42"})
    assert payment.provider_id.startswith("pi_")
    assert payment.client_secret and payment.client_secret.startswith(
        payment.provider_id + "_secret_"
    )
    assert payment.invoice_number is None

    before = provider.retrieve(payment.provider_id)
    assert (before.status, before.amount_fen, before.currency, before.payment_ref) == (
        "requires_payment_method",
        12_345,
        "CNY",
        ref,
    )

    pay_with_test_card(browser, payment.provider_id)
    assert provider.retrieve(payment.provider_id).status == "succeeded"

    first = provider.refund(payment.provider_id, 2_345, refund_ref=f"{ref}-r1")
    assert first.refund_id.startswith("re_")
    assert (first.amount_fen, first.status, first.credit_note_number) == (2_345, "succeeded", None)
    second = provider.refund(payment.provider_id, 10_000, refund_ref=f"{ref}-r2")
    assert second.refund_id != first.refund_id


def test_refunding_an_unpaid_intent_fails(provider: StripeProvider) -> None:
    payment = provider.create(f"pay-{uuid.uuid4().hex[:8]}", 500)
    with pytest.raises(PaymentProviderError) as info:
        provider.refund(payment.provider_id, 500)
    assert info.value.http_status == 400


def test_unknown_intent(provider: StripeProvider) -> None:
    with pytest.raises(PaymentProviderError) as info:
        provider.retrieve("pi_doesnotexist")
    assert info.value.http_status == 404


def test_signed_webhook_arrives_and_verifies(
    localstripe, provider: StripeProvider, browser: stripe.StripeClient, webhook_receiver
) -> None:
    localstripe.register_webhook(
        f"wh-{uuid.uuid4().hex[:8]}",
        webhook_receiver.url,
        WEBHOOK_SECRET,
        events=["payment_intent.succeeded"],
    )
    ref = f"pay-{uuid.uuid4().hex[:8]}"
    payment = provider.create(ref, 88_800, "CNY", {"license_id": "7"})
    pay_with_test_card(browser, payment.provider_id)

    delivery = webhook_receiver.wait_for(
        lambda body: body["data"]["object"]["id"] == payment.provider_id
    )
    assert delivery.signature and delivery.signature.startswith("t=")

    event = provider.parse_webhook(delivery.body, delivery.signature)
    assert event.type == "payment_intent.succeeded"
    assert event.id.startswith("evt_")
    assert (event.object_id, event.payment_ref) == (payment.provider_id, ref)
    assert (event.amount_fen, event.currency, event.status) == (88_800, "CNY", "succeeded")
    # Replays verify the same way (within the tolerance); the caller dedupes on event.id.
    assert provider.parse_webhook(delivery.body, delivery.signature).id == event.id

    tampered = json.loads(delivery.body)
    tampered["data"]["object"]["amount"] = 1
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(
            json.dumps(tampered, indent=2, sort_keys=True).encode(), delivery.signature
        )
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(delivery.body + b" ", delivery.signature)

    # The same body, validly signed but an hour ago, is a replay and is refused.
    old = stripe.WebhookSignature.generate_signature_header(
        delivery.body.decode(), WEBHOOK_SECRET, timestamp=int(time.time()) - 3600
    )
    with pytest.raises(InvalidWebhook, match="tolerance"):
        provider.parse_webhook(delivery.body, old)

    with StripeProvider(
        localstripe.api_key, localstripe.base_url, webhook_secret="whsec_wrong"
    ) as other:
        with pytest.raises(InvalidWebhook):
            other.parse_webhook(delivery.body, delivery.signature)
