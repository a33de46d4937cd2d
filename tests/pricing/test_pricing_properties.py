"""Hypothesis properties of the pricing model (issue properties 1-6, plus bundles/upgrades,
plus the joint-arbitrage attacks of issue #13 item 2).

Parameters are drawn at random too, including small per-year and per-query ceilings, so every
property is also checked while a ceiling binds (property 5).
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from functools import cache
from math import ceil

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pricing import (
    PURPOSE_ORDER,
    BundleBracket,
    Costs,
    DatasetInfo,
    PricingParameters,
    Purpose,
    Scope,
    price_item,
    quote,
    upgrade_price,
)

PROPS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

# -- strategies -------------------------------------------------------------------------------


@cache
def decimals(lo: int, hi: int, places: int = 2) -> st.SearchStrategy[Decimal]:
    """Decimals in [lo, hi] with ``places`` decimals, drawn as exact integers (no floats)."""
    scale = 10**places
    return st.integers(lo * scale, hi * scale).map(lambda n: Decimal(n).scaleb(-places))


@cache
def positive(lo: int, hi: int, places: int = 2) -> st.SearchStrategy[Decimal]:
    """Like :func:`decimals` but never 0 (strategies are cached: building them is costly)."""
    scale = 10**places
    return st.integers(max(1, lo * scale), hi * scale).map(lambda n: Decimal(n).scaleb(-places))


@cache
def exponents() -> st.SearchStrategy[Decimal]:
    # Strictly inside (0, 1), as the parameters require.
    return st.integers(5, 95).map(lambda n: Decimal(n).scaleb(-2))


CATEGORIES = ("tax", "judicial", "environment")
# Ceilings are often small enough to bind, so property 5 is exercised by every property.
CEILING = st.one_of(st.none(), st.integers(1, 10**4), st.integers(1, 10**8))
QUERY_CEILING = st.one_of(st.none(), st.integers(1, 100), st.integers(1, 10**5))


@st.composite
def parameters(draw: st.DrawFn) -> PricingParameters:
    at_floor = draw(positive(1, 3, 1))
    purposes = sorted(draw(st.lists(positive(0, 3, 2), min_size=3, max_size=3, unique=True)))
    rates = sorted(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
    starts = sorted(
        draw(st.lists(st.integers(0, 10**8), min_size=len(rates), max_size=len(rates), unique=True))
    )
    ceiling, query_ceiling = CEILING, QUERY_CEILING
    shares = draw(st.lists(st.integers(1, 98), min_size=2, max_size=2, unique=True).map(sorted))
    shares = [shares[0], shares[1] - shares[0], 100 - shares[1]]
    return PricingParameters(
        version=draw(st.integers(1, 50)),
        reasonable_return=draw(decimals(0, 1, 2)),
        horizon_months=draw(st.integers(1, 60)),
        expected_licenses=draw(st.integers(1, 200)),
        quality_floor=Decimal(draw(st.integers(0, 90))),
        quality_coefficient_at_floor=at_floor,
        quality_coefficient_at_max=at_floor + draw(decimals(0, 2, 1)),
        quality_exponent=draw(positive(0, 3, 1)),
        category_coefficients={c: draw(decimals(1, 3, 1)) for c in CATEGORIES},
        default_category_coefficient=Decimal(1),
        category_ceilings_fen={c: v for c in CATEGORIES if (v := draw(ceiling)) is not None},
        default_ceiling_fen=draw(ceiling),
        category_query_ceilings_fen={
            c: v for c in CATEGORIES if (v := draw(query_ceiling)) is not None
        },
        default_query_ceiling_fen=draw(query_ceiling),
        scope_shares={
            name: Decimal(n).scaleb(-2)
            for name, n in zip(("columns", "duration", "quota"), shares, strict=True)
        },
        over_cap_reduction=draw(decimals(0, 1, 2)),
        duration_reference_months=draw(st.integers(1, 60)),
        duration_exponent=draw(exponents()),
        quota_reference=draw(st.integers(1, 10_000)),
        quota_cap=draw(st.integers(1, 100_000)),
        quota_exponent=draw(exponents()),
        purpose_coefficients={
            Purpose.public_welfare: Decimal(0),
            Purpose.research: purposes[0],
            Purpose.internal_risk_control: purposes[1],
            Purpose.commercial_product: purposes[2],
        },
        bundle_discount_brackets=tuple(
            BundleBracket(s, Decimal(r).scaleb(-2)) for s, r in zip(starts, rates, strict=True)
        ),
    )


COLUMN_NAMES = ("key", "a", "b", "c", "d", "e", "f")


@st.composite
def costs(draw: st.DrawFn) -> Costs:
    amount = st.integers(0, 10**8)
    # Collection is never free in practice; a zero cost basis would make most checks trivial.
    collection = st.integers(10_000, 10**8)
    return Costs(draw(collection), draw(amount), draw(st.integers(0, 10**6)), draw(amount))


@st.composite
def datasets(draw: st.DrawFn, dataset_id: int = 1) -> DatasetInfo:
    names = draw(st.integers(2, len(COLUMN_NAMES)))
    columns = {name: draw(positive(0, 5, 2)) for name in COLUMN_NAMES[:names]}
    return DatasetInfo(
        dataset_id=dataset_id,
        category=draw(st.sampled_from((*CATEGORIES, "utilities"))),
        quality_score=Decimal(draw(st.integers(90, 100))),
        costs=draw(costs()),
        columns=columns,
        entity_key="key",
    )


def column_subsets(dataset: DatasetInfo) -> st.SearchStrategy[frozenset[str] | None]:
    return _column_subsets(tuple(sorted(dataset.columns)))


# Strategies are cached by their arguments: building and validating a strategy costs more than
# drawing from it, and the joint properties draw many.
@cache
def _column_subsets(names: tuple[str, ...]) -> st.SearchStrategy[frozenset[str] | None]:
    return st.one_of(st.none(), subsets(names))


@cache
def subsets(names: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.sets(st.sampled_from(names), min_size=1).map(frozenset)


@cache
def ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


PURPOSES = st.sampled_from(PURPOSE_ORDER)
QUOTAS = st.one_of(st.integers(2, 2_000), st.integers(2, 200_000))


@st.composite
def scopes(draw: st.DrawFn, dataset: DatasetInfo) -> Scope:
    return Scope(
        columns=draw(column_subsets(dataset)),
        duration_months=draw(ints(1, 60)),
        purpose=draw(PURPOSES),
        query_quota=draw(ints(1, 200_000)),
    )


@st.composite
def wider(draw: st.DrawFn, scope: Scope, dataset: DatasetInfo) -> Scope:
    """A scope that covers ``scope`` in every dimension."""
    if scope.columns is None or draw(st.booleans()):
        columns = None if scope.columns is None or draw(st.booleans()) else scope.columns
    else:
        extra = draw(st.sets(st.sampled_from(sorted(dataset.columns))))
        columns = scope.columns | extra
    return Scope(
        columns=columns,
        duration_months=draw(st.integers(scope.duration_months, 60)),
        purpose=draw(st.sampled_from(PURPOSE_ORDER[scope.purpose.rank :])),
        query_quota=draw(st.integers(scope.query_quota, 400_000)),
    )


def with_params(
    inner: st.SearchStrategy[PricingParameters] | None = None,
) -> st.SearchStrategy[PricingParameters]:
    return st.one_of(st.just(PricingParameters.default()), inner or parameters())


SPLIT_DEPTH = 4


def split_cover(draw: st.DrawFn, box: tuple[frozenset[str], int, int], depth: int) -> list:
    """Guillotine-split a (columns, months, quota) box into pieces whose union covers it."""
    columns, months, quota = box
    options = []
    if len(columns) >= 2:
        options.append("columns")
    if months >= 2:
        options.append("months")
    if quota >= 2:
        options.append("quota")
    # The first cut always happens, so every example really is a cover by narrower pieces.
    if depth == 0 or not options or (depth < SPLIT_DEPTH and not draw(st.booleans())):
        return [box]
    dim = draw(st.sampled_from(options))
    if dim == "columns":
        ordered = sorted(columns)
        left = frozenset(
            draw(st.sets(st.sampled_from(ordered), min_size=1, max_size=len(ordered) - 1))
        )
        halves = [(left, months, quota), (columns - left, months, quota)]
    elif dim == "months":
        cut = draw(st.integers(1, months - 1))
        halves = [(columns, cut, quota), (columns, months - cut, quota)]
    else:
        cut = draw(st.integers(1, quota - 1))
        halves = [(columns, months, cut), (columns, months, quota - cut)]
    return [piece for half in halves for piece in split_cover(draw, half, depth - 1)]


# -- 1. monotone in scope ---------------------------------------------------------------------


@PROPS
@given(st.data(), with_params())
def test_price_is_monotone_in_every_scope_dimension(data, params):
    dataset = data.draw(datasets())
    narrow = data.draw(scopes(dataset))
    wide = data.draw(wider(narrow, dataset))
    assert price_item(dataset, narrow, params).amount <= price_item(dataset, wide, params).amount
    assert quote([(dataset, narrow)], params).total <= quote([(dataset, wide)], params).total


@PROPS
@given(st.data(), with_params())
def test_purpose_order_and_public_welfare_is_free(data, params):
    dataset = data.draw(datasets())
    scope = data.draw(scopes(dataset))
    amounts = [
        price_item(
            dataset,
            Scope(scope.columns, scope.duration_months, purpose, scope.query_quota),
            params,
        ).amount
        for purpose in PURPOSE_ORDER
    ]
    assert amounts[0] == 0
    assert amounts == sorted(amounts)


# -- 2. no arbitrage --------------------------------------------------------------------------


@PROPS
@given(st.data(), with_params())
def test_narrower_licenses_covering_a_wider_one_never_cost_less(data, params):
    dataset = data.draw(datasets())
    wide = data.draw(scopes(dataset))
    all_columns = frozenset(dataset.columns)
    wide_columns = all_columns if wide.columns is None else wide.columns
    box = (wide_columns, wide.duration_months, wide.query_quota)
    pieces = split_cover(data.draw, box, SPLIT_DEPTH)
    widen = data.draw(st.integers(0, 3)) == 0
    narrow = []
    for columns, months, quota in pieces:
        # Sometimes a piece is wider than it needs to be, or of a higher purpose.
        piece = Scope(columns, months, wide.purpose, quota)
        narrow.append(data.draw(wider(piece, dataset)) if widen else piece)
    wide_price = price_item(dataset, wide, params).amount
    assert sum(price_item(dataset, s, params).amount for s in narrow) >= wide_price
    # Bought as separate quotes, the bundle discount cannot create arbitrage either.
    assert (
        sum(quote([(dataset, s)], params).total for s in narrow)
        >= quote([(dataset, wide)], params).total
    )


@PROPS
@given(st.data(), with_params())
def test_column_partitions_and_term_splits_never_beat_the_whole(data, params):
    dataset = data.draw(datasets())
    others = sorted(set(dataset.columns) - {dataset.entity_key})
    assume(len(others) >= 2)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(others), max_size=len(others)))
    parts = [frozenset(c for c, k in zip(others, labels, strict=True) if k == i) for i in range(3)]
    parts = [p for p in parts if p]
    assume(len(parts) >= 2)
    months = data.draw(st.integers(2, 60))
    purpose = data.draw(st.sampled_from(PURPOSE_ORDER[1:]))
    quota = data.draw(st.integers(1, 200_000))
    whole = price_item(dataset, Scope(None, months, purpose, quota), params).amount
    by_columns = sum(
        price_item(dataset, Scope(p, months, purpose, quota), params).amount for p in parts
    )
    cut = data.draw(st.integers(1, months - 1))
    by_term = sum(
        price_item(dataset, Scope(None, m, purpose, quota), params).amount
        for m in (cut, months - cut)
    )
    assert by_columns >= whole
    assert by_term >= whole


# -- 3. monotone in quality and cost ----------------------------------------------------------


@PROPS
@given(st.data(), with_params())
def test_price_is_monotone_in_quality_and_each_cost(data, params):
    dataset = data.draw(datasets())
    scope = data.draw(scopes(dataset))
    floor = int(params.quality_floor.to_integral_value(rounding="ROUND_CEILING"))
    q1, q2 = sorted(data.draw(st.lists(st.integers(floor, 100), min_size=2, max_size=2)))
    c = dataset.costs
    bumps = [data.draw(st.integers(0, 10**7)) for _ in range(4)]
    higher_costs = Costs(
        c.collection + bumps[0],
        c.processing + bumps[1],
        c.storage_monthly + bumps[2],
        c.desensitization + bumps[3],
    )

    def variant(score: int, costs: Costs) -> int:
        info = DatasetInfo(
            dataset.dataset_id,
            dataset.category,
            Decimal(score),
            costs,
            dataset.columns,
            dataset.entity_key,
        )
        return price_item(info, scope, params).amount

    assert variant(q1, c) <= variant(q2, c)
    assert variant(q1, c) <= variant(q1, higher_costs)


# -- 4. cost recovery -------------------------------------------------------------------------


@PROPS
@given(
    costs(),
    decimals(0, 1, 2),
    st.integers(1, 120),
    st.integers(1, 500),
    st.integers(1, 60),
    st.integers(1, 10_000),
)
def test_cost_recovery_with_neutral_coefficients(costs_, ret, horizon, licenses, ref_m, ref_q):
    neutral = PricingParameters.default().updated(
        {
            "reasonable_return": str(ret),
            "horizon_months": horizon,
            "expected_licenses": licenses,
            "quality_coefficient_at_floor": "1",
            "quality_coefficient_at_max": "1",
            "category_coefficients": {},
            "default_category_coefficient": "1",
            "category_ceilings_fen": {},
            "default_ceiling_fen": None,
            "category_query_ceilings_fen": {},
            "default_query_ceiling_fen": None,
            "duration_reference_months": ref_m,
            "quota_reference": ref_q,
            "quota_cap": max(ref_q, 100_000),
        }
    )
    dataset = DatasetInfo(7, "utilities", 80, costs_, {"key": 1, "x": 3}, "key")
    full = Scope(None, ref_m, Purpose.commercial_product, ref_q)
    item = price_item(dataset, full, neutral)
    assert set(item.factors.values()) - {item.factors["base_fen"]} == {Decimal(1)}
    cost_with_return = Fraction(costs_.basis_fen(horizon)) * (1 + Fraction(ret))
    assert licenses * item.amount >= cost_with_return
    # ... and the base does not over-recover by more than rounding to 1/100 fen per license.
    assert (
        licenses * item.base_fen - Decimal(licenses) / 100
        <= Decimal(cost_with_return.numerator) / cost_with_return.denominator
    )


# -- 5. caps ----------------------------------------------------------------------------------


@PROPS
@given(st.data(), with_params())
def test_ceilings_scale_with_term_and_quota_and_are_never_exceeded(data, params):
    dataset = data.draw(datasets())
    scope = data.draw(scopes(dataset))
    item = price_item(dataset, scope, params)
    per_year = params.ceiling_fen(dataset.category)
    per_query = params.query_ceiling_fen(dataset.category)
    if per_year is not None and per_query is not None:
        # The whole license never costs more than its term at the annual rate (the column
        # part counts as one year at most) plus its quota at the per-query rate.
        shares = params.scope_shares
        bound = (
            Fraction(per_year)
            * (
                Fraction(shares["columns"])
                + Fraction(shares["duration"]) * scope.duration_months / 12
            )
            + Fraction(per_query) * scope.query_quota
        )
        assert item.amount <= ceil(bound)
    assert item.amount <= ceil(item.uncapped_fen)
    if "cap" in item.factors:
        assert item.capped and item.factors["cap"] < 1


# -- 6. determinism, order independence, integer fen, explanation ------------------------------


@PROPS
@given(st.data(), with_params())
def test_quote_is_deterministic_and_order_independent(data, params):
    infos = [data.draw(datasets(dataset_id=i)) for i in range(1, data.draw(st.integers(1, 5)) + 1)]
    items = [(info, data.draw(scopes(info))) for info in infos]
    shuffled = data.draw(st.permutations(items))
    # Same datasets with their column mappings built in another order.
    rebuilt = [
        (
            DatasetInfo(
                info.dataset_id,
                info.category,
                info.quality_score,
                info.costs,
                dict(reversed(list(info.columns.items()))),
                info.entity_key,
            ),
            Scope(
                None if s.columns is None else list(reversed(sorted(s.columns))),
                s.duration_months,
                s.purpose,
                s.query_quota,
            ),
        )
        for info, s in shuffled
    ]
    first = quote(items, params)
    assert first == quote(shuffled, params) == quote(rebuilt, params) == quote(items, params)
    assert [i.dataset_id for i in first.items] == sorted(i.dataset_id for i in first.items)
    for value in (
        first.total,
        first.subtotal,
        first.bundle_discount,
        *(i.amount for i in first.items),
    ):
        assert type(value) is int and value >= 0
    assert first.total == first.subtotal - first.bundle_discount


@PROPS
@given(st.data(), with_params())
def test_factors_multiply_to_the_amount(data, params):
    dataset = data.draw(datasets())
    item = price_item(dataset, data.draw(scopes(dataset)), params)
    product = item.factor_product()
    assert ceil(product) == item.amount
    assert abs(product - item.amount) <= 1
    assert all(isinstance(v, Decimal) for v in item.factors.values())
    assert item.factors["base_fen"] == item.base_fen


# -- bundles and upgrades ---------------------------------------------------------------------


@PROPS
@given(st.data(), with_params())
def test_adding_an_item_never_lowers_the_total_and_splitting_never_pays(data, params):
    infos = [data.draw(datasets(dataset_id=i)) for i in range(1, data.draw(st.integers(2, 6)) + 1)]
    items = [(info, data.draw(scopes(info))) for info in infos]
    for n in range(1, len(items)):
        assert quote(items[:n], params).total <= quote(items[: n + 1], params).total
    cut = data.draw(st.integers(1, len(items) - 1))
    assert (
        quote(items[:cut], params).total + quote(items[cut:], params).total
        >= quote(items, params).total
    )


@PROPS
@given(st.data(), with_params())
def test_upgrade_costs_the_difference_and_is_never_negative(data, params):
    infos = [data.draw(datasets(dataset_id=i)) for i in range(1, data.draw(st.integers(1, 3)) + 1)]
    old = [(info, data.draw(scopes(info))) for info in infos]
    new = [(info, data.draw(wider(scope, info))) for info, scope in old]
    extra = data.draw(datasets(dataset_id=99))
    if data.draw(st.booleans()):
        new.append((extra, data.draw(scopes(extra))))
    amount = upgrade_price(old, new, params)
    assert amount >= 0
    assert amount == quote(new, params).total - quote(old, params).total


@PROPS
@given(st.data(), with_params())
def test_graduated_discount_keeps_totals_rising_in_the_subtotal(data, params):
    from pricing import bundle_discount

    # Subtotals right around a bracket boundary are where "all units" discounts would bite.
    edges = [b.from_fen for b in params.bundle_discount_brackets] or [0]
    near_edge = st.builds(
        lambda edge, offset: max(0, edge + offset),
        st.sampled_from(edges),
        st.integers(-1_000, 1_000),
    )
    a = data.draw(st.one_of(near_edge, st.integers(0, 10**10)))
    b = a + data.draw(st.one_of(st.integers(0, 2_000), st.integers(0, 10**10)))
    assert a - bundle_discount(a, params) <= b - bundle_discount(b, params)
    assume(a > 0)
    # Concave total: one bundle never costs more than its parts bought separately.
    assert (a - bundle_discount(a, params)) + (b - bundle_discount(b, params)) >= (
        a + b - bundle_discount(a + b, params)
    )


# -- joint arbitrage (issue #13 item 2): 1,000 examples each ----------------------------------

#: The attacks of issue #13 item 2 run 1,000 examples (CI profile: derandomized). A quote takes
#: ~0.04 ms, so each property stays well under a few seconds.
JOINT = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _pooled_parameters(seed: int) -> PricingParameters:
    """A parameter set drawn from ``random.Random(seed)``: the joint properties pick from a fixed
    pool, so their 1,000 examples go to scopes and splits (and curve powers are cached),
    while the pool still varies every parameter the joint properties depend on."""
    rng = random.Random(seed)

    def dec(lo: int, hi: int, places: int = 2) -> Decimal:
        return Decimal(rng.randint(lo, hi)).scaleb(-places)

    def maybe(lo: int, hi: int) -> int | None:
        return None if rng.random() < 0.25 else rng.randint(lo, hi)

    cuts = sorted(rng.sample(range(1, 100), 2))
    purposes = sorted(rng.sample(range(1, 300), 3))
    return PricingParameters.default().updated(
        {
            "version": seed + 1,
            "reasonable_return": str(dec(0, 100)),
            "expected_licenses": rng.randint(1, 200),
            "quality_exponent": str(dec(10, 300)),
            "category_ceilings_fen": {
                c: v for c in CATEGORIES if (v := maybe(1, 10 ** rng.randint(3, 8))) is not None
            },
            "default_ceiling_fen": maybe(1, 10**8),
            "category_query_ceilings_fen": {
                c: v for c in CATEGORIES if (v := maybe(1, 10 ** rng.randint(1, 5))) is not None
            },
            "default_query_ceiling_fen": maybe(1, 10**4),
            "scope_shares": {
                "columns": str(dec(cuts[0], cuts[0])),
                "duration": str(dec(cuts[1] - cuts[0], cuts[1] - cuts[0])),
                "quota": str(dec(100 - cuts[1], 100 - cuts[1])),
            },
            "duration_reference_months": rng.randint(1, 60),
            "duration_exponent": str(dec(5, 95)),
            "quota_reference": rng.randint(1, 10_000),
            "quota_cap": rng.randint(1, 100_000),
            "quota_exponent": str(dec(5, 95)),
            "purpose_coefficients": {
                "public_welfare": "0",
                "research": str(dec(purposes[0], purposes[0])),
                "internal_risk_control": str(dec(purposes[1], purposes[1])),
                "commercial_product": str(dec(purposes[2], purposes[2])),
            },
            "over_cap_reduction": str(dec(0, 100)),
        }
    )


PARAMETER_POOL = (PricingParameters.default(), *(_pooled_parameters(s) for s in range(40)))
pooled = st.sampled_from(PARAMETER_POOL)


def covers(pieces: list[Scope], whole: Scope, dataset: DatasetInfo) -> bool:
    """The issue's notion of cover: union of columns ⊇, sum of terms ≥, sum of quotas ≥."""
    columns = frozenset().union(*(p.licensed_columns(dataset) for p in pieces))
    return (
        whole.licensed_columns(dataset) <= columns
        and sum(p.duration_months for p in pieces) >= whole.duration_months
        and sum(p.query_quota for p in pieces) >= whole.query_quota
    )


