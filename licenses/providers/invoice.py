"""The offline invoice provider: the buyer pays by bank transfer, the operator settles.

Numbers are derived from a sequence number the caller supplies, so the database (a counter
row per prefix and month, incremented under a lock) owns their uniqueness.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from licenses.errors import InvalidPaymentRequest
from licenses.providers.base import (
    CURRENCY,
    ProviderPayment,
    RefundResult,
    check_amount,
    check_request,
)
from market.i18n import N_

INVOICE_PREFIX = "INV"
CREDIT_NOTE_PREFIX = "CN"
_NUMBER = re.compile(r"^(INV|CN)-(\d{6})-(\d{6,})$")

#: ``(prefix, period "YYYYMM") -> next sequence number (≥ 1)``, owned by the database.
SequenceSource = Callable[[str, str], int]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def period_of(moment: datetime) -> str:
    """The ``YYYYMM`` of ``moment`` in UTC; raises InvalidPaymentRequest if it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidPaymentRequest(N_("invoice dates must be timezone-aware"))
    return moment.astimezone(UTC).strftime("%Y%m")


def document_number(prefix: str, period: str, sequence: int) -> str:
    """``{prefix}-{YYYYMM}-{sequence:06d}``, e.g. ``INV-202501-000042``. Sequences past
    999999 get more digits rather than wrapping. Raises InvalidPaymentRequest for a bad
    prefix, period or a sequence < 1."""
    if prefix not in (INVOICE_PREFIX, CREDIT_NOTE_PREFIX):
        raise InvalidPaymentRequest(N_("unknown document prefix %(prefix)r"), prefix=prefix)
    if not re.fullmatch(r"\d{6}", period):
        raise InvalidPaymentRequest(N_("period must be YYYYMM"))
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise InvalidPaymentRequest(N_("sequence numbers start at 1"))
    return f"{prefix}-{period}-{sequence:06d}"


def invoice_number(issued_at: datetime, sequence: int) -> str:
    return document_number(INVOICE_PREFIX, period_of(issued_at), sequence)


def credit_note_number(issued_at: datetime, sequence: int) -> str:
    return document_number(CREDIT_NOTE_PREFIX, period_of(issued_at), sequence)


def is_invoice_number(text: str) -> bool:
    match = _NUMBER.match(text) if isinstance(text, str) else None
    return bool(match and match.group(1) == INVOICE_PREFIX)


class InvoiceProvider:
    """Issues invoice numbers for payments and credit-note numbers for refunds.

    Nothing leaves the process: settlement is the operator's ``POST /payments/{id}/settle``,
    and a refund is a credit note the operator pays back by bank transfer (status
    ``pending``).
    """

    name = "invoice"

    def __init__(self, next_sequence: SequenceSource, clock: Callable[[], datetime] = _utcnow):
        self._next_sequence = next_sequence
        self._clock = clock

    def _number(self, prefix: str) -> str:
        period = period_of(self._clock())
        return document_number(prefix, period, self._next_sequence(prefix, period))

    def create(
        self,
        payment_ref: str,
        amount_fen: int,
        currency: str = CURRENCY,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderPayment:
        """Issue an invoice. Raises InvalidPaymentRequest for bad arguments."""
        check_request(payment_ref, amount_fen, currency, metadata)
        number = self._number(INVOICE_PREFIX)
        return ProviderPayment(provider_id=number, invoice_number=number)

    def refund(
        self, provider_id: str, amount_fen: int, refund_ref: str | None = None
    ) -> RefundResult:
        """Issue a credit note against invoice ``provider_id``.

        Raises InvalidPaymentRequest if ``provider_id`` is not an invoice number or the amount
        is not positive. Whether the amount fits the invoice is the caller's check: it holds
        the invoice and its earlier refunds. ``refund_ref`` is accepted for the interface and
        not needed: each call issues a new credit note.
        """
        if not is_invoice_number(provider_id):
            raise InvalidPaymentRequest(N_("refunds need the invoice number of the payment"))
        check_amount(amount_fen)
        number = self._number(CREDIT_NOTE_PREFIX)
        return RefundResult(
            refund_id=number, amount_fen=amount_fen, status="pending", credit_note_number=number
        )
