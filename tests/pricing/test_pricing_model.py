"""Worked examples of the pricing model, table-driven.

Expected amounts are derived by hand in the comments so a reader can check the formula
(model revision 2): ``K = base × quality × category × purpose``,
``scope = 0.4 × columns + 0.3 × duration + 0.3 × quota`` (the default shares), and
``amount = ceil(K × scope)`` unless a per-year or per-query ceiling caps a part.
"""

from __future__ import annotations

from decimal import Decimal
from math import ceil

import pytest

from pricing import (
    FACTOR_ORDER,
    Costs,
    DatasetInfo,
    InvalidScope,
    NotPriceable,
    PricingParameters,
    Purpose,
    Scope,
    base_fen,
    bundle_discount,
    price_item,
    quality_coefficient,
    quote,
    upgrade_price,
    upgrade_quote,
)
from pricing.model import MAX_ITEMS_PER_QUOTE

D = Decimal
C = Purpose.commercial_product

DEFAULT = PricingParameters.default()
#: Square-root curves make hand-checkable factors: (3/12) ** 0.5 == 0.5.
SQRT = DEFAULT.updated({"duration_exponent": "0.5", "quota_exponent": "0.5"})

# Costs: (5,000,000 + 2,000,000 + 100,000 × 36 + 1,000,000) × 1.08 / 20 = 626,400.00 fen.
TAX = DatasetInfo(
    dataset_id=1,
    category="tax",
    quality_score=85,  # 0.6 + 0.6 × (85 - 60) / 40 = 0.975
    costs=Costs(5_000_000, 2_000_000, 100_000, 1_000_000),
    columns={"uscc": 1, "revenue": 1, "tax_paid": 1, "region": 1},
    entity_key="uscc",
)
# 626,400 × 0.975 × 1.5 (tax) = 916,110 fen for the full reference scope.
FULL = 916_110
#: Low tax ceilings that bind: ¥6,000 per year, ¥1 per query.
LOW = DEFAULT.updated(
    {"category_ceilings_fen": {"tax": 600_000}, "category_query_ceilings_fen": {"tax": 100}}
)


def scope(columns=None, months=12, purpose=C, quota=1_000) -> Scope:
    return Scope(columns, months, purpose, quota)


def other(dataset_id: int, collection: int = 1_000_000, category: str = "utilities") -> DatasetInfo:
    return DatasetInfo(dataset_id, category, 100, Costs(collection), {"k": 1, "v": 1}, "k")


@pytest.mark.parametrize(
    ("params", "the_scope", "expected"),
    [
        pytest.param(DEFAULT, scope(), FULL, id="reference-scope"),
        pytest.param(DEFAULT, scope(purpose=Purpose.public_welfare), 0, id="public-welfare-free"),
        # 916,110 × 0.3 = 274,833
        pytest.param(DEFAULT, scope(purpose=Purpose.research), 274_833, id="research-0.3"),
        # 916,110 × 0.7 = 641,277
        pytest.param(
            DEFAULT, scope(purpose=Purpose.internal_risk_control), 641_277, id="risk-control-0.7"
        ),
        # Two of four equal-weight columns (entity key included): 0.4 × 0.5 + 0.3 + 0.3 = 0.8.
        pytest.param(DEFAULT, scope(columns={"revenue"}), 732_888, id="key-plus-one-column"),
        pytest.param(
            DEFAULT, scope(columns={"revenue", "uscc"}), 732_888, id="key-listed-explicitly"
        ),
        pytest.param(
            DEFAULT,
            scope(columns={"uscc", "revenue", "tax_paid", "region"}),
            FULL,
            id="all-columns-listed",
        ),
        # (3 / 12) ** 0.5 = 0.5: 0.4 + 0.3 × 0.5 + 0.3 = 0.85 -> 778,693.5
        pytest.param(SQRT, scope(months=3), 778_694, id="quarter-term-sqrt"),
        # (48 / 12) ** 0.5 = 2: 0.4 + 0.6 + 0.3 = 1.3 -> 1,190,943
        pytest.param(SQRT, scope(months=48), 1_190_943, id="four-years-sqrt"),
        pytest.param(SQRT, scope(quota=250), 778_694, id="quarter-quota-sqrt"),
        # Quota part stops rising at quota_cap (100,000): sqrt(100) = 10: 0.4 + 0.3 + 3 = 3.7.
        pytest.param(SQRT, scope(quota=100_000), 3_389_607, id="quota-at-cap"),
        pytest.param(SQRT, scope(quota=10**9), 3_389_607, id="quota-above-cap"),
        # LOW: columns 0.4 × min(916,110, 600,000) = 240,000; term min(274,833, 0.3 × 600,000
        # × 12/12 = 180,000); quota min(274,833, 100 × 1,000 = 100,000): 520,000.
        pytest.param(LOW, scope(), 520_000, id="both-ceilings-bind"),
        # 60 months: term min(274,833 × 5 ** 0.8 = 995,967.4, 0.3 × 600,000 × 5 = 900,000).
        pytest.param(LOW, scope(months=60), 1_240_000, id="per-year-ceiling-scales-60"),
        # 36 months: term min(274,833 × 3 ** 0.8 = 661,869.6, 540,000): 880,000.
        pytest.param(LOW, scope(months=36), 880_000, id="per-year-ceiling-scales-36"),
        # 10,000 queries: quota min(274,833 × 10 ** 0.5 = 869,098.3, 100 × 10,000): the
        # per-query ceiling grows with the quota, so it no longer binds.
        pytest.param(LOW, scope(quota=10_000), 1_289_099, id="per-query-ceiling-scales"),
    ],
)
def test_worked_examples(params, the_scope, expected):
    item = price_item(TAX, the_scope, params)
    assert item.amount == expected
    assert ceil(item.factor_product()) == item.amount
    assert list(item.factors) == [f for f in FACTOR_ORDER if f in item.factors]


