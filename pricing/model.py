"""The valuation model: dataset + scope + parameters -> explained price in integer fen.

Price of one item (one dataset under one scope), model revision 2::

    base_fen = ceil_0.01((collection + processing + storage_monthly * horizon
                          + desensitization) * (1 + reasonable_return) / expected_licenses)
    K        = base_fen * quality * category * purpose          # a reference license's price
    scope    = s_c * W(columns) + s_d * T(months) + s_q * Q(quota)   # s_c + s_d + s_q = 1
    W        = (weights of the licensed columns, entity key included) / (all weights)
    T        = (months / duration_reference) ** duration_exponent
    Q        = (min(quota, quota_cap) / quota_reference) ** quota_exponent
    raw      = K * scope
    capped   = min(K, Y) * s_c * W  +  min(K * s_d * T, Y * s_d * months / 12)
                                    +  min(K * s_q * Q, Yq * quota)
    amount   = ceil(capped)                                       # integer fen

where ``Y`` is the category's ceiling **per year** and ``Yq`` its ceiling **per query**
(either may be absent: then that part is uncapped). The explanation lists ``base_fen``,
``quality``, ``category``, ``purpose`` and ``scope`` (with its three parts and shares), plus a
``cap`` factor when a ceiling binds (and ``over_cap`` when the category's revenue cap is
reached, see :func:`price_item`); the listed factors multiply exactly to a value whose ceiling
is ``amount``.

Why revision 2. Revision 1 multiplied the scope factors (``columns * duration * quota``) and
capped each license at one per-license ceiling. A product of concave factors is concave in
each dimension alone but not jointly: twelve licenses of (1 month, 84 queries) cost about half
of one (12 months, 1,000 queries), because each piece is cheap in *both* dimensions at once;
and a ceiling per license made 36 and 60 months, or 10,000 and 100,000 queries, cost the same.
Now the scope factor is a weighted **sum** of one concave part per dimension, and each ceiling
caps only its own part at a rate (per year of term, per query), so it scales with the term and
quota it licenses. The price is then subadditive over (columns, term, quota) jointly: every
part is non-decreasing and concave in its own quantity with value 0 at 0 (so
``f(a) + f(b) >= f(a + b)``), or additive in column weights where every piece also carries the
entity key; the minimum of a concave part and a linear ceiling is still concave; a sum of such
parts keeps the property; ``ceil`` preserves it (``sum(ceil(x_i)) >= ceil(sum(x_i))``). So for
any licenses whose columns together include L's, whose terms add up to at least L's and whose
quotas add up to at least L's, the prices add up to at least ``P(L)``; and the price is
monotone in every dimension and in purpose. The cost of this guarantee is inherent: a bound
``P(all columns, t, q) <= P(all, 1, 1) + P(key, t, 1) + P(key, 1, q)`` holds for *any* jointly
subadditive price, so no model can both be free of joint arbitrage and price narrow licenses
near zero; the shares say how the price divides between columns, term and quota.

Every factor but ``scope`` and ``cap`` is quantized to 10 decimal places *before* it is
multiplied; ``scope`` is the exact weighted sum of quantized parts, and the product is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Context, Decimal
from fractions import Fraction
from functools import cached_property
from math import ceil
from types import MappingProxyType
from typing import Any

from market.i18n import N_

from ._num import (
    BASE_QUANTUM,
    CURVE,
    EXACT,
    ONE,
    ZERO,
    ceil_int,
    floor_int,
    plain,
    power_ratio,
    quantize_factor,
    to_decimal,
    to_int,
)
from .errors import InvalidScope, NotPriceable
from .params import (
    CEILING_YEAR_MONTHS,
    MAX_DURATION_MONTHS,
    MAX_QUERY_QUOTA,
    SCOPE_PARTS,
    PricingParameters,
    Purpose,
)

#: Bumped whenever the formula (not the parameters) changes; part of ``model_version``.
MODEL_REV = 2
CURRENCY = "CNY"
MAX_ITEMS_PER_QUOTE = 200

#: Order in which factors are listed (and multiplied) in an explanation.
FACTOR_ORDER: tuple[str, ...] = (
    "base_fen",
    "quality",
    "category",
    "purpose",
    "scope",
    "cap",
    "over_cap",
)
#: Factors of model revision 1, still found in quotes issued before revision 2.
LEGACY_FACTORS: tuple[str, ...] = ("scarcity", "freshness", "columns", "duration", "quota")


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """A dataset's cost figures in integer fen (all >= 0)."""

    collection: int = 0
    processing: int = 0
    storage_monthly: int = 0
    desensitization: int = 0

    def __post_init__(self) -> None:
        for name in ("collection", "processing", "storage_monthly", "desensitization"):
            value = to_int(getattr(self, name), f"costs.{name}", NotPriceable)
            if value < 0:
                raise NotPriceable(f"costs.{name}", N_("must be >= 0 fen"))

    def basis_fen(self, horizon_months: int) -> int:
        """The cost basis before return and amortization."""
        return (
            self.collection
            + self.processing
            + self.storage_monthly * horizon_months
            + self.desensitization
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What the model needs to know about one dataset version.

    ``columns`` maps column name to weight (use 1 when unsure); it must contain
    ``entity_key``. Raises ``NotPriceable`` naming the field when the description is invalid.
    """

    dataset_id: int
    category: str
    quality_score: Decimal | int
    costs: Costs
    columns: Mapping[str, Decimal | int]
    entity_key: str

    @cached_property
    def total_weight(self) -> Decimal:
        # Summed in sorted order (columns are stored sorted), so never input-order dependent.
        total = ZERO
        for weight in self.columns.values():
            total = EXACT.add(total, weight)
        return total

    def __post_init__(self) -> None:
        to_int(self.dataset_id, "dataset_id", NotPriceable)
        if not isinstance(self.category, str) or not self.category:
            raise NotPriceable("category", N_("must be a non-empty string"))
        score = to_decimal(self.quality_score, "quality_score", NotPriceable)
        if not ZERO <= score <= 100:
            raise NotPriceable("quality_score", N_("must be between 0 and 100"))
        object.__setattr__(self, "quality_score", score)
        if not isinstance(self.costs, Costs):
            raise NotPriceable("costs", N_("must be a Costs instance"))
        if not isinstance(self.columns, Mapping) or not self.columns:
            raise NotPriceable("columns", N_("must map at least one column name to a weight"))
        weights: dict[str, Decimal] = {}
        for name in sorted(self.columns):
            if not isinstance(name, str) or not name:
                raise NotPriceable("columns", N_("column names must be non-empty strings"))
            weight = to_decimal(self.columns[name], f"columns.{name}", NotPriceable)
            if weight <= 0:
                raise NotPriceable(f"columns.{name}", N_("weight must be > 0"))
            weights[name] = weight
        object.__setattr__(self, "columns", MappingProxyType(weights))
        if self.entity_key not in weights:
            raise NotPriceable("entity_key", N_("must be one of the dataset's columns"))


@dataclass(frozen=True)
class Scope:
    """The license scope for one item. There is deliberately no exclusivity option.

    ``columns=None`` means all columns; the entity key is always included. Iterables are
    normalized to a frozenset; strings are coerced to :class:`Purpose`.
    Raises ``InvalidScope`` naming the field.
    """

    columns: frozenset[str] | None
    duration_months: int
    purpose: Purpose
    query_quota: int

    def __post_init__(self) -> None:
        cols = self.columns
        if cols is not None:
            if isinstance(cols, (str, bytes)) or not isinstance(cols, Iterable):
                raise InvalidScope("columns", N_("must be a list of column names or null for all"))
            cols = frozenset(cols)
            if not cols:
                raise InvalidScope(
                    "columns", N_("must name at least one column, or be null for all")
                )
            if not all(isinstance(c, str) and c for c in cols):
                raise InvalidScope("columns", N_("column names must be non-empty strings"))
            object.__setattr__(self, "columns", cols)
        months = to_int(self.duration_months, "duration_months", InvalidScope)
        if not 1 <= months <= MAX_DURATION_MONTHS:
            raise InvalidScope(
                "duration_months",
                N_("must be between 1 and %(max_duration_months)s"),
                max_duration_months=MAX_DURATION_MONTHS,
            )
        quota = to_int(self.query_quota, "query_quota", InvalidScope)
        if not 1 <= quota <= MAX_QUERY_QUOTA:
            raise InvalidScope(
                "query_quota",
                N_("must be between 1 and %(max_query_quota)s"),
                max_query_quota=MAX_QUERY_QUOTA,
            )
        object.__setattr__(self, "purpose", parse_purpose(self.purpose))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scope:
        """Build from a request body; asking for exclusivity is refused.

        Raises ``InvalidScope`` for exclusivity, unknown or missing fields and bad values.
        """
        for key in ("exclusive", "exclusivity"):
            if key in data and data[key] not in (None, False):
                raise InvalidScope(
                    key, N_("public data is never licensed exclusively; remove this field")
                )
        known = {"columns", "duration_months", "purpose", "query_quota"}
        for key in sorted(set(data) - known - {"exclusive", "exclusivity"}):
            raise InvalidScope(str(key), N_("unknown field"))
        for key in ("duration_months", "purpose", "query_quota"):
            if key not in data:
                raise InvalidScope(key, N_("is required"))
        return cls(
            columns=data.get("columns"),
            duration_months=data["duration_months"],
            purpose=data["purpose"],
            query_quota=data["query_quota"],
        )

    def licensed_columns(self, dataset: DatasetInfo) -> frozenset[str]:
        """The columns this scope grants on ``dataset``, entity key included."""
        if self.columns is None:
            return frozenset(dataset.columns)
        return self.columns | {dataset.entity_key}

    def covers(self, other: Scope, dataset: DatasetInfo) -> bool:
        """True when this scope grants at least everything ``other`` grants on ``dataset``."""
        return (
            other.licensed_columns(dataset) <= self.licensed_columns(dataset)
            and self.duration_months >= other.duration_months
            and self.query_quota >= other.query_quota
            and self.purpose.rank >= other.purpose.rank
        )


def parse_purpose(value: Any) -> Purpose:
    """Coerce a string to :class:`Purpose`; raises ``InvalidScope`` listing the options."""
    if isinstance(value, Purpose):
        return value
    try:
        return Purpose(value)
    except ValueError:
        options = ", ".join(str(p) for p in Purpose)
        raise InvalidScope("purpose", N_("must be one of %(options)s"), options=options) from None


# -- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemPrice:
    """One dataset's price with its explanation.

    ``factors`` (in :data:`FACTOR_ORDER`, ``base_fen`` first) multiply to a value whose ceiling
    is exactly ``amount``. ``cap`` is present only when a ceiling lowers the amount, and
    ``over_cap`` only when the category's revenue cap was reached. ``scope_parts`` are the
    three parts the ``scope`` factor sums, weighted by ``scope_shares``.
    """

    dataset_id: int
    amount: int
    factors: Mapping[str, Decimal]
    base_fen: Decimal
    #: Amount before the ceilings, in (fractional) fen.
    uncapped_fen: Decimal
    #: The category's price ceiling per year of term (``None``: none).
    ceiling_fen: int | None
    #: True when a ceiling binds on any part of the price.
    capped: bool
    #: Licensed columns, sorted, entity key included.
    columns: tuple[str, ...]
    scope: Scope = field(compare=False)
    #: The category's price ceiling per licensed query (``None``: none).
    query_ceiling_fen: int | None = None
    scope_parts: Mapping[str, Decimal] = field(default_factory=dict)
    scope_shares: Mapping[str, Decimal] = field(default_factory=dict)
    #: True when the category's revenue cap was reached and the reduction applies.
    over_cap: bool = False

    def factor_product(self) -> Decimal:
        """The exact product of the listed factors (``ceil`` of it equals ``amount``)."""
        product = ONE
        for value in self.factors.values():
            product = EXACT.multiply(product, value)
        return product

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{dataset_id, amount, currency, factors: {name: "decimal"}, ...}``."""
        return {
            "dataset_id": self.dataset_id,
            "amount": self.amount,
            "currency": CURRENCY,
            "factors": {name: plain(value) for name, value in self.factors.items()},
            "capped": self.capped,
            "ceiling_fen": self.ceiling_fen,
            "query_ceiling_fen": self.query_ceiling_fen,
            "scope_parts": {
                name: {
                    "share": plain(self.scope_shares[name]),
                    "value": plain(self.scope_parts[name]),
                }
                for name in SCOPE_PARTS
                if name in self.scope_parts
            },
            "over_cap": self.over_cap,
            "columns": list(self.columns),
        }


@dataclass(frozen=True)
class Quote:
    """A priced bundle. ``total = subtotal - bundle_discount``; items are sorted by id."""

    items: tuple[ItemPrice, ...]
    subtotal: int
    bundle_discount: int
    total: int
    model_version: str
    params_version: int
    currency: str = CURRENCY

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "subtotal": self.subtotal,
            "bundle_discount": self.bundle_discount,
            "currency": self.currency,
            "model_version": self.model_version,
            "items": [item.to_dict() for item in self.items],
        }


