"""The one category vocabulary of the platform.

Every place that names a dataset category uses these keys: the dataset upload (API schema and
form), the pricing parameters (coefficients, ceilings, revenue caps), the demo data, the
catalogue facets and the DCAT themes. A key outside this list is refused where it enters
(422 naming the key), never silently priced with a default.

The labels are English msgids marked with ``N_``; the app translates them where they are shown.
"""

from __future__ import annotations

from market.i18n import N_

#: category key -> English label (a msgid). Order is the order forms and facets list them in.
CATEGORY_LABELS: dict[str, str] = {
    "enterprise_registry": N_("Enterprise registration"),
    "market_supervision": N_("Market supervision"),
    "tax": N_("Tax"),
    "social_security": N_("Social security"),
    "housing_fund": N_("Housing provident fund"),
    "judicial": N_("Judicial"),
    "environment": N_("Ecology and environment"),
    "natural_resources": N_("Planning and natural resources"),
    "housing_construction": N_("Housing and construction"),
    "science_technology": N_("Science and technology"),
    "utilities": N_("Public utilities"),
}

#: The vocabulary itself.
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_LABELS)

#: Keys earlier parameter versions used for a category of this vocabulary.
LEGACY_ALIASES: dict[str, str] = {"ecology_environment": "environment"}


def is_category(key: object) -> bool:
    """True when ``key`` is a category of the vocabulary."""
    return isinstance(key, str) and key in CATEGORY_LABELS
