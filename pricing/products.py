"""Data products (数据产品): one price for a bundle of datasets and columns under fixed terms.

A product is priced by the same model as any quote: its parts (one dataset and its columns
each) under the product's terms go through :func:`pricing.model.quote`, so the product's one
price is ``quote(parts).total``. There is no separate product discount on purpose: the
graduated bundle discount already makes the total concave in the subtotal, and every item
price is jointly subadditive (see :mod:`pricing.model`). Hence, with no extra rule:

- a product never costs more than its parts bought one by one (``price(P) <= sum of
  price({part})``), and
- however a buyer splits a product's parts (by dataset, by columns of a dataset, or both) into
  separate purchases under the same terms, their prices add up to at least the product's.

Both are Hypothesis properties in ``tests/pricing/test_product_properties.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from market.i18n import N_

from .errors import InvalidScope
from .model import DatasetInfo, Quote, Scope, quote
from .params import PricingParameters, Purpose


@dataclass(frozen=True)
class ProductPart:
    """One dataset of a product and the columns it grants (``None``: every column)."""

    dataset: DatasetInfo
    columns: frozenset[str] | None = None


@dataclass(frozen=True)
class ProductTerms:
    """The terms every part of a product is licensed under."""

    purpose: Purpose | str
    duration_months: int
    query_quota: int

    def scope(self, columns: frozenset[str] | None) -> Scope:
        """Raises ``InvalidScope`` for bad terms or columns."""
        return Scope(
            columns=columns,
            duration_months=self.duration_months,
            purpose=self.purpose,  # type: ignore[arg-type]
            query_quota=self.query_quota,
        )


def price_product(
    parts: Sequence[ProductPart],
    terms: ProductTerms,
    params: PricingParameters,
    *,
    over_cap_categories: Iterable[str] = (),
) -> Quote:
    """The product's quote; its ``total`` is the product's one price.

    Raises ``InvalidScope`` (no parts, a dataset twice, bad terms or columns) and
    ``NotPriceable`` (a dataset below the quality floor), as :func:`pricing.model.quote`.
    """
    if not parts:
        raise InvalidScope("items", N_("must contain at least one dataset"))
    return quote(
        [(part.dataset, terms.scope(part.columns)) for part in parts],
        params,
        over_cap_categories=over_cap_categories,
    )


def separate_total(
    purchases: Sequence[Sequence[ProductPart]],
    terms: ProductTerms,
    params: PricingParameters,
    *,
    over_cap_categories: Iterable[str] = (),
) -> int:
    """What buying ``purchases`` one after the other costs (each a quote of its own)."""
    over = frozenset(over_cap_categories)
    return sum(
        price_product(group, terms, params, over_cap_categories=over).total for group in purchases
    )