def test_reference_factors_are_explained():
    item = price_item(TAX, scope(), DEFAULT)
    assert dict(item.factors) == {
        "base_fen": D("626400.00"),
        "quality": D("0.975"),
        "category": D("1.5"),
        "purpose": D(1),
        "scope": D(1),
    }
    assert item.to_dict()["scope_parts"] == {
        "columns": {"share": "0.4", "value": "1"},
        "duration": {"share": "0.3", "value": "1"},
        "quota": {"share": "0.3", "value": "1"},
    }
    assert item.to_dict()["factors"]["base_fen"] == "626400"
    assert item.columns == ("region", "revenue", "tax_paid", "uscc")
    assert not item.capped


def test_cap_factor_reproduces_the_capped_amount():
    item = price_item(TAX, scope(months=60), LOW)
    assert item.capped and item.ceiling_fen == 600_000 and item.query_ceiling_fen == 100
    assert D(1_239_999) < item.factor_product() <= D(1_240_000)
    assert item.factors["cap"] < 1


def test_over_cap_reduction_is_an_explained_factor():
    item = price_item(TAX, scope(), DEFAULT, over_cap=True)
    # The default reduction is 0.5: 916,110 × 0.5.
    assert item.amount == 458_055 and item.factors["over_cap"] == D("0.5") and item.over_cap
    assert ceil(item.factor_product()) == item.amount
    capped = price_item(TAX, scope(months=60), LOW, over_cap=True)
    assert capped.amount == 620_000 and ceil(capped.factor_product()) == 620_000
    result = quote([(TAX, scope()), (other(2), scope())], DEFAULT, over_cap_categories={"tax"})
    assert [i.over_cap for i in result.items] == [True, False]


@pytest.mark.parametrize(
    ("narrow", "wide"),
    [
        pytest.param([scope(months=6)] * 2, scope(months=12), id="two-6-months-vs-12"),
        pytest.param([scope(months=1)] * 12, scope(months=12), id="twelve-1-month-vs-12"),
        pytest.param(
            [scope(columns={"revenue"}), scope(columns={"tax_paid", "region"})],
            scope(),
            id="column-halves-vs-all",
        ),
        pytest.param([scope(quota=500)] * 2, scope(quota=1_000), id="quota-halves"),
        pytest.param(
            [
                scope(columns={"revenue", "tax_paid"}, months=12),
                scope(columns={"region"}, months=6),
                scope(columns={"region"}, months=6),
            ],
            scope(),
            id="mixed-columns-and-term",
        ),
        pytest.param(
            [scope(months=6, quota=500)] * 4,
            scope(months=12, quota=1_000),
            id="mixed-term-and-quota",
        ),
        pytest.param(
            [scope(months=60, quota=10**6)] * 2,
            scope(months=60, quota=2 * 10**6),
            id="both-capped",
        ),
    ],
)
@pytest.mark.parametrize("params", [DEFAULT, SQRT], ids=["default", "sqrt"])
def test_no_arbitrage_examples(params, narrow, wide):
    total_narrow = sum(price_item(TAX, s, params).amount for s in narrow)
    assert total_narrow >= price_item(TAX, wide, params).amount


def test_two_six_month_licenses_cost_strictly_more_than_one_year():
    six = price_item(TAX, scope(months=6), DEFAULT).amount
    assert 2 * six > price_item(TAX, scope(months=12), DEFAULT).amount > six


