"""Paying with Stripe, against localstripe: PaymentIntent through the API, confirmation as the
buyer's browser would, the signed webhook delivered to the app, replays, refunds."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import stripe

from tests.licenses_app.conftest import WEBHOOK_SECRET, apply


@pytest.fixture
def stripe_config(app, localstripe, monkeypatch):
    for key, value in {
        "STRIPE_API_KEY": localstripe.api_key,
        "STRIPE_API_BASE": localstripe.base_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        "STRIPE_TIMEOUT": 10,
    }.items():
        monkeypatch.setitem(app.config, key, value)
    return app.config


@pytest.fixture
def card_holder(localstripe) -> Iterator[stripe.StripeClient]:
    """Plays the buyer's browser (Stripe.js): attaches the test card and confirms."""
    http = stripe.RequestsClient(timeout=10)
    yield stripe.StripeClient(
        localstripe.api_key,
        base_addresses={"api": localstripe.base_url},
        max_network_retries=0,
        http_client=http,
    )
    http.close()


def pay_with_test_card(client: stripe.StripeClient, intent_id: str) -> None:
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    client.v1.payment_intents.confirm(intent_id)


def signed(
    body: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp or int(time.time())
    )
    return payload.encode(), header


def event(type_: str, payment, amount: int | None = None, **obj) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": payment.provider_id,
                "object": "payment_intent",
                "amount": payment.amount_fen if amount is None else amount,
                "currency": "cny",
                "status": "succeeded" if type_.endswith("succeeded") else "requires_payment_method",
                "metadata": {"payment_ref": payment.reference},
                **obj,
            }
        },
    }


def post_webhook(client, payload: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/api/v1/payments/stripe/webhook", data=payload, headers=headers)


def _kinds():
    from licenses.models import LedgerJournal
    from market.extensions import db

    return db.session.scalars(sa.select(LedgerJournal.kind).order_by(LedgerJournal.id)).all()


def test_stripe_not_configured_is_422(client, market):
    lic = apply(client, market, market.quote([(market.dataset(), 5_000)])).get_json()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "stripe"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 422
    assert r.get_json()["message"] == "stripe is not configured"
    r = post_webhook(client, b"{}", "t=1,v1=abc")
    assert r.status_code == 422


def test_pay_with_stripe_end_to_end(
    app, client, market, stripe_config, localstripe, webhook_receiver, card_holder
):
    from licenses.models import LedgerJournal, Payment, Refund
    from market.audit.models import AuditEvent
    from market.extensions import db

    localstripe.register_webhook(
        f"wh-{uuid.uuid4().hex[:8]}",
        webhook_receiver.url,
        WEBHOOK_SECRET,
        events=["payment_intent.succeeded"],
    )
    lic = apply(client, market, market.quote([(market.dataset(), 88_800)])).get_json()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "stripe"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["amount"] == 88_800 and "invoice_number" not in body
    payment = db.session.get(Payment, body["payment_id"])
    assert body["client_secret"].startswith(payment.provider_id + "_secret_")

    pay_with_test_card(card_holder, payment.provider_id)
    delivery = webhook_receiver.wait_for(
        lambda b: (
            b["type"] == "payment_intent.succeeded"
            and b["data"]["object"]["id"] == payment.provider_id
        )
    )

    r = post_webhook(client, delivery.body, delivery.signature)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["outcome"] == "settled" and r.get_json()["duplicate"] is False
    got = client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()
    assert got["status"] == "active"
    assert _kinds() == ["payment_settled"]
    settled = db.session.scalar(
        sa.select(LedgerJournal).where(LedgerJournal.kind == "payment_settled")
    )
    cash = [line for line in settled.lines if line.account == "cash"]
    assert [(c.debit_fen, c.credit_fen) for c in cash] == [(88_800, 0)]

    # A replay (Stripe retries) changes nothing and still answers 200.
    r = post_webhook(client, delivery.body, delivery.signature)
    assert r.status_code == 200 and r.get_json()["duplicate"] is True
    assert _kinds() == ["payment_settled"]
    activations = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.type == "license.activated")
    )
    assert activations == 1

    # Tampered or unsigned deliveries are refused.
    tampered = json.loads(delivery.body)
    tampered["data"]["object"]["amount"] = 1
    assert (
        post_webhook(client, json.dumps(tampered).encode(), delivery.signature).status_code == 400
    )
    assert post_webhook(client, delivery.body, None).status_code == 400
    old_payload, old_sig = signed(
        json.loads(delivery.body) | {"id": "evt_old"}, timestamp=int(time.time()) - 3600
    )
    r = post_webhook(client, old_payload, old_sig)
    assert r.status_code == 400 and "tolerance" in r.get_json()["message"]

    # Revocation refunds the unused term through Stripe.
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "dataset withdrawn"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    refund = db.session.scalar(sa.select(Refund))
    assert refund.provider_refund_id.startswith("re_") and refund.status == "succeeded"
    assert 0 < refund.amount_fen <= 88_800
    assert _kinds() == ["payment_settled", "refund_issued"]
    journal = db.session.scalar(
        sa.select(LedgerJournal).where(LedgerJournal.kind == "refund_issued")
    )
    assert [(x.debit_fen, x.credit_fen) for x in journal.lines if x.account == "cash"] == [
        (0, refund.amount_fen)
    ]


