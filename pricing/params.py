"""Pricing parameters: the operator-editable, versioned inputs of the model.

A ``PricingParameters`` instance is always valid: ``__post_init__`` checks every field and
raises :class:`~pricing.errors.InvalidParameters` naming the field. ``to_dict``/``from_dict``
round-trip through JSON (Decimals as strings) so the app can store each version as a row.

The constraints are not arbitrary; each one protects a property of the model:

* duration and quota exponents strictly between 0 and 1 make those factors concave, which is
  what makes splitting a license into shorter or smaller ones never cheaper (no arbitrage);
* purpose coefficients are 0 for public welfare (NDRC 发改价格〔2025〕65号: free) and strictly
  increasing in :data:`PURPOSE_ORDER`, so the price is monotone in purpose;
* bundle brackets are graduated (marginal) with non-decreasing rates below 1, so adding an item
  never lowers a total and one bundle never costs more than the same items split up;
* scope shares (columns, duration, quota) are positive and sum to 1: the scope factor is their
  weighted *sum*, which is what makes the price subadditive over term, quota and columns
  jointly (see :mod:`pricing.model`);
* every category key (coefficients, ceilings, revenue caps) belongs to the one vocabulary,
  :data:`pricing.categories.CATEGORIES`: an unknown key is an error naming it, never a silent
  default.

Scarcity and freshness were removed in model revision 2 (they were always 1): a scarcity premium
on public data is the monopoly rent the cost-plus rule (成本 + 合理收益) excludes, and listings
per category do not measure substitutes; how current the data are is already the quality
score's timeliness dimension, so a freshness factor would count it twice. Stored versions that
still carry ``scarcity_*``/``freshness_*`` load, and those fields are ignored
(:data:`RETIRED_FIELDS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from market.i18n import N_

from ._num import FACTOR_PLACES, ONE, ZERO, decimal_places, plain, to_decimal, to_int
from .categories import CATEGORIES, LEGACY_ALIASES
from .errors import InvalidParameters


class Purpose(StrEnum):
    """What the buyer will use the data for; declared order is the price order."""

    public_welfare = "public_welfare"
    research = "research"
    internal_risk_control = "internal_risk_control"
    commercial_product = "commercial_product"

    @property
    def rank(self) -> int:
        return PURPOSE_ORDER.index(self)


PURPOSE_ORDER: tuple[Purpose, ...] = tuple(Purpose)

#: Scope limits fixed by the product, not by the operator.
MAX_DURATION_MONTHS = 60
MAX_QUERY_QUOTA = 10**9

#: The three parts of a license's scope, each with a share of the scope factor.
SCOPE_PARTS: tuple[str, ...] = ("columns", "duration", "quota")

#: Fields of model revision 1 that stored versions may still carry; they are read and ignored.
RETIRED_FIELDS = frozenset({"scarcity_min", "scarcity_max", "freshness_min", "freshness_max"})

#: Fields the operator proposes and the regulator approves before they apply: the
#: government-guided ceilings and the revenue cap with its reduction.
REGULATED_FIELDS: tuple[str, ...] = (
    "category_ceilings_fen",
    "default_ceiling_fen",
    "category_query_ceilings_fen",
    "default_query_ceiling_fen",
    "revenue_caps_fen",
    "default_revenue_cap_fen",
    "over_cap_reduction",
)

#: Months a per-year ceiling is counted over.
CEILING_YEAR_MONTHS = 12


def _default_scope_shares() -> Mapping[str, Decimal]:
    return {"columns": Decimal("0.4"), "duration": Decimal("0.3"), "quota": Decimal("0.3")}


@dataclass(frozen=True)
class BundleBracket:
    """The part of a quote's subtotal at or above ``from_fen`` is discounted by ``rate``.

    Brackets work like income-tax brackets (marginal), never like "all units" thresholds.
    """

    from_fen: int
    rate: Decimal


def _frozen_mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class PricingParameters:
    """One version of the operator's pricing parameters. All money is integer fen."""

    version: int
    # -- cost basis ---------------------------------------------------------------------------
    #: Reasonable return on cost (合理收益率), e.g. 0.08.
    reasonable_return: Decimal
    #: Months of storage cost included in the cost basis.
    horizon_months: int
    #: Number of licenses the cost basis is amortized over.
    expected_licenses: int
    # -- quality ------------------------------------------------------------------------------
    #: Datasets scoring below this (0..100) are not priceable.
    quality_floor: Decimal
    quality_coefficient_at_floor: Decimal
    quality_coefficient_at_max: Decimal
    #: Shape of the quality curve between floor and 100; 1 is linear.
    quality_exponent: Decimal
    # -- category / type ----------------------------------------------------------------------
    category_coefficients: Mapping[str, Decimal]
    default_category_coefficient: Decimal
    #: Government-guided price ceiling per dataset **per year of term** (12 months), by
    #: category: it caps the column and duration parts of the price at this annual rate, so
    #: a 60-month license's ceiling is five times a 12-month one's.
    category_ceilings_fen: Mapping[str, int]
    #: Per-year ceiling for categories without their own; ``None`` means no ceiling.
    default_ceiling_fen: int | None
    # -- scope --------------------------------------------------------------------------------
    #: Duration at which the duration factor is 1.
    duration_reference_months: int
    duration_exponent: Decimal
    #: Quota at which the quota factor is 1.
    quota_reference: int
    #: Quota above which the quota factor stops rising.
    quota_cap: int
    quota_exponent: Decimal
    purpose_coefficients: Mapping[Purpose, Decimal]
    # -- bundles and revenue caps -------------------------------------------------------------
    bundle_discount_brackets: tuple[BundleBracket, ...]
    #: Revenue cap per category per period (month), applied to each party's revenue.
    revenue_caps_fen: Mapping[str, int] = field(default_factory=dict)
    #: Revenue cap for categories without their own; ``None`` means uncapped.
    default_revenue_cap_fen: int | None = None
    #: Government-guided ceiling **per licensed query**, in fen, by category: it caps the
    #: quota part of the price at this rate times the quota.
    category_query_ceilings_fen: Mapping[str, int] = field(default_factory=dict)
    #: Per-query ceiling for categories without their own; ``None`` means no ceiling.
    default_query_ceiling_fen: int | None = None
    #: Shares of the scope factor: ``columns``, ``duration``, ``quota``; positive, sum to 1.
    scope_shares: Mapping[str, Decimal] = field(default_factory=_default_scope_shares)
    #: Once a category's revenue cap is reached in a period, new quotes in that category are
    #: reduced by this fraction (0: no reduction, 1: free) until the period ends.
    over_cap_reduction: Decimal = Decimal("0.5")

    def __post_init__(self) -> None:
        _validate(self)

    # -- lookups used by the model -------------------------------------------------------------
    def category_coefficient(self, category: str) -> Decimal:
        return self.category_coefficients.get(category, self.default_category_coefficient)

    def ceiling_fen(self, category: str) -> int | None:
        """The per-year price ceiling of ``category`` (``None``: none)."""
        return self.category_ceilings_fen.get(category, self.default_ceiling_fen)

    def query_ceiling_fen(self, category: str) -> int | None:
        """The per-query price ceiling of ``category`` (``None``: none)."""
        return self.category_query_ceilings_fen.get(category, self.default_query_ceiling_fen)

    def revenue_cap_fen(self, category: str) -> int | None:
        return self.revenue_caps_fen.get(category, self.default_revenue_cap_fen)

    # -- construction and serialization -----------------------------------------------------
    @classmethod
    def default(cls) -> PricingParameters:
        """A sensible starting version (version 1) for a fresh installation."""
        d = Decimal
        return cls(
            version=1,
            reasonable_return=d("0.08"),
            horizon_months=36,
            expected_licenses=20,
            quality_floor=d(60),
            quality_coefficient_at_floor=d("0.6"),
            quality_coefficient_at_max=d("1.2"),
            quality_exponent=d(1),
            category_coefficients={
                "enterprise_registry": d("1.2"),
                "market_supervision": d("1.2"),
                "tax": d("1.5"),
                "judicial": d("1.3"),
                "social_security": d("1.4"),
                "housing_fund": d("1.3"),
                "natural_resources": d("1.0"),
                "environment": d("0.9"),
                "housing_construction": d("1.1"),
                "science_technology": d("1.0"),
                "utilities": d("1.0"),
            },
            default_category_coefficient=d(1),
            category_ceilings_fen={
                "tax": 30_000_000,
                "social_security": 30_000_000,
                "judicial": 25_000_000,
            },
            default_ceiling_fen=20_000_000,
            duration_reference_months=12,
            duration_exponent=d("0.8"),
            quota_reference=1_000,
            quota_cap=100_000,
            quota_exponent=d("0.5"),
            purpose_coefficients={
                Purpose.public_welfare: d(0),
                Purpose.research: d("0.3"),
                Purpose.internal_risk_control: d("0.7"),
                Purpose.commercial_product: d(1),
            },
            bundle_discount_brackets=(
                BundleBracket(0, d(0)),
                BundleBracket(1_000_000, d("0.03")),
                BundleBracket(5_000_000, d("0.06")),
                BundleBracket(20_000_000, d("0.10")),
            ),
            revenue_caps_fen={},
            default_revenue_cap_fen=500_000_000,
            # The quota part's share of the annual ceiling, spread over the reference quota:
            # 0.3 * 20,000,000 / 1,000 = 6,000 fen (¥60) per query.
            category_query_ceilings_fen={
                "tax": 9_000,
                "social_security": 9_000,
                "judicial": 7_500,
            },
            default_query_ceiling_fen=6_000,
            scope_shares=_default_scope_shares(),
            over_cap_reduction=d("0.5"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: Decimals become plain strings, mappings become dicts."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "bundle_discount_brackets":
                out[f.name] = [{"from_fen": b.from_fen, "rate": plain(b.rate)} for b in value]
            elif f.name == "scope_shares":
                out[f.name] = {k: plain(value[k]) for k in SCOPE_PARTS}
            elif f.name == "purpose_coefficients":
                out[f.name] = {str(p): plain(value[p]) for p in PURPOSE_ORDER}
            elif isinstance(value, Mapping):
                out[f.name] = {
                    k: plain(v) if isinstance(v, Decimal) else v for k, v in sorted(value.items())
                }
            elif isinstance(value, Decimal):
                out[f.name] = plain(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PricingParameters:
        """Build and validate from ``to_dict`` output (or a JSON body).

        Fields of model revision 1 (:data:`RETIRED_FIELDS`) are ignored, so stored versions
        still load. Raises ``InvalidParameters`` naming the first bad, missing or unknown field.
        """
        if not isinstance(data, Mapping):
            raise InvalidParameters("parameters", N_("must be a JSON object"))
        names = [f.name for f in dataclasses.fields(cls)]
        data = {k: v for k, v in data.items() if k not in RETIRED_FIELDS}
        for key in sorted(data):
            if key not in names:
                raise InvalidParameters(str(key), N_("unknown field"))
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if f.default is not dataclasses.MISSING or (
                    f.default_factory is not dataclasses.MISSING
                ):
                    continue
                raise InvalidParameters(f.name, N_("is required"))
            kwargs[f.name] = data[f.name]
        # Normalization and checking happen in __post_init__ via _validate.
        return cls(**kwargs)

    def updated(self, changes: Mapping[str, Any]) -> PricingParameters:
        """A copy with ``changes`` (JSON-style values) applied, validated, version unchanged
        unless ``changes`` sets it. Raises ``InvalidParameters``."""
        return PricingParameters.from_dict({**self.to_dict(), **dict(changes)})


def upgrade_legacy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored revision-1 parameter dict in today's vocabulary: retired fields dropped and
    legacy category keys (:data:`pricing.categories.LEGACY_ALIASES`) renamed. Used by the
    migration; keys outside the vocabulary are left for validation to name."""
    out = {k: v for k, v in data.items() if k not in RETIRED_FIELDS}
    for name in CATEGORY_FIELDS:
        value = out.get(name)
        if isinstance(value, Mapping):
            renamed: dict[str, Any] = {}
            for key, v in value.items():
                new = LEGACY_ALIASES.get(key, key)
                # An explicit value under the new key wins over the legacy one.
                if new not in renamed or new == key:
                    renamed[new] = v
            out[name] = renamed
    return out


# -- validation -------------------------------------------------------------------------------


def _set(params: PricingParameters, name: str, value: Any) -> None:
    object.__setattr__(params, name, value)


def _dec(
    value: Any,
    field: str,
    *,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
) -> Decimal:
    result = to_decimal(value, field, InvalidParameters)
    if decimal_places(result) > FACTOR_PLACES:
        raise InvalidParameters(
            field,
            N_("must have at most %(factor_places)s decimal places"),
            factor_places=FACTOR_PLACES,
        )
    if minimum is not None and (result < minimum or (min_exclusive and result == minimum)):
        op = ">" if min_exclusive else ">="
        raise InvalidParameters(
            field, N_("must be %(op)s %(minimum)s"), op=op, minimum=plain(minimum)
        )
    if maximum is not None and (result > maximum or (max_exclusive and result == maximum)):
        op = "<" if max_exclusive else "<="
        raise InvalidParameters(
            field, N_("must be %(op)s %(maximum)s"), op=op, maximum=plain(maximum)
        )
    return result


def _int(value: Any, field: str, *, minimum: int, maximum: int | None = None) -> int:
    result = to_int(value, field, InvalidParameters)
    if result < minimum:
        raise InvalidParameters(field, N_("must be >= %(minimum)s"), minimum=minimum)
    if maximum is not None and result > maximum:
        raise InvalidParameters(field, N_("must be <= %(maximum)s"), maximum=maximum)
    return result


def _optional_int(value: Any, field: str) -> int | None:
    return None if value is None else _int(value, field, minimum=1)


#: The parameters keyed by category; every key must be in the vocabulary.
CATEGORY_FIELDS: tuple[str, ...] = (
    "category_coefficients",
    "category_ceilings_fen",
    "revenue_caps_fen",
    "category_query_ceilings_fen",
)


def _category_map(value: Any, field: str, convert: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidParameters(field, N_("must be an object mapping category to value"))
    out = {}
    for key in sorted(value, key=str):
        if not isinstance(key, str) or not key.strip():
            raise InvalidParameters(field, N_("category names must be non-empty strings"))
        if key not in CATEGORIES:
            raise InvalidParameters(
                f"{field}.{key}",
                N_("unknown category %(key)s; the categories are: %(known)s"),
                key=key,
                known=", ".join(CATEGORIES),
            )
        out[key] = convert(value[key], f"{field}.{key}")
    return _frozen_mapping(out)


_MAX_COEFFICIENT = Decimal(1000)


def _validate(p: PricingParameters) -> None:
    d = Decimal
    _set(p, "version", _int(p.version, "version", minimum=1))
    _set(
        p,
        "reasonable_return",
        _dec(p.reasonable_return, "reasonable_return", minimum=ZERO, maximum=ONE),
    )
    _set(p, "horizon_months", _int(p.horizon_months, "horizon_months", minimum=1, maximum=240))
    _set(p, "expected_licenses", _int(p.expected_licenses, "expected_licenses", minimum=1))

    _set(
        p,
        "quality_floor",
        _dec(p.quality_floor, "quality_floor", minimum=ZERO, maximum=d(100), max_exclusive=True),
    )
    at_floor = _dec(
        p.quality_coefficient_at_floor,
        "quality_coefficient_at_floor",
        minimum=ZERO,
        maximum=_MAX_COEFFICIENT,
        min_exclusive=True,
    )
    at_max = _dec(
        p.quality_coefficient_at_max,
        "quality_coefficient_at_max",
        minimum=at_floor,
        maximum=_MAX_COEFFICIENT,
    )
    _set(p, "quality_coefficient_at_floor", at_floor)
    _set(p, "quality_coefficient_at_max", at_max)
    _set(
        p,
        "quality_exponent",
        _dec(
            p.quality_exponent, "quality_exponent", minimum=ZERO, maximum=d(10), min_exclusive=True
        ),
    )

    def coefficient(value: Any, field: str) -> Decimal:
        return _dec(value, field, minimum=ZERO, maximum=_MAX_COEFFICIENT, min_exclusive=True)

    def positive_fen(value: Any, field: str) -> int:
        return _int(value, field, minimum=1)

    _set(
        p,
        "category_coefficients",
        _category_map(p.category_coefficients, "category_coefficients", coefficient),
    )
    _set(
        p,
        "default_category_coefficient",
        coefficient(p.default_category_coefficient, "default_category_coefficient"),
    )
    _set(
        p,
        "category_ceilings_fen",
        _category_map(p.category_ceilings_fen, "category_ceilings_fen", positive_fen),
    )
    _set(p, "default_ceiling_fen", _optional_int(p.default_ceiling_fen, "default_ceiling_fen"))

    _set(
        p,
        "category_query_ceilings_fen",
        _category_map(p.category_query_ceilings_fen, "category_query_ceilings_fen", positive_fen),
    )
    _set(
        p,
        "default_query_ceiling_fen",
        _optional_int(p.default_query_ceiling_fen, "default_query_ceiling_fen"),
    )
    _set(p, "scope_shares", _validate_shares(p.scope_shares))
    _set(
        p,
        "over_cap_reduction",
        _dec(p.over_cap_reduction, "over_cap_reduction", minimum=ZERO, maximum=ONE),
    )

    _set(
        p,
        "duration_reference_months",
        _int(
            p.duration_reference_months,
            "duration_reference_months",
            minimum=1,
            maximum=MAX_DURATION_MONTHS,
        ),
    )
    _set(p, "quota_reference", _int(p.quota_reference, "quota_reference", minimum=1))
    _set(p, "quota_cap", _int(p.quota_cap, "quota_cap", minimum=1, maximum=MAX_QUERY_QUOTA))
    for name in ("duration_exponent", "quota_exponent"):
        # Strictly concave (exponent < 1) is what rules out splitting arbitrage.
        value = _dec(
            getattr(p, name),
            name,
            minimum=ZERO,
            maximum=ONE,
            min_exclusive=True,
            max_exclusive=True,
        )
        _set(p, name, value)

    _set(p, "purpose_coefficients", _validate_purposes(p.purpose_coefficients))
    _set(p, "bundle_discount_brackets", _validate_brackets(p.bundle_discount_brackets))

    _set(
        p,
        "revenue_caps_fen",
        _category_map(p.revenue_caps_fen, "revenue_caps_fen", positive_fen),
    )
    _set(
        p,
        "default_revenue_cap_fen",
        _optional_int(p.default_revenue_cap_fen, "default_revenue_cap_fen"),
    )


def _validate_shares(value: Any) -> Mapping[str, Decimal]:
    field = "scope_shares"
    if not isinstance(value, Mapping):
        raise InvalidParameters(field, N_("must be an object {columns, duration, quota}"))
    for key in sorted(value, key=str):
        if key not in SCOPE_PARTS:
            raise InvalidParameters(f"{field}.{key}", N_("unknown field"))
    out: dict[str, Decimal] = {}
    for part in SCOPE_PARTS:
        name = f"{field}.{part}"
        if part not in value:
            raise InvalidParameters(name, N_("is required"))
        # Every part must count: a zero share would make that dimension free to split.
        out[part] = _dec(value[part], name, minimum=ZERO, maximum=ONE, min_exclusive=True)
    if sum(out.values()) != ONE:
        raise InvalidParameters(field, N_("the three shares must add up to 1"))
    return _frozen_mapping(out)


def _validate_purposes(value: Any) -> Mapping[Purpose, Decimal]:
    field = "purpose_coefficients"
    if not isinstance(value, Mapping):
        raise InvalidParameters(field, N_("must be an object mapping purpose to coefficient"))
    allowed = {str(p) for p in PURPOSE_ORDER}
    for key in value:
        if str(key) not in allowed:
            raise InvalidParameters(
                f"{field}.{key}",
                N_("unknown purpose; expected one of %(value)s"),
                value=", ".join(sorted(allowed)),
            )
    by_name = {str(k): v for k, v in value.items()}
    out: dict[Purpose, Decimal] = {}
    previous: Decimal | None = None
    for purpose in PURPOSE_ORDER:
        name = f"{field}.{purpose}"
        if str(purpose) not in by_name:
            raise InvalidParameters(name, N_("is required"))
        coefficient = _dec(by_name[str(purpose)], name, minimum=ZERO, maximum=_MAX_COEFFICIENT)
        if purpose is Purpose.public_welfare:
            if coefficient != ZERO:
                raise InvalidParameters(name, N_("must be 0: public-welfare use is free"))
        elif previous is not None and coefficient <= previous:
            raise InvalidParameters(
                name, N_("must be greater than the coefficient of the purpose before it")
            )
        out[purpose] = coefficient
        previous = coefficient
    return _frozen_mapping(out)


def _validate_brackets(value: Any) -> tuple[BundleBracket, ...]:
    field = "bundle_discount_brackets"
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise InvalidParameters(field, N_("must be a list of {from_fen, rate}"))
    out: list[BundleBracket] = []
    for i, raw in enumerate(value):
        name = f"{field}[{i}]"
        if isinstance(raw, BundleBracket):
            from_fen, rate = raw.from_fen, raw.rate
        elif isinstance(raw, Mapping):
            extra = set(raw) - {"from_fen", "rate"}
            if extra:
                raise InvalidParameters(f"{name}.{sorted(extra)[0]}", N_("unknown field"))
            if "from_fen" not in raw or "rate" not in raw:
                raise InvalidParameters(name, N_("must have from_fen and rate"))
            from_fen, rate = raw["from_fen"], raw["rate"]
        else:
            raise InvalidParameters(name, N_("must be {from_fen, rate}"))
        from_fen = _int(from_fen, f"{name}.from_fen", minimum=0)
        # A rate of 1 would make extra spend free; below 1 keeps totals strictly rising.
        rate = _dec(rate, f"{name}.rate", minimum=ZERO, maximum=ONE, max_exclusive=True)
        if out and from_fen <= out[-1].from_fen:
            raise InvalidParameters(
                f"{name}.from_fen", N_("must be greater than the previous bracket's from_fen")
            )
        if out and rate < out[-1].rate:
            # Falling marginal rates would make the discount non-convex, so splitting a bundle
            # into two quotes could be cheaper than buying it whole.
            raise InvalidParameters(
                f"{name}.rate", N_("must be at least the previous bracket's rate (graduated)")
            )
        out.append(BundleBracket(from_fen, rate))
    return tuple(out)
