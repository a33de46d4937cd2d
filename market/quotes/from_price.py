"""The catalogue's "from ¥…": the price of the smallest license a buyer can ask for.

The smallest scope is one month, one query and only the entity key (or the lightest column
when there is none), for the cheapest purpose whose price is not zero (public-welfare use can
be free, which says nothing about the price a company pays). Priced with the current
parameters and revenue caps, like a quote; nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

import pricing
from market.datasets.models import Dataset
from market.errors import DomainError
from market.quotes import revenue
from market.quotes.parameters import current_parameter_set, parameters_of
from market.quotes.services import priced_dataset


def _smallest_columns(info: pricing.DatasetInfo) -> frozenset[str]:
    if info.entity_key:
        return frozenset({info.entity_key})
    return frozenset({min(info.columns, key=lambda name: (info.columns[name], name))})


def from_prices(session: Session, datasets: Iterable[Dataset]) -> dict[int, int]:
    """``{dataset id: fen}`` for the datasets that can be priced (others are left out)."""
    datasets = list(datasets)
    if not datasets:
        return {}
    params = parameters_of(current_parameter_set(session))
    over = revenue.over_cap_categories(session, None)
    out: dict[int, int] = {}
    for dataset in datasets:
        try:
            info = priced_dataset(session, dataset.id, "items[0]").info
            if not info.columns:
                continue
            prices = []
            for purpose in pricing.Purpose:
                scope = pricing.Scope(
                    columns=_smallest_columns(info), duration_months=1, purpose=purpose,
                    query_quota=1,
                )
                total = pricing.quote([(info, scope)], params, over_cap_categories=over).total
                if total > 0:
                    prices.append(total)
        except (DomainError, pricing.NotPriceable, pricing.InvalidScope):
            continue
        if prices:
            out[dataset.id] = min(prices)
    return out


def sample_size_hint(rows: int | None) -> int | None:
    """The row count rounded to two significant figures, for "about N records"."""
    if rows is None or rows <= 0:
        return rows
    digits = len(str(rows))
    if digits <= 2:
        return rows
    unit = 10 ** (digits - 2)
    return round(rows / unit) * unit
