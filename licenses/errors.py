"""Typed exceptions of the pure licence core.

The API layer maps them to HTTP statuses in one table; the suggested status is noted on each
class. The ``ValueError`` bases let callers that only know the standard library still catch
bad input.
"""

from __future__ import annotations

from market.i18n import N_


class LicenseError(Exception):
    """Base class of every error raised by :mod:`licenses`.

    ``message`` is an English msgid marked with ``N_`` and ``params`` its ``%(name)s`` values,
    kept apart so that the app can translate the message where it reaches a person
    (:func:`market.i18n.translate`); ``str(exc)`` is the English text, filled in.
    """

    def __init__(self, message: str = "", **params: object) -> None:
        self.message = message
        self.params = params
        super().__init__(message % params if params else message)


class IllegalTransition(LicenseError):
    """An event is not allowed in the licence's current status (→ 409)."""

    def __init__(self, current: str, event: str) -> None:
        self.current = current
        self.event = event
        super().__init__(
            N_("cannot %(event)s a licence that is %(current)s"), event=event, current=current
        )


class InvalidPolicy(LicenseError, ValueError):
    """The inputs of an ODRL policy are inconsistent, e.g. it ends before it starts (→ 422)."""


class InvalidSplit(LicenseError, ValueError):
    """A revenue split cannot be computed from the given amounts and weights (→ 422/500)."""


class InvalidRefund(LicenseError, ValueError):
    """A refund is negative, or larger than what is left to refund (→ 409/422)."""


class UnbalancedJournal(LicenseError):
    """A journal's debits and credits differ, or a line is malformed. Always a bug (→ 500)."""


class PaymentProviderError(LicenseError):
    """A payment provider refused or failed a request (→ 502, or 402 for a declined card).

    ``code`` is the provider's machine-readable error code when it sent one; the message never
    contains API keys or card data.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        **params: object,
    ) -> None:
        self.code = code
        self.http_status = http_status
        super().__init__(message, **params)


class InvalidPaymentRequest(PaymentProviderError, ValueError):
    """A payment or refund was asked with an invalid amount, currency or reference (→ 422)."""


class InvalidWebhook(PaymentProviderError):
    """A webhook's signature, timestamp or body is not acceptable (→ 400)."""
