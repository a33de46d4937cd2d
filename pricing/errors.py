"""Typed errors of the pricing model.

Every error names the offending ``field`` so an API layer can turn it into the common error
envelope (``{"errors": {field: [message]}}``) without parsing text. Messages never echo the
data itself, only names and limits, so they are safe to log.
"""

from __future__ import annotations


class PricingError(Exception):
    """Base class: ``field`` is a dotted path such as ``purpose_coefficients.research``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def to_errors(self) -> dict[str, list[str]]:
        """Field errors in the shape the API error envelope uses."""
        return {self.field: [self.message]}


class NotPriceable(PricingError):
    """The dataset cannot be priced: quality below the floor, or its description is invalid."""


class InvalidScope(PricingError):
    """The requested license scope is invalid (unknown column, bad duration, exclusivity...)."""


class InvalidParameters(PricingError):
    """A pricing-parameter set fails validation."""


class InvalidRevenueInput(PricingError):
    """Input to the revenue-cap report is invalid (bad period, bad amount)."""
