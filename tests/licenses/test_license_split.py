from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licenses.errors import InvalidSplit
from licenses.split import Split, SplitItem, apportion, split_payment


def exact_quotas(total: int, share: Fraction, items) -> dict:
    """The exact department quotas, computed independently of the implementation."""
    rest = total - (total * share).__floor__()
    item_total = sum(amount for _, amount, _ in items)
    quotas: dict = {}
    for _, amount, departments in items:
        weight_sum = sum(Fraction(w) for _, w in departments)
        for dept, w in departments:
            quotas.setdefault(dept, Fraction(0))
            if amount:
                quotas[dept] += (
                    Fraction(rest) * Fraction(amount, item_total) * Fraction(w) / weight_sum
                )
    return quotas


@pytest.mark.parametrize(
    ("total", "share", "items", "expected"),
    [
        pytest.param(0, Fraction(1, 10), [(1, 0, [(10, 1)])], Split(0, {10: 0}), id="free licence"),
        pytest.param(0, Fraction(1, 10), [], Split(0, {}), id="nothing at all"),
        pytest.param(
            0,
            Fraction(1, 10),
            [(1, 5000, [(10, 1), (11, 3)])],
            Split(0, {10: 0, 11: 0}),
            id="total 0 with priced items",
        ),
        pytest.param(
            10_000,
            Fraction(15, 100),
            [(1, 10_000, [(10, 1)])],
            Split(1500, {10: 8500}),
            id="single department",
        ),
        pytest.param(
            101, Decimal("0.15"), [(1, 101, [(10, 1)])], Split(15, {10: 86}), id="fee is floored"
        ),
        pytest.param(999, 0, [(1, 999, [(10, 1)])], Split(0, {10: 999}), id="no fee"),
        pytest.param(999, 1, [(1, 999, [(10, 1)])], Split(999, {10: 0}), id="all fee"),
        pytest.param(1000, 1, [], Split(1000, {}), id="all fee, no items"),
        pytest.param(
            1,
            0,
            [(1, 1, [(3, 1), (1, 1), (2, 1)])],
            Split(0, {1: 1, 2: 0, 3: 0}),
            id="tie goes to the lowest id",
        ),
        pytest.param(
            2,
            0,
            [(1, 1, [(3, 1), (1, 1), (2, 1)])],
            Split(0, {1: 1, 2: 1, 3: 0}),
            id="two fen over three equal departments",
        ),
        pytest.param(
            1,
            0,
            [(1, 1, [("b", 1), ("a", 1)])],
            Split(0, {"a": 1, "b": 0}),
            id="string ids tie",
        ),
        pytest.param(
            10,
            0,
            [(1, 1, [(7, 1), ("x", 1)])],
            Split(0, {7: 5, "x": 5}),
            id="mixed id types",
        ),
        pytest.param(
            100,
            0,
            [(1, 30, [(1, 1)]), (2, 70, [(1, 1), (2, 1)])],
            Split(0, {1: 65, 2: 35}),
            id="same department in two items",
        ),
        pytest.param(
            100,
            Fraction(1, 10),
            [(1, 60, [(1, 2), (2, 1)]), (2, 40, [(3, Decimal("0.5"))])],
            Split(10, {1: 36, 2: 18, 3: 36}),
            id="weights within an item",
        ),
        pytest.param(
            10,
            0,
            [(1, 10, [(1, 1), (2, 0)])],
            Split(0, {1: 10, 2: 0}),
            id="zero weight listed",
        ),
        pytest.param(
            7,
            0,
            [(1, 1, [(1, 1)]), (2, 1, [(2, 1)]), (3, 1, [(3, 1)])],
            Split(0, {1: 3, 2: 2, 3: 2}),
            id="largest remainder across items",
        ),
        pytest.param(
            50,
            0,
            [(1, 10, [(1, 1)]), (2, 90, [(2, 1)])],
            Split(0, {1: 5, 2: 45}),
            id="total differs from item sum",
        ),
    ],
)
def test_split_table(total, share, items, expected) -> None:
    result = split_payment(total, share, items)
    assert result == expected
    assert list(result.departments) == list(expected.departments)
    assert result.total == total


def test_many_departments() -> None:
    departments = [(d, d) for d in range(1, 201)]
    result = split_payment(1_000_003, Fraction(7, 100), [SplitItem("ds", 5, departments)])
    assert result.operator_fee == 70_000
    assert sum(result.departments.values()) == 1_000_003 - 70_000
    quotas = exact_quotas(1_000_003, Fraction(7, 100), [("ds", 5, departments)])
    assert all(abs(result.departments[d] - quotas[d]) < 1 for d in quotas)
    assert list(result.departments) == list(range(1, 201))


