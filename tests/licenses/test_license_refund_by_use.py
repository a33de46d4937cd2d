"""#13.6: a refund gives back the unused share of the term AND of the query quota — the smaller
of the two — rounded up to the fen, and its split over the parties still sums exactly."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licenses.errors import InvalidRefund
from licenses.odrl import REFUND_RULE
from licenses.refunds import split_refund, usage_refund
from licenses.split import split_payment
from tests.licenses.test_license_odrl import make_policy

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)  # 365 days
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("amount", "revoked_at", "quota", "left", "expected"),
    [
        pytest.param(36_500, START + DAY, 5, 0, 0, id="5 of 5 queries spent: nothing"),
        pytest.param(36_500, START, 5, 5, 36_500, id="nothing used: all"),
        pytest.param(36_500, START + DAY, 1000, 1000, 36_400, id="term binds"),
        pytest.param(36_500, START + DAY, 1000, 500, 18_250, id="quota binds"),
        pytest.param(36_500, END - DAY, 1000, 1000, 100, id="one day left, no query"),
        pytest.param(10_001, START, 3, 1, 3_334, id="a third of an odd amount rounds up"),
        pytest.param(36_500, END, 1000, 1000, 0, id="term over: nothing"),
        pytest.param(0, START, 10, 10, 0, id="free licence"),
        pytest.param(36_500, START + DAY, 0, 0, 36_400, id="no quota: the term decides"),
    ],
)
def test_usage_refund_table(amount, revoked_at, quota, left, expected) -> None:
    assert usage_refund(amount, START, END, revoked_at, quota, left) == expected


@pytest.mark.parametrize(
    ("quota", "left", "message"),
    [(5, 6, "exceeds"), (5, -1, "negative"), (-1, 0, "negative"), (5, 1.5, "integer")],
)
def test_usage_refund_invalid(quota, left, message) -> None:
    with pytest.raises(InvalidRefund, match=message):
        usage_refund(100, START, END, START, quota, left)


@given(
    amount=st.integers(0, 10**10),
    used_days=st.integers(0, 400),
    quota=st.integers(1, 10**6),
    data=st.data(),
    share=st.fractions(0, 1),
    weights=st.lists(st.integers(0, 50), min_size=1, max_size=5).filter(any),
)
def test_usage_refund_is_the_smaller_share_and_splits_exactly(
    amount, used_days, quota, data, share, weights
) -> None:
    left = data.draw(st.integers(0, quota))
    revoked = START + timedelta(days=used_days)
    refund = usage_refund(amount, START, END, revoked, quota, left)
    term_left = max(365 - used_days, 0)
    exact = amount * min(Fraction(term_left, 365), Fraction(left, quota))
    assert refund == math.ceil(exact)
    assert 0 <= refund <= amount
    # Fen-exact: the refund's split over the original payment's parties sums to it.
    original = split_payment(amount, share, [(1, amount, list(enumerate(weights)))])
    parts = split_refund(refund, original)
    assert parts.total == refund
    assert all(0 <= parts.departments[d] <= original.departments[d] for d in parts.departments)


def test_the_odrl_duty_states_the_refund_rule() -> None:
    [duty] = make_policy(price_fen=12_345)["permission"][0]["duty"]
    assert duty["market:refundOnRevocation"] == REFUND_RULE
    assert "smaller" in REFUND_RULE["rdfs:comment"]
    assert REFUND_RULE["market:refundShare"] == "min(unusedTermShare, unusedQuotaShare)"
