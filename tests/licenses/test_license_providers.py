"""Payment providers without a Stripe server: the invoice provider, and the Stripe provider's
request shape and webhook verification against a recording HTTP server."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from licenses.errors import InvalidPaymentRequest, InvalidWebhook, PaymentProviderError
from licenses.providers import (
    InvoiceProvider,
    PaymentProvider,
    ProviderPayment,
    RefundResult,
    StripeProvider,
    credit_note_number,
    document_number,
    invoice_number,
)

JAN = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, prefix: str, period: str) -> int:
        self.calls.append((prefix, period))
        return sum(1 for c in self.calls if c == (prefix, period))


@pytest.mark.parametrize(
    ("prefix", "period", "seq", "expected"),
    [
        ("INV", "202501", 1, "INV-202501-000001"),
        ("INV", "202501", 42, "INV-202501-000042"),
        ("CN", "202512", 999_999, "CN-202512-999999"),
        ("INV", "202501", 1_234_567, "INV-202501-1234567"),
    ],
)
def test_document_numbers(prefix, period, seq, expected) -> None:
    assert document_number(prefix, period, seq) == expected


@pytest.mark.parametrize(
    ("prefix", "period", "seq"),
    [("XX", "202501", 1), ("INV", "2025-01", 1), ("INV", "202501", 0), ("INV", "202501", True)],
)
def test_bad_document_numbers(prefix, period, seq) -> None:
    with pytest.raises(InvalidPaymentRequest):
        document_number(prefix, period, seq)


def test_numbers_use_the_utc_month() -> None:
    shanghai_feb = datetime(2025, 2, 1, 7, 59, tzinfo=timezone(timedelta(hours=8)))
    assert invoice_number(shanghai_feb, 3) == "INV-202501-000003"
    assert credit_note_number(JAN, 9) == "CN-202501-000009"
    with pytest.raises(InvalidPaymentRequest):
        invoice_number(datetime(2025, 1, 1), 1)


def test_invoice_provider_flow() -> None:
    counter = Counter()
    provider = InvoiceProvider(counter, clock=lambda: JAN)
    assert isinstance(provider, PaymentProvider)
    assert provider.name == "invoice"

    first = provider.create("pay-1", 12_345, "CNY", {"license_id": "42"})
    second = provider.create("pay-2", 1)
    assert first == ProviderPayment("INV-202501-000001", None, "INV-202501-000001")
    assert second.invoice_number == "INV-202501-000002"

    refund = provider.refund(first.provider_id, 2_345, refund_ref="re-1")
    assert refund == RefundResult("CN-202501-000001", 2_345, "pending", "CN-202501-000001")
    assert counter.calls == [("INV", "202501"), ("INV", "202501"), ("CN", "202501")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pay-1", 0), "positive"),
        (("pay-1", -1), "positive"),
        (("pay-1", 10.0), "positive"),
        (("pay-1", True), "positive"),
        (("", 100), "payment_ref"),
        (("pay-1", 100, "USD"), "CNY"),
        (("pay-1", 100, "cny"), "CNY"),
        (("pay-1", 100, "CNY", {"n": 1}), "metadata"),
        (("pay-1", 100, "CNY", ["x"]), "metadata"),
    ],
)
def test_invalid_payment_requests(args, message) -> None:
    counter = Counter()
    with pytest.raises(InvalidPaymentRequest, match=message):
        InvoiceProvider(counter, clock=lambda: JAN).create(*args)
    assert counter.calls == []  # no number is burnt on a refused request


@pytest.mark.parametrize(
    ("provider_id", "amount"), [("pi_123", 10), ("INV-202501-000001", 0), ("", 5)]
)
def test_invalid_invoice_refunds(provider_id, amount) -> None:
    with pytest.raises(InvalidPaymentRequest):
        InvoiceProvider(Counter(), clock=lambda: JAN).refund(provider_id, amount)


# --- Stripe, against a recording server -------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.response: dict = {}


@pytest.fixture
def fake_stripe() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            recorder.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "form": dict(urllib.parse.parse_qsl(body)),
                }
            )
            payload = json.dumps(recorder.response).encode()
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_stripe_create_request(fake_stripe) -> None:
    base, recorder = fake_stripe
    recorder.response = {
        "id": "pi_123",
        "object": "payment_intent",
        "client_secret": "pi_123_secret_abc",
        "amount": 12_345,
        "currency": "cny",
        "status": "requires_payment_method",
    }
    with StripeProvider("sk_test_x", api_base=base + "/", max_network_retries=0) as provider:
        assert isinstance(provider, PaymentProvider)
        payment = provider.create(
            "pay-7", 12_345, "CNY", {"license_id": "42", "payment_ref": "evil"}
        )
    assert payment == ProviderPayment("pi_123", "pi_123_secret_abc", None)
    [request] = recorder.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/payment_intents")
    assert request["form"] == {
        "amount": "12345",
        "currency": "cny",
        "metadata[license_id]": "42",
        "metadata[payment_ref]": "pay-7",
    }
    assert request["headers"]["Idempotency-Key"] == "market-pi-pay-7"
    assert request["headers"]["Authorization"] == "Bearer sk_test_x"


def test_stripe_payment_method_types_are_optional(fake_stripe) -> None:
    base, recorder = fake_stripe
    recorder.response = {"id": "pi_1", "object": "payment_intent", "client_secret": "s"}
    with StripeProvider(
        "sk_test_x", base, payment_method_types=["card", "alipay"], max_network_retries=0
    ) as p:
        p.create("pay-8", 100)
    form = recorder.requests[0]["form"]
    assert form["payment_method_types[0]"] == "card"
    assert form["payment_method_types[1]"] == "alipay"


def test_stripe_refund_request(fake_stripe) -> None:
    base, recorder = fake_stripe
    recorder.response = {"id": "re_1", "object": "refund", "amount": 500, "status": "succeeded"}
    with StripeProvider("sk_test_x", base, max_network_retries=0) as provider:
        assert provider.refund("pi_123", 500, refund_ref="rf-9") == RefundResult(
            "re_1", 500, "succeeded"
        )
        provider.refund("pi_123", 500)
    with_ref, without_ref = recorder.requests
    assert with_ref["form"] == {
        "payment_intent": "pi_123",
        "amount": "500",
        "metadata[refund_ref]": "rf-9",
    }
    assert with_ref["headers"]["Idempotency-Key"] == "market-re-rf-9"
    assert without_ref["form"] == {"payment_intent": "pi_123", "amount": "500"}


@pytest.mark.parametrize(
    ("status", "error", "expected_status", "code"),
    [
        (
            402,
            {"type": "card_error", "code": "card_declined", "message": "4242 declined"},
            402,
            "card_declined",
        ),
        (
            400,
            {"type": "invalid_request_error", "code": "amount_too_small", "message": "x"},
            400,
            "amount_too_small",
        ),
        (
            401,
            {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_x"},
            401,
            None,
        ),
    ],
)
def test_stripe_errors_are_wrapped(fake_stripe, status, error, expected_status, code) -> None:
    base, recorder = fake_stripe
    recorder.status = status
    recorder.response = {"error": error}
    with StripeProvider("sk_test_x", base, max_network_retries=0) as provider:
        with pytest.raises(PaymentProviderError) as info:
            provider.create("pay-9", 100)
    assert info.value.http_status == expected_status
    assert info.value.code == code
    assert "sk_test_x" not in str(info.value) and "4242" not in str(info.value)


def test_stripe_connection_error_is_wrapped() -> None:
    with StripeProvider(
        "sk_test_x", "http://127.0.0.1:9", max_network_retries=0, timeout=2
    ) as provider:
        with pytest.raises(PaymentProviderError, match="APIConnectionError"):
            provider.create("pay-10", 100)


@pytest.mark.parametrize(
    ("provider_id", "amount"), [("INV-202501-000001", 5), ("pi_1", 0), ("pi_1", -5), (None, 5)]
)
def test_stripe_refund_arguments(provider_id, amount) -> None:
    with StripeProvider("sk_test_x", "http://127.0.0.1:9", max_network_retries=0) as provider:
        with pytest.raises(InvalidPaymentRequest):
            provider.refund(provider_id, amount)


def test_stripe_needs_a_key() -> None:
    with pytest.raises(PaymentProviderError, match="STRIPE_API_KEY"):
        StripeProvider("")


# --- webhook verification -------------------------------------------------------------------

SECRET = "whsec_unit_test"


def _event_body(**overrides) -> str:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_735_689_600,
        "livemode": False,
        "data": {
            "object": {
                "id": "pi_1",
                "object": "payment_intent",
                "amount": 12_345,
                "currency": "cny",
                "status": "succeeded",
                "metadata": {"payment_ref": "pay-1"},
            }
        },
    }
    event.update(overrides)
    return json.dumps(event, indent=2)


def _header(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)


@pytest.fixture
def webhook_provider() -> Iterator[StripeProvider]:
    with StripeProvider("sk_test_x", "http://127.0.0.1:9", webhook_secret=SECRET) as provider:
        yield provider


def test_webhook_is_parsed(webhook_provider: StripeProvider) -> None:
    body = _event_body()
    event = webhook_provider.parse_webhook(body.encode(), _header(body))
    assert (event.id, event.type, event.object_id) == ("evt_1", "payment_intent.succeeded", "pi_1")
    assert (event.payment_ref, event.amount_fen, event.currency, event.status) == (
        "pay-1",
        12_345,
        "CNY",
        "succeeded",
    )
    assert event.created == datetime(2025, 1, 1, tzinfo=UTC)
    assert event.livemode is False
    assert event.data["metadata"] == {"payment_ref": "pay-1"}
    assert webhook_provider.parse_webhook(body, _header(body)).id == "evt_1"  # str bodies too


def test_webhook_with_several_signatures(webhook_provider: StripeProvider) -> None:
    # During a secret roll Stripe signs with both secrets; one match is enough.
    body = _event_body()
    now = int(time.time())
    old = _header(body, "whsec_old", now).split(",")[1]
    assert (
        webhook_provider.parse_webhook(body, f"{_header(body, timestamp=now)},{old}").id == "evt_1"
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda b: (b.replace("12345", "1"), _header(b)), id="tampered body"),
        pytest.param(lambda b: (b, _header(b, "whsec_other")), id="other secret"),
        pytest.param(lambda b: (b, _header(b, timestamp=int(time.time()) - 301)), id="too old"),
        pytest.param(lambda b: (b, None), id="no header"),
        pytest.param(lambda b: (b, ""), id="empty header"),
        pytest.param(lambda b: (b, "garbage"), id="garbage header"),
        pytest.param(lambda b: (b, "t=abc,v1=00"), id="bad timestamp"),
        pytest.param(lambda b: (b, _header(b).split(",")[0]), id="no v1 signature"),
        pytest.param(lambda b: (b"\xff\xfe", _header("x")), id="not utf-8"),
        pytest.param(lambda b: ("not json", _header("not json")), id="signed non-JSON"),
        pytest.param(lambda b: ('{"a": 1}', _header('{"a": 1}')), id="signed non-event"),
        pytest.param(
            lambda b: (_event_body(data=[1]), _header(_event_body(data=[1]))),
            id="signed malformed event",
        ),
        pytest.param(
            lambda b: (_event_body(created="soon"), _header(_event_body(created="soon"))),
            id="bad created",
        ),
    ],
)
def test_webhook_rejections(webhook_provider: StripeProvider, make) -> None:
    body, header = make(_event_body())
    with pytest.raises(InvalidWebhook):
        webhook_provider.parse_webhook(body, header)


def test_webhook_tolerance(webhook_provider: StripeProvider) -> None:
    body = _event_body()
    ten_minutes_ago = _header(body, timestamp=int(time.time()) - 600)
    assert webhook_provider.parse_webhook(body, ten_minutes_ago, tolerance=900).id == "evt_1"
    with pytest.raises(InvalidWebhook):
        webhook_provider.parse_webhook(body, ten_minutes_ago)
    with pytest.raises(ValueError):
        webhook_provider.parse_webhook(body, _header(body), tolerance=0)


def test_webhook_needs_a_secret() -> None:
    body = _event_body()
    with StripeProvider("sk_test_x", "http://127.0.0.1:9") as provider:
        with pytest.raises(PaymentProviderError, match="STRIPE_WEBHOOK_SECRET"):
            provider.parse_webhook(body, _header(body))