@pytest.mark.parametrize(
    ("total", "share", "items", "message"),
    [
        (100, 0.1, [(1, 100, [(1, 1)])], "float"),
        (100, Fraction(11, 10), [(1, 100, [(1, 1)])], "between 0 and 1"),
        (100, Fraction(-1, 10), [(1, 100, [(1, 1)])], "between 0 and 1"),
        (100, Decimal("NaN"), [(1, 100, [(1, 1)])], "finite"),
        (100, True, [(1, 100, [(1, 1)])], "bool"),
        (-1, 0, [(1, 100, [(1, 1)])], "negative"),
        (1.0, 0, [(1, 100, [(1, 1)])], "integer"),
        (100, 0, [(1, -5, [(1, 1)])], "negative"),
        (100, 0, [(1, 100, [])], "no providing department"),
        (100, 0, [(1, 100, [(1, 0)])], "no providing department"),
        (100, 0, [(1, 100, [(1, -1), (2, 2)])], "negative"),
        (100, 0, [(1, 100, [(1, 0.5)])], "float"),
        (100, 0, [(1, 0, [(1, 1)])], "sum to 0"),
        (100, 0, [], "sum to 0"),
        (100, 0, [(1, 100)], "dataset_id, amount_fen, departments"),
        (100, 0, [(1, 100, [(1.5, 1)])], "unsupported id"),
    ],
)
def test_invalid_inputs(total, share, items, message) -> None:
    with pytest.raises(InvalidSplit, match=message):
        split_payment(total, share, items)


def test_invalid_split_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        split_payment(1, 0, [])


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, {"a": 1, "b": 1, "c": 1}, {"a": 4, "b": 3, "c": 3}),
        (0, {"a": 0}, {"a": 0}),
        (0, {}, {}),
        (5, {"z": Fraction(1, 3), "y": Fraction(2, 3)}, {"y": 3, "z": 2}),
        (100, {2: 1, 1: 0}, {1: 0, 2: 100}),
    ],
)
def test_apportion(total, weights, expected) -> None:
    result = apportion(total, weights)
    assert result == expected
    assert list(result) == sorted(result, key=lambda k: (isinstance(k, str), k))


def test_apportion_refuses_zero_weights_for_money() -> None:
    with pytest.raises(InvalidSplit):
        apportion(1, {"a": 0})


# --- properties ---------------------------------------------------------------------------

dept_ids = st.one_of(st.integers(1, 12), st.sampled_from(["a", "b", "c", "tax", "court"]))
weights = st.one_of(
    st.integers(0, 50),
    st.decimals(min_value=0, max_value=10, places=2, allow_nan=False, allow_infinity=False),
    st.fractions(min_value=0, max_value=10, max_denominator=13),
)
departments = st.lists(st.tuples(dept_ids, weights), min_size=1, max_size=4).filter(
    lambda ds: sum(Fraction(w) for _, w in ds) > 0
)
items_strategy = st.lists(
    st.tuples(st.integers(1, 99), st.integers(0, 10**7), departments), max_size=5
)
shares = st.one_of(
    st.fractions(min_value=0, max_value=1, max_denominator=1000),
    st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(total=st.integers(0, 10**10), share=shares, items=items_strategy, data=st.data())
def test_split_properties(total, share, items, data) -> None:
    exact_share = Fraction(share)
    fee = (total * exact_share).__floor__()
    if total - fee > 0 and sum(amount for _, amount, _ in items) == 0:
        with pytest.raises(InvalidSplit):
            split_payment(total, share, items)
        return

    result = split_payment(total, share, items)

    # The parts sum exactly to the payment.
    assert result.operator_fee + sum(result.departments.values()) == total
    assert result.operator_fee == fee
    # Each department is within one fen of its exact quota, and never negative.
    quotas = exact_quotas(total, exact_share, items)
    assert result.departments.keys() == quotas.keys()
    for dept, amount in result.departments.items():
        assert amount >= 0
        assert abs(amount - quotas[dept]) < 1

    # The order of items and of departments within them does not matter.
    shuffled = [
        (ds_id, amount, data.draw(st.permutations(depts)))
        for ds_id, amount, depts in data.draw(st.permutations(items))
    ]
    again = split_payment(total, share, shuffled)
    assert again == result
    assert list(again.departments.items()) == list(result.departments.items())
