"""Typed errors of the pricing model.

Every error names the offending ``field`` so an API layer can turn it into the common error
envelope (``{"errors": {field: [message]}}``) without parsing text. Messages never echo the
data itself, only names and limits, so they are safe to log.

New messages are English msgids marked with ``N_`` whose values are kept apart in ``params``;
the app translates them with ``market.i18n.translate(error.message, error.params)``.
"""

from __future__ import annotations


class PricingError(Exception):
    """Base class: ``field`` is a dotted path such as ``purpose_coefficients.research``."""

    def __init__(self, field: str, message: str, **params: object) -> None:
        self.field = field
        self.message = message
        self.params = params
        super().__init__(f"{field}: {self.text}")

    @property
    def text(self) -> str:
        """The English message with its values filled in."""
        return self.message % self.params if self.params else self.message

    def to_errors(self) -> dict[str, list[str]]:
        """Field errors in the shape the API error envelope uses, in the current locale
        (English outside an app context)."""
        from market.i18n import translate

        return {self.field: [translate(self.message, self.params)]}


class NotPriceable(PricingError):
    """The dataset cannot be priced: quality below the floor, or its description is invalid."""


class InvalidScope(PricingError):
    """The requested license scope is invalid (unknown column, bad duration, exclusivity...)."""


class InvalidParameters(PricingError):
    """A pricing-parameter set fails validation."""


class InvalidRevenueInput(PricingError):
    """Input to the revenue-cap report is invalid (bad period, bad amount)."""
