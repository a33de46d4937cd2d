"""Hypothesis properties of data products (数据产品, issue 16 item 4): a product's one price
comes from its parts by the same model, and bundles keep the no-arbitrage property.

1. a product never costs more than buying each of its parts alone;
2. however the parts are split into separate purchases (by dataset, by columns of a dataset,
   or both) under the product's terms, the purchases never cost less than the product;
3. the product's price is exactly the model's quote of its parts (no hidden rule), does not
   depend on the order of the parts, and never falls when a part is added.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing import (
    PURPOSE_ORDER,
    Costs,
    DatasetInfo,
    InvalidScope,
    PricingParameters,
    ProductPart,
    ProductTerms,
    Scope,
    price_product,
    quote,
    separate_total,
)

PROPS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
CATEGORIES = ("tax", "judicial", "environment", "utilities")
COLUMNS = ("key", "a", "b", "c", "d", "e")


def _pool(seed: int) -> PricingParameters:
    """Parameter sets with binding ceilings and steep bundle discounts, from a fixed seed."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, 100), 2))
    purposes = sorted(rng.sample(range(1, 300), 3))
    starts = sorted(rng.sample(range(0, 10**7), 3))
    return PricingParameters.default().updated(
        {
            "version": seed + 1,
            "expected_licenses": rng.randint(1, 200),
            "category_ceilings_fen": {c: rng.randint(1, 10**7) for c in CATEGORIES[:2]},
            "default_query_ceiling_fen": rng.choice([None, rng.randint(1, 10**4)]),
            "scope_shares": {
                "columns": str(Decimal(cuts[0]).scaleb(-2)),
                "duration": str(Decimal(cuts[1] - cuts[0]).scaleb(-2)),
                "quota": str(Decimal(100 - cuts[1]).scaleb(-2)),
            },
            "purpose_coefficients": {
                "public_welfare": "0",
                "research": str(Decimal(purposes[0]).scaleb(-2)),
                "internal_risk_control": str(Decimal(purposes[1]).scaleb(-2)),
                "commercial_product": str(Decimal(purposes[2]).scaleb(-2)),
            },
            "bundle_discount_brackets": [
                {"from_fen": s, "rate": str(Decimal(r).scaleb(-2))}
                for s, r in zip(starts, sorted(rng.sample(range(1, 60), 3)), strict=True)
            ],
        }
    )


POOL = (PricingParameters.default(), *(_pool(s) for s in range(20)))


@st.composite
def dataset(draw: st.DrawFn, dataset_id: int) -> DatasetInfo:
    names = COLUMNS[: draw(st.integers(2, len(COLUMNS)))]
    return DatasetInfo(
        dataset_id=dataset_id,
        category=draw(st.sampled_from(CATEGORIES)),
        quality_score=Decimal(draw(st.integers(90, 100))),
        costs=Costs(
            draw(st.integers(10_000, 10**9)),
            draw(st.integers(0, 10**8)),
            draw(st.integers(0, 10**6)),
            draw(st.integers(0, 10**7)),
        ),
        columns={n: Decimal(draw(st.integers(1, 500))).scaleb(-2) for n in names},
        entity_key="key",
    )


@st.composite
def products(draw: st.DrawFn) -> tuple[list[ProductPart], ProductTerms, PricingParameters]:
    count = draw(st.integers(1, 6))
    parts = []
    for i in range(count):
        info = draw(dataset(i + 1))
        names = sorted(info.columns)
        columns = draw(
            st.one_of(st.none(), st.sets(st.sampled_from(names), min_size=1).map(frozenset))
        )
        parts.append(ProductPart(info, columns))
    terms = ProductTerms(
        purpose=draw(st.sampled_from(PURPOSE_ORDER[1:])),
        duration_months=draw(st.integers(1, 60)),
        query_quota=draw(st.integers(1, 200_000)),
    )
    return parts, terms, draw(st.sampled_from(POOL))


def _column_pieces(draw: st.DrawFn, part: ProductPart) -> list[ProductPart]:
    """The part's columns cut into pieces that together grant at least the same columns."""
    granted = sorted(part.columns if part.columns is not None else part.dataset.columns)
    pieces = draw(st.integers(1, len(granted)))
    owner = [draw(st.integers(0, pieces - 1)) for _ in granted]
    groups = [
        frozenset(c for c, o in zip(granted, owner, strict=True) if o == k) for k in range(pieces)
    ]
    return [ProductPart(part.dataset, g) for g in groups if g]


@PROPS
@given(products())
def test_a_product_never_costs_more_than_its_parts_alone(product):
    parts, terms, params = product
    price = price_product(parts, terms, params).total
    assert price <= separate_total([[p] for p in parts], terms, params)


@PROPS
@given(products(), st.data())
def test_buying_the_parts_separately_never_costs_less(product, data):
    parts, terms, params = product
    price = price_product(parts, terms, params).total
    # Every part may be cut by columns; the pieces then go into purchases at random, each
    # purchase holding a dataset at most once (as a quote must).
    pieces = [piece for part in parts for piece in _column_pieces(data.draw, part)]
    purchases: list[list[ProductPart]] = []
    for piece in pieces:
        fits = [
            i
            for i, group in enumerate(purchases)
            if all(p.dataset.dataset_id != piece.dataset.dataset_id for p in group)
        ]
        choice = data.draw(st.sampled_from([*fits, len(purchases)]))
        if choice == len(purchases):
            purchases.append([piece])
        else:
            purchases[choice].append(piece)
    assert separate_total(purchases, terms, params) >= price


@PROPS
@given(products(), st.randoms(use_true_random=False))
def test_the_price_is_the_models_quote_order_free_and_monotone(product, rnd):
    parts, terms, params = product
    priced = price_product(parts, terms, params)
    direct = quote([(p.dataset, terms.scope(p.columns)) for p in parts], params)
    assert priced.total == direct.total and priced.items == direct.items
    shuffled = list(parts)
    rnd.shuffle(shuffled)
    assert price_product(shuffled, terms, params).total == priced.total
    if len(parts) > 1:
        assert price_product(parts[:-1], terms, params).total <= priced.total


def test_an_empty_product_or_a_dataset_twice_is_refused():
    info = DatasetInfo(1, "tax", 95, Costs(100_000), {"key": 1, "a": 1}, "key")
    terms = ProductTerms("research", 12, 100)
    params = PricingParameters.default()
    with pytest.raises(InvalidScope) as empty:
        price_product([], terms, params)
    assert empty.value.field == "items"
    with pytest.raises(InvalidScope) as twice:
        price_product([ProductPart(info), ProductPart(info, frozenset({"a"}))], terms, params)
    assert twice.value.field == "items"
    assert terms.scope(None) == Scope(None, 12, "research", 100)