# -- base value, quality --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        (Costs(), D("0.00")),
        (Costs(collection=20), D("1.08")),
        # 1 × 1.08 / 20 = 0.054 -> rounded up to 0.06 fen.
        (Costs(collection=1), D("0.06")),
        (Costs(storage_monthly=10), D("19.44")),  # 10 × 36 × 1.08 / 20
    ],
)
def test_base_is_amortized_cost_with_return_rounded_up(costs, expected):
    dataset = DatasetInfo(9, "x", 100, costs, {"k": 1}, "k")
    assert base_fen(dataset, DEFAULT) == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [(60, D("0.6")), (70, D("0.75")), (80, D("0.9")), (100, D("1.2")), (D("99.5"), D("1.1925"))],
)
def test_quality_coefficient_rises_linearly_from_the_floor(score, expected):
    assert quality_coefficient(D(score), DEFAULT) == expected


def test_quality_below_floor_is_not_priceable():
    low = DatasetInfo(3, "tax", 59, TAX.costs, TAX.columns, "uscc")
    with pytest.raises(NotPriceable) as err:
        price_item(low, scope(), DEFAULT)
    assert err.value.field == "quality_score"
    assert "floor" in err.value.message


def test_a_category_without_its_own_values_uses_the_explicit_defaults():
    params = DEFAULT.updated(
        {"category_coefficients": {"tax": "1.5"}, "default_category_coefficient": "0.8"}
    )
    item = price_item(other(5), scope(), params)
    assert item.factors["category"] == D("0.8")
    assert item.ceiling_fen == DEFAULT.default_ceiling_fen
    assert item.query_ceiling_fen == DEFAULT.default_query_ceiling_fen


def test_scarcity_and_freshness_are_gone_and_old_parameter_versions_still_load():
    stored = {
        **DEFAULT.to_dict(),
        "scarcity_min": "0.8",
        "scarcity_max": "1.5",
        "freshness_min": "0.8",
        "freshness_max": "1.2",
    }
    assert PricingParameters.from_dict(stored) == DEFAULT
    assert not {"scarcity", "freshness"} & set(price_item(TAX, scope(), DEFAULT).factors)


# -- bundles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtotal", "discount"),
    [
        (0, 0),
        (999_999, 0),
        (1_000_000, 0),
        (1_000_100, 3),  # 3% of the 100 fen above 1,000,000
        (5_000_000, 120_000),  # 3% of 4,000,000
        (6_000_000, 180_000),  # + 6% of 1,000,000
        (30_000_000, 2_020_000),  # 120,000 + 6% × 15,000,000 + 10% × 10,000,000
        (1_000_033, 0),  # 0.99 fen: the discount rounds down so the total rounds up
    ],
)
def test_graduated_bundle_discount(subtotal, discount):
    assert bundle_discount(subtotal, DEFAULT) == discount


def test_bundle_sums_items_and_discounts_only_the_part_above_each_bracket():
    items = [(other(i, collection=20_000_000), scope()) for i in (3, 1, 2)]
    result = quote(items, DEFAULT)
    # Each: 20,000,000 × 1.08 / 20 × 1.2 (quality 100) = 1,296,000 fen.
    assert [i.amount for i in result.items] == [1_296_000] * 3
    assert result.subtotal == 3_888_000
    assert result.bundle_discount == 86_640  # 3% of 2,888,000
    assert result.total == 3_801_360
    assert [i.dataset_id for i in result.items] == [1, 2, 3]
    assert result.model_version == "v2-p1"
    assert result.to_dict()["currency"] == "CNY"


def test_adding_an_item_across_a_bracket_edge_never_lowers_the_total():
    base = [(other(1, collection=15_400_000), scope())]  # 997,920 fen: just under the edge
    more = [*base, (other(2, collection=100_000), scope())]
    assert quote(base, DEFAULT).total < quote(more, DEFAULT).total


def test_public_welfare_quote_totals_zero():
    items = [
        (TAX, scope(purpose=Purpose.public_welfare)),
        (other(2), scope(purpose="public_welfare")),
    ]
    result = quote(items, DEFAULT)
    assert result.total == 0
    assert all(item.factors["purpose"] == 0 for item in result.items)


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([(TAX, scope()), (TAX, scope(columns={"region"}))], "items"),
        ([(TAX, scope(columns={"nope"}))], "columns"),
        ([(other(i), scope()) for i in range(MAX_ITEMS_PER_QUOTE + 1)], "items"),
    ],
    ids=["empty", "duplicate-dataset", "unknown-column", "too-many"],
)
def test_invalid_quotes_name_the_field(items, field):
    with pytest.raises(InvalidScope) as err:
        quote(items, DEFAULT)
    assert err.value.field == field