@dataclass(frozen=True)
class UpgradeItem:
    dataset_id: int
    old_amount: int
    new_amount: int


@dataclass(frozen=True)
class Upgrade:
    """The price of moving from ``old`` to ``new``: ``amount = new.total - old.total >= 0``."""

    amount: int
    old: Quote
    new: Quote
    items: tuple[UpgradeItem, ...]
    model_version: str


# -- the model -------------------------------------------------------------------------------


def model_version(params: PricingParameters) -> str:
    return f"v{MODEL_REV}-p{params.version}"


def base_fen(dataset: DatasetInfo, params: PricingParameters) -> Decimal:
    """Amortized cost basis with return, in fen, rounded *up* to 0.01 fen.

    Computed in Fractions and rounded up so that
    ``expected_licenses * base >= cost * (1 + return)`` holds exactly.
    """
    basis = dataset.costs.basis_fen(params.horizon_months)
    exact = Fraction(basis) * (1 + Fraction(params.reasonable_return)) / params.expected_licenses
    hundredths = ceil(exact * 100)
    return Decimal(hundredths).scaleb(-2, context=EXACT).quantize(BASE_QUANTUM, context=EXACT)


def quality_coefficient(score: Decimal, params: PricingParameters) -> Decimal:
    """Rises from ``quality_coefficient_at_floor`` (score = floor) to ``..._at_max`` (100).

    Raises ``NotPriceable`` when the score is below the floor.
    """
    floor = params.quality_floor
    if score < floor:
        raise NotPriceable(
            "quality_score",
            N_("is below the quality floor %(floor)s; the dataset cannot be priced"),
            floor=plain(floor),
        )
    lo, hi = params.quality_coefficient_at_floor, params.quality_coefficient_at_max
    if lo == hi:
        return quantize_factor(lo)
    position = CURVE.divide(CURVE.subtract(score, floor), CURVE.subtract(Decimal(100), floor))
    if params.quality_exponent != ONE and position != ZERO:
        position = CURVE.power(position, params.quality_exponent)
    return quantize_factor(CURVE.add(lo, CURVE.multiply(CURVE.subtract(hi, lo), position)))


