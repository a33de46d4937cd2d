"""The latency histogram: buckets, merging, and the p95 from known buckets (pure)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.metrics.histogram import BOUNDS_MS, OVERFLOW_MS, bucket_of, merge, percentile


@pytest.mark.parametrize(("ms", "bound"), [
    (0, 1), (0.4, 1), (1, 1), (1.01, 2), (4.9, 5), (99.999, 100), (100, 100), (100.5, 200),
    (59_999, 60_000), (60_000, 60_000), (60_000.1, OVERFLOW_MS), (10**9, OVERFLOW_MS),
])
def test_bucket_of(ms, bound):
    assert bucket_of(ms) == bound


@pytest.mark.parametrize("bad", [-1, -0.001, math.inf, math.nan])
def test_bucket_of_refuses_what_is_not_a_duration(bad):
    with pytest.raises(ValueError):
        bucket_of(bad)


@pytest.mark.parametrize(("counts", "p95"), [
    ({}, None),
    ({10: 0}, None),
    ({10: 1}, 10),
    # 100 requests: rank 95 is the 95th fastest.
    ({10: 94, 50: 1, 200: 5}, 50),
    ({10: 95, 50: 5}, 10),
    ({10: 94, 50: 6}, 50),
    # 20 requests: rank ceil(19) = 19.
    ({5: 18, 1_000: 1, 2_000: 1}, 1_000),
    ({5: 18, 2_000: 2}, 2_000),
    # The 95th percentile past the last bound: no upper bound to report.
    ({5: 1, OVERFLOW_MS: 99}, None),
    ({5: 95, OVERFLOW_MS: 5}, 5),
])
def test_p95_from_known_buckets(counts, p95):
    assert percentile(counts, 95) == p95
    assert percentile(list(counts.items()), 95) == p95


def test_percentile_refuses_nonsense():
    with pytest.raises(ValueError):
        percentile({10: 1}, 0)
    with pytest.raises(ValueError):
        percentile({10: -1}, 95)


def test_merge_adds_bucket_wise():
    assert merge({10: 1, 20: 2}, {20: 3, 50: 4}, {}) == {10: 1, 20: 5, 50: 4}


durations = st.lists(st.floats(0, 100_000, allow_nan=False), max_size=60)


@given(durations, durations, st.integers(1, 100))
def test_merged_histograms_answer_as_one(a, b, q):
    """Two processes' histograms merged give the percentile of all their requests together,
    which is the bucket of the true nearest-rank percentile."""
    def hist(values):
        out: dict[int, int] = {}
        for v in values:
            out[bucket_of(v)] = out.get(bucket_of(v), 0) + 1
        return out

    merged = merge(hist(a), hist(b))
    assert merged == hist(a + b)
    everything = sorted(a + b)
    if not everything:
        assert percentile(merged, q) is None
        return
    true = everything[math.ceil(q * len(everything) / 100) - 1]
    expected = bucket_of(true)
    assert percentile(merged, q) == (None if expected == OVERFLOW_MS else expected)
    assert set(merged) <= {*BOUNDS_MS, OVERFLOW_MS}
