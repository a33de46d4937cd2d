"""Payment providers: ``invoice`` (offline, default) and ``stripe``."""

from licenses.providers.base import (
    CURRENCY,
    PaymentProvider,
    ProviderPayment,
    RefundResult,
)
from licenses.providers.invoice import (
    InvoiceProvider,
    credit_note_number,
    document_number,
    invoice_number,
)
from licenses.providers.stripe_provider import (
    PaymentStatus,
    StripeProvider,
    WebhookEvent,
)

__all__ = [
    "CURRENCY",
    "InvoiceProvider",
    "PaymentProvider",
    "PaymentStatus",
    "ProviderPayment",
    "RefundResult",
    "StripeProvider",
    "WebhookEvent",
    "credit_note_number",
    "document_number",
    "invoice_number",
]