def test_failed_then_succeeded_and_mismatches(app, client, market, stripe_config):
    from licenses.models import Payment, WebhookEvent
    from market.extensions import db

    lic = apply(client, market, market.quote([(market.dataset(), 12_300)])).get_json()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "stripe"},
        headers=market.buyer.headers,
    )
    payment = db.session.get(Payment, r.get_json()["payment_id"])
    # Asking again returns the same open payment.
    again = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "stripe"},
        headers=market.buyer.headers,
    )
    assert again.status_code == 200 and again.get_json()["payment_id"] == payment.id
    assert again.get_json()["client_secret"]
    db.session.refresh(payment)

    failed = event(
        "payment_intent.payment_failed", payment, last_payment_error={"code": "card_declined"}
    )
    r = post_webhook(client, *signed(failed))
    assert r.get_json()["outcome"] == "failed"
    db.session.refresh(payment)
    assert (payment.status, payment.failure_reason) == ("failed", "card_declined")

    wrong = event("payment_intent.succeeded", payment, amount=1)
    assert post_webhook(client, *signed(wrong)).get_json()["outcome"] == "amount_mismatch"
    other = event("charge.refunded", payment)
    assert post_webhook(client, *signed(other)).get_json()["outcome"] == "ignored"
    stray = event("payment_intent.succeeded", payment)
    stray["data"]["object"]["metadata"] = {"payment_ref": "pay_unknown"}
    stray["data"]["object"]["id"] = "pi_unknown"
    assert post_webhook(client, *signed(stray)).get_json()["outcome"] == "unknown_payment"

    ok = event("payment_intent.succeeded", payment)
    assert post_webhook(client, *signed(ok)).get_json()["outcome"] == "settled"
    assert (
        client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()[
            "status"
        ]
        == "active"
    )
    outcomes = db.session.scalars(sa.select(WebhookEvent.outcome).order_by(WebhookEvent.id)).all()
    assert outcomes == ["failed", "amount_mismatch", "ignored", "unknown_payment", "settled"]

    wrong_secret = signed(event("payment_intent.succeeded", payment), secret="whsec_other")
    assert post_webhook(client, *wrong_secret).status_code == 400


def test_switching_from_invoice_to_stripe_voids_the_invoice(app, client, market, stripe_config):
    from licenses.models import Payment
    from market.extensions import db

    lic = apply(client, market, market.quote([(market.dataset(), 7_000)])).get_json()
    url = f"/api/v1/licenses/{lic['id']}/payments"
    invoice = client.post(
        url, json={"provider": "invoice"}, headers=market.buyer.headers
    ).get_json()
    card = client.post(url, json={"provider": "stripe"}, headers=market.buyer.headers)
    assert card.status_code == 201
    assert db.session.get(Payment, invoice["payment_id"]).status == "canceled"
    assert _kinds() == ["invoice_issued", "invoice_voided"]
    r = client.post(
        f"/api/v1/payments/{invoice['payment_id']}/settle",
        json={"bank_reference": "late"},
        headers=market.operator.headers,
    )
    assert r.status_code == 409
    r = client.post(
        f"/api/v1/payments/{card.get_json()['payment_id']}/settle",
        json={"bank_reference": "x"},
        headers=market.operator.headers,
    )
    assert r.status_code == 409 and "webhook" in r.get_json()["message"]
    listed = client.get(f"{url}", headers=market.buyer.headers).get_json()
    assert [p["status"] for p in listed["items"]] == ["canceled", "pending"]
