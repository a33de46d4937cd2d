"""Per-period revenue caps with the excess deducted next period."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing import (
    OPERATOR,
    InvalidRevenueInput,
    PricingParameters,
    RevenueEntry,
    carry_forward,
    next_period,
    revenue_cap_report,
)

PARAMS = PricingParameters.default().updated(
    {"revenue_caps_fen": {"tax": 1_000, "judicial": 500}, "default_revenue_cap_fen": 2_000}
)
UNCAPPED = PARAMS.updated({"default_revenue_cap_fen": None})


def row_tuple(row):
    return (
        row.party,
        row.category,
        row.revenue_fen,
        row.prior_excess_fen,
        row.cap_fen,
        row.within_cap_fen,
        row.excess_fen,
        row.headroom_fen,
    )


@pytest.mark.parametrize(
    ("entries", "prior", "expected"),
    [
        pytest.param(
            [RevenueEntry("dept:1", "tax", 800)],
            {},
            [("dept:1", "tax", 800, 0, 1_000, 800, 0, 200)],
            id="under-cap",
        ),
        pytest.param(
            [RevenueEntry("dept:1", "tax", 700), RevenueEntry("dept:1", "tax", 500)],
            {},
            [("dept:1", "tax", 1_200, 0, 1_000, 1_000, 200, 0)],
            id="over-cap-summed",
        ),
        pytest.param(
            [RevenueEntry("dept:1", "tax", 900)],
            {("dept:1", "tax"): 300},
            [("dept:1", "tax", 900, 300, 1_000, 1_000, 200, 0)],
            id="prior-excess-deducted",
        ),
        pytest.param(
            [],
            {("dept:1", "tax"): 300},
            [("dept:1", "tax", 0, 300, 1_000, 300, 0, 700)],
            id="carried-only",
        ),
        pytest.param(
            [RevenueEntry(OPERATOR, "utilities", 2_500), RevenueEntry("dept:2", "judicial", 100)],
            {},
            [
                ("dept:2", "judicial", 100, 0, 500, 100, 0, 400),
                (OPERATOR, "utilities", 2_500, 0, 2_000, 2_000, 500, 0),
            ],
            id="operator-and-default-cap",
        ),
        pytest.param(
            [RevenueEntry("dept:1", "tax", 1_000), RevenueEntry("dept:1", "tax", -300)],
            {},
            [("dept:1", "tax", 700, 0, 1_000, 700, 0, 300)],
            id="refund-nets",
        ),
    ],
)
def test_report_rows(entries, prior, expected):
    rows = revenue_cap_report("2025-07", entries, PARAMS, prior)
    assert [row_tuple(r) for r in rows] == expected
    assert all(r.period == "2025-07" for r in rows)


def test_uncapped_category_has_no_excess():
    rows = revenue_cap_report(
        "2025-07", [RevenueEntry("d", "misc", 10**9)], UNCAPPED, {("d", "misc"): 5}
    )
    (row,) = rows
    assert (row.cap_fen, row.excess_fen, row.headroom_fen, row.utilization) == (None, 0, None, None)
    assert row.to_dict()["cap"] is None


def test_excess_is_deducted_over_following_periods():
    period, prior = "2025-11", {}
    history = []
    for revenue in (2_500, 0, 400, 0):
        rows = revenue_cap_report(period, [RevenueEntry("d", "tax", revenue)], PARAMS, prior)
        history.append((period, rows[0].within_cap_fen, rows[0].excess_fen))
        prior, period = carry_forward(rows), next_period(period)
    assert history == [
        ("2025-11", 1_000, 1_500),
        ("2025-12", 1_000, 500),
        ("2026-01", 900, 0),
        ("2026-02", 0, 0),
    ]


def test_to_dict_names_the_excess_to_deduct():
    (row,) = revenue_cap_report("2025-07", [RevenueEntry("d", "tax", 1_500)], PARAMS)
    data = row.to_dict()
    assert data["excess_to_deduct_next_period"] == 500
    assert data["utilization"] == "1.5"
    assert data["currency"] == "CNY"
    assert row.utilization == Decimal("1.5")


@pytest.mark.parametrize(
    ("period", "expected"), [("2025-01", "2025-02"), ("2025-12", "2026-01"), ("1999-09", "1999-10")]
)
def test_next_period(period, expected):
    assert next_period(period) == expected


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: revenue_cap_report("2025-13", [], PARAMS), "period"),
        (lambda: revenue_cap_report("2025-7", [], PARAMS), "period"),
        (lambda: next_period("July"), "period"),
        (
            lambda: revenue_cap_report("2025-07", [RevenueEntry("d", "tax", 1.5)], PARAMS),
            "revenue[0].amount_fen",
        ),
        (
            lambda: revenue_cap_report("2025-07", [RevenueEntry("", "tax", 1)], PARAMS),
            "revenue[0].party",
        ),
        (lambda: revenue_cap_report("2025-07", [("d", "tax", 1)], PARAMS), "revenue[0]"),
        (
            lambda: revenue_cap_report("2025-07", [], PARAMS, {("d", "tax"): -1}),
            "prior_excess.d.tax",
        ),
    ],
)
def test_invalid_input_names_the_field(call, field):
    with pytest.raises(InvalidRevenueInput) as err:
        call()
    assert err.value.field == field


# -- properties -------------------------------------------------------------------------------

parties = st.sampled_from(["operator", "dept:1", "dept:2"])
categories = st.sampled_from(["tax", "judicial", "utilities"])
entries = st.lists(st.builds(RevenueEntry, parties, categories, st.integers(0, 5_000)), max_size=12)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(entries, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_caps_hold_and_revenue_is_conserved_across_periods(periods, rng):
    prior: dict = {}
    period = "2025-01"
    counted_total = 0
    for batch in periods:
        rows = revenue_cap_report(period, batch, PARAMS, prior)
        shuffled = list(batch)
        rng.shuffle(shuffled)
        assert revenue_cap_report(period, shuffled, PARAMS, prior) == rows
        for row in rows:
            assert 0 <= row.within_cap_fen <= row.cap_fen
            assert row.excess_fen >= 0
            assert row.within_cap_fen + row.excess_fen == row.revenue_fen + row.prior_excess_fen
            assert (row.excess_fen == 0) or (row.headroom_fen == 0)
            counted_total += row.within_cap_fen
        prior, period = carry_forward(rows), next_period(period)
    revenue_total = sum(e.amount_fen for batch in periods for e in batch)
    # Nothing is lost or invented: what counted plus what is still carried is all revenue.
    assert counted_total + sum(prior.values()) == revenue_total


@settings(max_examples=60, deadline=None, derandomize=True)
@given(entries, st.integers(0, 3_000), st.integers(0, 3_000))
def test_more_revenue_or_more_carried_excess_never_lowers_the_excess(batch, extra, carried):
    key = ("dept:1", "tax")
    base = {
        r.category: r
        for r in revenue_cap_report("2025-03", batch, PARAMS)
        if (r.party, r.category) == key
    }
    more = revenue_cap_report(
        "2025-03", [*batch, RevenueEntry(*key, extra)], PARAMS, {key: carried}
    )
    (row,) = [r for r in more if (r.party, r.category) == key]
    assert row.excess_fen >= (base["tax"].excess_fen if base else 0)
