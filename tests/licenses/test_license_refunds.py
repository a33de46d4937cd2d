from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licenses.errors import InvalidRefund
from licenses.refunds import prorata_refund, split_refund
from licenses.split import Split, split_payment

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)  # 365 days


@pytest.mark.parametrize(
    ("amount", "revoked_at", "expected"),
    [
        pytest.param(36_500, START - timedelta(days=3), 36_500, id="before start: all"),
        pytest.param(36_500, START, 36_500, id="at start: all"),
        pytest.param(36_500, START + timedelta(days=1), 36_400, id="one day used"),
        pytest.param(36_500, END - timedelta(days=1), 100, id="one day left"),
        pytest.param(36_500, END, 0, id="at end: nothing"),
        pytest.param(36_500, END + timedelta(days=9), 0, id="after end: nothing"),
        pytest.param(1, START + timedelta(days=364), 1, id="a fraction of a fen rounds up"),
        pytest.param(
            101, START + timedelta(days=182, hours=12), 51, id="half of an odd amount rounds up"
        ),
        pytest.param(0, START + timedelta(days=10), 0, id="free licence"),
        pytest.param(
            36_500,
            datetime(2025, 1, 2, 8, tzinfo=timezone(timedelta(hours=8))),
            36_400,
            id="other timezones are converted",
        ),
    ],
)
def test_prorata_table(amount, revoked_at, expected) -> None:
    assert prorata_refund(amount, START, END, revoked_at) == expected


@pytest.mark.parametrize(
    ("amount", "starts", "ends", "revoked", "message"),
    [
        (-1, START, END, START, "negative"),
        (1.5, START, END, START, "integer"),
        (True, START, END, START, "integer"),
        (100, START, START, START, "after"),
        (100, END, START, START, "after"),
        (100, START.replace(tzinfo=None), END, START, "timezone"),
        (100, START, END, datetime(2025, 6, 1), "timezone"),
    ],
)
def test_prorata_invalid(amount, starts, ends, revoked, message) -> None:
    with pytest.raises(InvalidRefund, match=message):
        prorata_refund(amount, starts, ends, revoked)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(0, 10**9),
    term_us=st.integers(1, 10**13),
    offsets=st.tuples(st.integers(-(10**13), 2 * 10**13), st.integers(-(10**13), 2 * 10**13)),
)
def test_prorata_properties(amount, term_us, offsets) -> None:
    ends = START + timedelta(microseconds=term_us)
    early, late = sorted(START + timedelta(microseconds=o) for o in offsets)
    refund_early = prorata_refund(amount, START, ends, early)
    refund_late = prorata_refund(amount, START, ends, late)
    assert 0 <= refund_late <= refund_early <= amount
    remaining = min(max((ends - early) // timedelta(microseconds=1), 0), term_us)
    assert refund_early == math.ceil(Fraction(amount * remaining, term_us))


ORIGINAL = Split(150, {1: 600, 2: 250})  # a 1,000 fen payment


@pytest.mark.parametrize(
    ("refund", "previous", "expected"),
    [
        (1000, None, ORIGINAL),
        (0, None, Split(0, {1: 0, 2: 0})),
        (100, None, Split(15, {1: 60, 2: 25})),
        (1, None, Split(0, {1: 1, 2: 0})),
        (3, None, Split(0, {1: 2, 2: 1})),
        (150, Split(150, {1: 600, 2: 100}), Split(0, {1: 0, 2: 150})),
        (0, ORIGINAL, Split(0, {1: 0, 2: 0})),
    ],
)
def test_split_refund_table(refund, previous, expected) -> None:
    result = split_refund(refund, ORIGINAL, previous)
    assert result == expected
    assert result.total == refund


@pytest.mark.parametrize(
    ("refund", "previous", "message"),
    [
        (1001, None, "exceeds"),
        (1, ORIGINAL, "exceeds"),
        (-1, None, "negative"),
        (1.0, None, "integer"),
        (1, Split(0, {3: 1}), "not in the split"),
        (1, Split(151, {}), "exceed"),
    ],
)
def test_split_refund_invalid(refund, previous, message) -> None:
    with pytest.raises(InvalidRefund, match=message):
        split_refund(refund, ORIGINAL, previous)


def _add(a: Split, b: Split) -> Split:
    return Split(
        a.operator_fee + b.operator_fee,
        {d: a.departments.get(d, 0) + b.departments.get(d, 0) for d in b.departments},
    )


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(1, 10**8),
    share=st.fractions(min_value=0, max_value=1, max_denominator=100),
    weights=st.lists(st.integers(1, 20), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 10**8), max_size=6),
)
def test_repeated_partial_refunds_never_overdraw_a_party(total, share, weights, cuts) -> None:
    original = split_payment(total, share, [(1, total, list(enumerate(weights)))])
    refunded = Split(0, {d: 0 for d in original.departments})
    left = total
    for cut in cuts:
        amount = cut % (left + 1)
        part = split_refund(amount, original, refunded)
        assert part.total == amount
        # Each part is within one fen of its quota of what the parties still held.
        if left:
            held = {"op": original.operator_fee - refunded.operator_fee}
            held.update({d: v - refunded.departments[d] for d, v in original.departments.items()})
            got = {"op": part.operator_fee, **part.departments}
            assert all(abs(got[k] - Fraction(amount * held[k], left)) < 1 for k in held)
        refunded = _add(refunded, part)
        left -= amount
        assert refunded.operator_fee <= original.operator_fee
        assert all(refunded.departments[d] <= original.departments[d] for d in original.departments)
    # Refunding what is left returns every party exactly its original share.
    final = _add(refunded, split_refund(left, original, refunded))
    assert final == original
