"""Pure pricing model for public-data licenses: dataclasses in, explained quote out.

No Flask, no database. See :mod:`pricing.model` for the formula and why it is free of
arbitrage, :mod:`pricing.params` for the operator's parameters, :mod:`pricing.caps` for the
per-period revenue caps.
"""

from .caps import (
    OPERATOR,
    RevenueCapRow,
    RevenueEntry,
    carry_forward,
    next_period,
    parse_period,
    revenue_cap_report,
)
from .errors import (
    InvalidParameters,
    InvalidRevenueInput,
    InvalidScope,
    NotPriceable,
    PricingError,
)
from .model import (
    CURRENCY,
    FACTOR_ORDER,
    MODEL_REV,
    Costs,
    DatasetInfo,
    ItemPrice,
    Quote,
    Scope,
    Upgrade,
    UpgradeItem,
    base_fen,
    bundle_discount,
    model_version,
    parse_purpose,
    price_item,
    quality_coefficient,
    quote,
    upgrade_price,
    upgrade_quote,
)
from .params import (
    MAX_DURATION_MONTHS,
    MAX_QUERY_QUOTA,
    PURPOSE_ORDER,
    BundleBracket,
    PricingParameters,
    Purpose,
)

__all__ = [
    "CURRENCY",
    "FACTOR_ORDER",
    "MAX_DURATION_MONTHS",
    "MAX_QUERY_QUOTA",
    "MODEL_REV",
    "OPERATOR",
    "PURPOSE_ORDER",
    "BundleBracket",
    "Costs",
    "DatasetInfo",
    "InvalidParameters",
    "InvalidRevenueInput",
    "InvalidScope",
    "ItemPrice",
    "NotPriceable",
    "PricingError",
    "PricingParameters",
    "Purpose",
    "Quote",
    "RevenueCapRow",
    "RevenueEntry",
    "Scope",
    "Upgrade",
    "UpgradeItem",
    "base_fen",
    "bundle_discount",
    "carry_forward",
    "model_version",
    "next_period",
    "parse_period",
    "parse_purpose",
    "price_item",
    "quality_coefficient",
    "quote",
    "revenue_cap_report",
    "upgrade_price",
    "upgrade_quote",
]