@cache
def _cuts(total: int, k: int) -> st.SearchStrategy[set[int]]:
    return st.sets(st.integers(1, total - 1), min_size=k - 1, max_size=k - 1)


def split_int(draw: st.DrawFn, total: int, k: int) -> list[int]:
    """``total`` cut into ``k`` positive parts (``k <= total``)."""
    cuts = sorted(draw(_cuts(total, k)))
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


@JOINT
@given(st.data(), pooled)
def test_joint_splits_into_k_pieces_never_cost_less(data, params):
    """Term, quota and columns split *together* into k licenses (12 × (1 month, 84 queries)
    against (12 months, 1,000 queries) is the issue's example)."""
    dataset = data.draw(datasets())
    purpose = data.draw(PURPOSES)
    months = data.draw(ints(2, 60))
    quota = data.draw(QUOTAS)
    k = data.draw(ints(2, min(12, months, quota)))
    names = sorted(dataset.columns)
    whole_columns = data.draw(_column_subsets(tuple(names)))
    whole = Scope(whole_columns, months, purpose, quota)
    wanted = sorted(whole.licensed_columns(dataset))
    # Each column of the whole goes to at least one piece; pieces may carry others too.
    owner = {c: data.draw(ints(0, k - 1)) for c in wanted}
    terms, quotas = split_int(data.draw, months, k), split_int(data.draw, quota, k)
    pieces = [
        Scope(
            frozenset(c for c in wanted if owner[c] == i) or None
            if data.draw(ints(0, 9)) == 0
            else frozenset(c for c in wanted if owner[c] == i) or frozenset({dataset.entity_key}),
            terms[i],
            purpose,
            quotas[i],
        )
        for i in range(k)
    ]
    assert covers(pieces, whole, dataset)
    whole_price = price_item(dataset, whole, params).amount
    assert sum(price_item(dataset, p, params).amount for p in pieces) >= whole_price
    over = price_item(dataset, whole, params, over_cap=True).amount
    assert sum(price_item(dataset, p, params, over_cap=True).amount for p in pieces) >= over
    assert (
        sum(quote([(dataset, p)], params).total for p in pieces)
        >= quote([(dataset, whole)], params).total
    )