def _columns(dataset: DatasetInfo, scope: Scope) -> tuple[tuple[str, ...], Decimal]:
    if scope.columns is None:
        return tuple(sorted(dataset.columns)), quantize_factor(ONE)
    unknown = sorted(scope.columns - dataset.columns.keys())
    if unknown:
        raise InvalidScope(
            "columns", N_("unknown column(s) for this dataset: %(value)s"), value=", ".join(unknown)
        )
    chosen = tuple(sorted(scope.columns | {dataset.entity_key}))
    selected = ZERO
    for name in chosen:
        selected = EXACT.add(selected, dataset.columns[name])
    return chosen, quantize_factor(CURVE.divide(selected, dataset.total_weight))


def price_item(
    dataset: DatasetInfo, scope: Scope, params: PricingParameters, *, over_cap: bool = False
) -> ItemPrice:
    """Price one dataset under one scope (see the module doc for the formula).

    ``over_cap``: the dataset's category has reached its revenue cap this period, so the
    parameters' ``over_cap_reduction`` applies (listed as the ``over_cap`` factor).
    Raises ``NotPriceable`` (quality below the floor) and ``InvalidScope`` (unknown columns).
    """
    columns, column_part = _columns(dataset, scope)
    quality = quality_coefficient(dataset.quality_score, params)
    base = base_fen(dataset, params)
    quota = min(scope.query_quota, params.quota_cap)
    parts = {
        "columns": column_part,
        "duration": power_ratio(
            scope.duration_months, params.duration_reference_months, params.duration_exponent
        ),
        "quota": power_ratio(quota, params.quota_reference, params.quota_exponent),
    }
    shares = params.scope_shares
    scope_factor = ZERO
    for name in SCOPE_PARTS:
        scope_factor = EXACT.add(scope_factor, EXACT.multiply(shares[name], parts[name]))
    factors: dict[str, Decimal] = {
        "base_fen": base,
        "quality": quality,
        "category": quantize_factor(params.category_coefficient(dataset.category)),
        "purpose": quantize_factor(params.purpose_coefficients[scope.purpose]),
        "scope": scope_factor,
    }
    unit = ONE  # K: the price of a reference license, before ceilings
    for name in ("base_fen", "quality", "category", "purpose"):
        unit = EXACT.multiply(unit, factors[name])
    raw = EXACT.multiply(unit, scope_factor)

    # Each part is capped at its own rate, so the ceiling scales with what is licensed. Exact
    # Decimal products throughout; only a term capped at ``months / 12`` of the annual rate
    # needs a Fraction.
    per_year = params.ceiling_fen(dataset.category)
    per_query = params.query_ceiling_fen(dataset.category)
    s_c, s_d, s_q = (shares[n] for n in SCOPE_PARTS)
    column_unit = unit if per_year is None else min(unit, Decimal(per_year))
    exact_fen = EXACT.multiply(EXACT.multiply(column_unit, s_c), parts["columns"])
    term_fen = EXACT.multiply(unit, parts["duration"])  # times s_d below
    term_capped: Fraction | None = None
    if per_year is not None and EXACT.multiply(term_fen, Decimal(CEILING_YEAR_MONTHS)) > Decimal(
        per_year * scope.duration_months
    ):
        term_capped = Fraction(per_year * scope.duration_months, CEILING_YEAR_MONTHS) * Fraction(
            s_d
        )
    else:
        exact_fen = EXACT.add(exact_fen, EXACT.multiply(term_fen, s_d))
    quota_fen = EXACT.multiply(EXACT.multiply(unit, s_q), parts["quota"])
    if per_query is not None:
        quota_fen = min(quota_fen, Decimal(per_query * scope.query_quota))
    exact_fen = EXACT.add(exact_fen, quota_fen)
    capped_fen = Fraction(exact_fen) + (term_capped or 0)
    capped = capped_fen < Fraction(raw)

    reduction = ONE
    if over_cap:
        reduction = quantize_factor(ONE - params.over_cap_reduction)
    amount = ceil(capped_fen * Fraction(reduction))
    explained = EXACT.multiply(raw, reduction)
    if amount != ceil_int(explained) and explained > 0:
        # Rounded down with enough digits that the product lies in (amount - 1, amount], so
        # ceil() of the explained product is exactly the amount.
        digits = len(str(amount)) + 12
        factors["cap"] = Context(prec=digits, rounding=ROUND_FLOOR).divide(
            Decimal(amount), explained
        )
    if over_cap:
        factors["over_cap"] = reduction
    return ItemPrice(
        dataset_id=dataset.dataset_id,
        amount=amount,
        factors=MappingProxyType(factors),
        base_fen=base,
        uncapped_fen=raw,
        ceiling_fen=per_year,
        capped=capped,
        columns=columns,
        scope=scope,
        query_ceiling_fen=per_query,
        scope_parts=MappingProxyType(parts),
        scope_shares=shares,
        over_cap=over_cap,
    )