# -- upgrades ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new",
    [
        scope(months=24),
        scope(columns={"revenue", "region"}),
        scope(quota=5_000),
        scope(months=18, columns={"revenue", "tax_paid"}, quota=2_000),
    ],
)
def test_upgrade_costs_new_minus_old(new):
    old = [(TAX, scope(columns={"revenue"}))]
    expected = quote([(TAX, new)], DEFAULT).total - quote(old, DEFAULT).total
    assert upgrade_price(old, [(TAX, new)], DEFAULT) == expected > 0


def test_upgrade_to_the_same_scope_is_free_and_can_add_datasets():
    old = [(TAX, scope())]
    assert upgrade_price(old, old, DEFAULT) == 0
    result = upgrade_quote(old, [*old, (other(2), scope())], DEFAULT)
    added = price_item(other(2), scope(), DEFAULT).amount
    assert added == 64_800
    # 916,110 + 64,800 = 980,910 stays under the 1,000,000 fen bracket: no discount.
    assert result.amount == added
    assert [(i.dataset_id, i.old_amount) for i in result.items] == [(1, FULL), (2, 0)]


@pytest.mark.parametrize(
    ("new_items", "field"),
    [
        ([(TAX, scope(months=6))], "duration_months"),
        ([(TAX, scope(columns={"region"}))], "columns"),
        ([(TAX, scope(quota=10))], "query_quota"),
        ([(TAX, scope(purpose=Purpose.research))], "purpose"),
        ([(other(2), scope())], "items"),
    ],
)
def test_upgrade_cannot_narrow(new_items, field):
    old = [(TAX, scope(columns={"revenue"}))]
    with pytest.raises(InvalidScope) as err:
        upgrade_price(old, new_items, DEFAULT)
    assert err.value.field == field


# -- scope and dataset validation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"duration_months": 12, "purpose": "research", "query_quota": 1, "exclusive": True},
            "exclusive",
        ),
        (
            {"duration_months": 12, "purpose": "research", "query_quota": 1, "exclusivity": "yes"},
            "exclusivity",
        ),
        ({"duration_months": 0, "purpose": "research", "query_quota": 1}, "duration_months"),
        ({"duration_months": 61, "purpose": "research", "query_quota": 1}, "duration_months"),
        ({"duration_months": 12.0, "purpose": "research", "query_quota": 1}, "duration_months"),
        ({"duration_months": True, "purpose": "research", "query_quota": 1}, "duration_months"),
        ({"duration_months": 12, "purpose": "resale", "query_quota": 1}, "purpose"),
        ({"duration_months": 12, "purpose": "research", "query_quota": 0}, "query_quota"),
        ({"duration_months": 12, "purpose": "research"}, "query_quota"),
        (
            {"duration_months": 12, "purpose": "research", "query_quota": 1, "columns": []},
            "columns",
        ),
        (
            {"duration_months": 12, "purpose": "research", "query_quota": 1, "columns": "uscc"},
            "columns",
        ),
        (
            {"duration_months": 12, "purpose": "research", "query_quota": 1, "discount": 1},
            "discount",
        ),
    ],
)
def test_scope_from_dict_rejects_with_field(data, field):
    with pytest.raises(InvalidScope) as err:
        Scope.from_dict(data)
    assert err.value.field == field
    assert err.value.to_errors() == {field: [err.value.text]}


def test_scope_from_dict_accepts_a_request_and_an_explicit_non_exclusive_flag():
    parsed = Scope.from_dict(
        {
            "columns": ["a", "b"],
            "duration_months": 6,
            "purpose": "research",
            "query_quota": 10,
            "exclusive": False,
        }
    )
    assert parsed == Scope(frozenset({"a", "b"}), 6, Purpose.research, 10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quality_score": 101}, "quality_score"),
        ({"quality_score": 80.5}, "quality_score"),
        ({"columns": {}}, "columns"),
        ({"columns": {"k": 0}}, "columns.k"),
        ({"columns": {"v": 1}}, "entity_key"),
        ({"category": ""}, "category"),
    ],
)
def test_dataset_validation_names_the_field(kwargs, field):
    fields = {
        "dataset_id": 1,
        "category": "x",
        "quality_score": 90,
        "costs": Costs(1),
        "columns": {"k": 1},
        "entity_key": "k",
    }
    with pytest.raises(NotPriceable) as err:
        DatasetInfo(**(fields | kwargs))
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"collection": -1}, "costs.collection"),
        ({"processing": 1.5}, "costs.processing"),
        ({"storage_monthly": D(3)}, "costs.storage_monthly"),
        ({"desensitization": True}, "costs.desensitization"),
    ],
)
def test_costs_are_non_negative_integer_fen(kwargs, field):
    with pytest.raises(NotPriceable) as err:
        Costs(**kwargs)
    assert err.value.field == field


def test_pricing_package_is_pure():
    import subprocess
    import sys

    code = (
        "import sys, pricing; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'market') "
        "and m not in ('market', 'market.i18n')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