@JOINT
@given(st.data(), pooled)
def test_two_licenses_that_together_cover_one_never_cost_less(data, params):
    """Any pair (A, B) whose columns, terms and quotas together cover L: P(A) + P(B) ≥ P(L),
    e.g. all columns for one month and one query plus the entity key for the rest."""
    dataset = data.draw(datasets())
    purpose = data.draw(PURPOSES)
    a = data.draw(scopes(dataset))
    b = data.draw(scopes(dataset))
    a = Scope(a.columns, a.duration_months, purpose, a.query_quota)
    b = Scope(b.columns, b.duration_months, purpose, b.query_quota)
    union = a.licensed_columns(dataset) | b.licensed_columns(dataset)
    sub = data.draw(subsets(tuple(sorted(union))))
    whole = Scope(
        frozenset(sub),
        data.draw(ints(1, min(60, a.duration_months + b.duration_months))),
        purpose,
        data.draw(ints(1, a.query_quota + b.query_quota)),
    )
    assert covers([a, b], whole, dataset)
    pa, pb = price_item(dataset, a, params), price_item(dataset, b, params)
    assert pa.amount + pb.amount >= price_item(dataset, whole, params).amount


@JOINT
@given(st.data(), pooled)
def test_price_is_monotone_and_ceilings_scale_with_term_and_quota(data, params):
    dataset = data.draw(datasets())
    narrow = data.draw(scopes(dataset))
    wide = data.draw(wider(narrow, dataset))
    assert price_item(dataset, narrow, params).amount <= price_item(dataset, wide, params).amount
    # Longer terms and larger quotas cost strictly more whenever the unit price is positive
    # and the quota is below the quota cap: a ceiling no longer flattens them.
    item = price_item(dataset, narrow, params)
    if item.amount > 0 and narrow.duration_months <= 30:
        longer = Scope(
            narrow.columns, narrow.duration_months * 2, narrow.purpose, narrow.query_quota
        )
        assert price_item(dataset, longer, params).uncapped_fen > item.uncapped_fen


def test_the_issue_examples_no_longer_pay():
    """The figures from issue #13: 12 × (1 month, 84 queries) and 2 × (6 months, 500 queries)
    against (12 months, 1,000 queries); 36 against 60 months; 10,000 against 100,000 queries."""
    params = PricingParameters.default()
    tax = DatasetInfo(1, "tax", 95, Costs(200_000_000), {"uscc": 1, "a": 2, "b": 3}, "uscc")

    def price(months: int, quota: int) -> int:
        return price_item(tax, Scope(None, months, "commercial_product", quota), params).amount

    whole = price(12, 1_000)
    assert 12 * price(1, 84) >= whole
    assert 2 * price(6, 500) >= whole
    assert price(60, 1_000) > price(36, 1_000)
    assert price(12, 100_000) > price(12, 10_000)