def bundle_discount(subtotal: int, params: PricingParameters) -> int:
    """Graduated discount on a subtotal, rounded *down* to a fen (so the total rounds up).

    Each bracket's rate applies only to the part of the subtotal inside that bracket, so the
    total ``subtotal - discount`` rises with the subtotal and is concave in it.
    """
    brackets = params.bundle_discount_brackets
    discount = ZERO
    for i, bracket in enumerate(brackets):
        if subtotal <= bracket.from_fen:
            break
        upper = brackets[i + 1].from_fen if i + 1 < len(brackets) else subtotal
        portion = min(subtotal, upper) - bracket.from_fen
        discount = EXACT.add(discount, EXACT.multiply(bracket.rate, Decimal(portion)))
    return floor_int(discount)


def quote(
    items: Sequence[tuple[DatasetInfo, Scope]],
    params: PricingParameters,
    *,
    over_cap_categories: Iterable[str] = (),
) -> Quote:
    """Price a bundle: items are priced alone, summed, then the graduated discount applies.

    Items whose category is in ``over_cap_categories`` (revenue cap reached this period) get
    the parameters' over-cap reduction. The result does not depend on item order (items come
    back sorted by dataset id).
    Raises ``InvalidScope`` (no items, too many, a dataset twice, bad scope) and
    ``NotPriceable``.
    """
    if not items:
        raise InvalidScope("items", N_("must contain at least one dataset"))
    if len(items) > MAX_ITEMS_PER_QUOTE:
        raise InvalidScope(
            "items",
            N_("at most %(max_items_per_quote)s datasets per quote"),
            max_items_per_quote=MAX_ITEMS_PER_QUOTE,
        )
    seen: set[int] = set()
    for dataset, _scope in items:
        if dataset.dataset_id in seen:
            raise InvalidScope(
                "items",
                N_("dataset %(dataset_id)s appears twice; list its columns in one item"),
                dataset_id=dataset.dataset_id,
            )
        seen.add(dataset.dataset_id)
    ordered = sorted(items, key=lambda pair: pair[0].dataset_id)
    over = frozenset(over_cap_categories)
    priced = tuple(
        price_item(dataset, scope, params, over_cap=dataset.category in over)
        for dataset, scope in ordered
    )
    subtotal = sum(item.amount for item in priced)
    discount = bundle_discount(subtotal, params)
    return Quote(
        items=priced,
        subtotal=subtotal,
        bundle_discount=discount,
        total=subtotal - discount,
        model_version=model_version(params),
        params_version=params.version,
    )


