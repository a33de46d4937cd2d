"""Hypothesis properties of the pricing model (issue properties 1-6, plus bundles/upgrades).

Parameters are drawn at random too, including small category ceilings, so every property is
also checked while the ceiling binds (property 5).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
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


def decimals(lo: int, hi: int, places: int = 2) -> st.SearchStrategy[Decimal]:
    """Decimals in [lo, hi] with ``places`` decimals, drawn as exact integers (no floats)."""
    scale = 10**places
    return st.integers(lo * scale, hi * scale).map(lambda n: Decimal(n).scaleb(-places))


def exponents() -> st.SearchStrategy[Decimal]:
    # Strictly inside (0, 1), as the parameters require.
    return st.integers(5, 95).map(lambda n: Decimal(n).scaleb(-2))


CATEGORIES = ("tax", "court", "environment")


@st.composite
def parameters(draw: st.DrawFn) -> PricingParameters:
    at_floor = draw(decimals(1, 3, 1).filter(lambda d: d > 0))
    purposes = sorted(
        draw(
            st.lists(decimals(0, 3, 2).filter(lambda d: d > 0), min_size=3, max_size=3, unique=True)
        )
    )
    rates = sorted(draw(st.lists(st.integers(0, 40), min_size=0, max_size=3)))
    starts = sorted(
        draw(st.lists(st.integers(0, 10**8), min_size=len(rates), max_size=len(rates), unique=True))
    )
    scarcity_min = draw(decimals(0, 1, 1).filter(lambda d: d > 0))
    freshness_min = draw(decimals(0, 1, 1).filter(lambda d: d > 0))
    # Ceilings are often small enough to bind, so property 5 is exercised by every property.
    ceiling = st.one_of(st.none(), st.integers(1, 10**4), st.integers(1, 10**8))
    return PricingParameters(
        version=draw(st.integers(1, 50)),
        reasonable_return=draw(decimals(0, 1, 2)),
        horizon_months=draw(st.integers(1, 60)),
        expected_licenses=draw(st.integers(1, 200)),
        quality_floor=Decimal(draw(st.integers(0, 90))),
        quality_coefficient_at_floor=at_floor,
        quality_coefficient_at_max=at_floor + draw(decimals(0, 2, 1)),
        quality_exponent=draw(decimals(0, 3, 1).filter(lambda d: d > 0)),
        category_coefficients={c: draw(decimals(1, 3, 1)) for c in CATEGORIES},
        default_category_coefficient=Decimal(1),
        category_ceilings_fen={c: v for c in CATEGORIES if (v := draw(ceiling)) is not None},
        default_ceiling_fen=draw(ceiling),
        scarcity_min=scarcity_min,
        scarcity_max=scarcity_min + draw(decimals(0, 1, 1)),
        freshness_min=freshness_min,
        freshness_max=freshness_min + draw(decimals(0, 1, 1)),
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
    columns = {
        name: draw(decimals(0, 5, 2).filter(lambda d: d > 0)) for name in COLUMN_NAMES[:names]
    }
    return DatasetInfo(
        dataset_id=dataset_id,
        category=draw(st.sampled_from((*CATEGORIES, "other"))),
        quality_score=Decimal(draw(st.integers(90, 100))),
        costs=draw(costs()),
        columns=columns,
        entity_key="key",
        scarcity=draw(decimals(0, 3, 1).filter(lambda d: d > 0)),
        freshness=draw(decimals(0, 3, 1).filter(lambda d: d > 0)),
    )


def column_subsets(dataset: DatasetInfo) -> st.SearchStrategy[frozenset[str] | None]:
    names = sorted(dataset.columns)
    return st.one_of(st.none(), st.sets(st.sampled_from(names), min_size=1).map(frozenset))


@st.composite
def scopes(draw: st.DrawFn, dataset: DatasetInfo) -> Scope:
    return Scope(
        columns=draw(column_subsets(dataset)),
        duration_months=draw(st.integers(1, 60)),
        purpose=draw(st.sampled_from(PURPOSE_ORDER)),
        query_quota=draw(st.integers(1, 200_000)),
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
            dataset.scarcity,
            dataset.freshness,
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
            "duration_reference_months": ref_m,
            "quota_reference": ref_q,
            "quota_cap": max(ref_q, 100_000),
        }
    )
    dataset = DatasetInfo(7, "any", 80, costs_, {"key": 1, "x": 3}, "key")
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
def test_ceiling_is_never_exceeded_and_cap_factor_appears_when_it_binds(data, params):
    dataset = data.draw(datasets())
    scope = data.draw(scopes(dataset))
    item = price_item(dataset, scope, params)
    ceiling = params.ceiling_fen(dataset.category)
    if ceiling is not None:
        assert item.amount <= ceiling
    assert item.capped == ("cap" in item.factors)
    if item.capped:
        assert item.amount == ceiling and item.uncapped_fen > ceiling


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
                info.scarcity,
                info.freshness,
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