def upgrade_quote(
    old_items: Sequence[tuple[DatasetInfo, Scope]],
    new_items: Sequence[tuple[DatasetInfo, Scope]],
    params: PricingParameters,
    *,
    over_cap_categories: Iterable[str] = (),
) -> Upgrade:
    """Price moving a license from ``old_items`` to ``new_items``: ``P(new) - P(old)``, both
    priced alike (with the same ``over_cap_categories``).

    New datasets may be added; every old item must be covered by the new item for the same
    dataset (columns ⊇, duration ≥, quota ≥, purpose not lower). Raises ``InvalidScope``
    otherwise, and whatever :func:`quote` raises.
    """
    new_by_id = {dataset.dataset_id: (dataset, scope) for dataset, scope in new_items}
    for dataset, old_scope in old_items:
        if dataset.dataset_id not in new_by_id:
            raise InvalidScope(
                "items",
                N_("dataset %(dataset_id)s cannot be dropped in an upgrade"),
                dataset_id=dataset.dataset_id,
            )
        new_dataset, new_scope = new_by_id[dataset.dataset_id]
        if not new_scope.covers(old_scope, new_dataset):
            raise InvalidScope(
                _narrowed_field(old_scope, new_scope, new_dataset),
                N_("an upgrade of dataset %(dataset_id)s cannot narrow the license"),
                dataset_id=dataset.dataset_id,
            )
    over = frozenset(over_cap_categories)
    old = quote(old_items, params, over_cap_categories=over)
    new = quote(new_items, params, over_cap_categories=over)
    old_amounts = {item.dataset_id: item.amount for item in old.items}
    return Upgrade(
        # Monotonicity makes this non-negative already; max() guards against a caller passing
        # a different dataset description for old and new.
        amount=max(0, new.total - old.total),
        old=old,
        new=new,
        items=tuple(
            UpgradeItem(item.dataset_id, old_amounts.get(item.dataset_id, 0), item.amount)
            for item in new.items
        ),
        model_version=model_version(params),
    )


def upgrade_price(
    old_items: Sequence[tuple[DatasetInfo, Scope]],
    new_items: Sequence[tuple[DatasetInfo, Scope]],
    params: PricingParameters,
) -> int:
    """``P(new) - P(old)`` in fen, never negative. Raises as :func:`upgrade_quote`."""
    return upgrade_quote(old_items, new_items, params).amount


def _narrowed_field(old: Scope, new: Scope, dataset: DatasetInfo) -> str:
    if not old.licensed_columns(dataset) <= new.licensed_columns(dataset):
        return "columns"
    if new.duration_months < old.duration_months:
        return "duration_months"
    if new.query_quota < old.query_quota:
        return "query_quota"
    return "purpose"
