"""Revenue caps per period (NDRC 发改价格〔2025〕65号: revenue above the cap is deducted next
period).

Each party (a providing department, or the operator) has its revenue in each category compared
with that category's per-period cap. The excess carries into the next period, where it counts
against the same cap before any new revenue does::

    counted    = revenue + prior_excess
    excess     = max(0, counted - cap)   # deducted next period
    within_cap = counted - excess        # = min(counted, cap), never above the cap

Over any run of periods ``sum(within_cap) + final excess == sum(revenue) + initial excess``, so
nothing is lost or invented, and what counts in a period never exceeds its cap. When a
category has no cap, nothing is in excess and a carried excess is simply absorbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from market.i18n import N_

from ._num import CURVE, plain, quantize_factor, to_int
from .errors import InvalidRevenueInput
from .params import PricingParameters

#: The party name the operator's own revenue is reported under.
OPERATOR = "operator"

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class RevenueEntry:
    """Revenue of one party in one category for the period being reported, in fen.

    Several entries for the same (party, category) are summed; negative amounts (refunds) are
    allowed.
    """

    party: str
    category: str
    amount_fen: int


@dataclass(frozen=True)
class RevenueCapRow:
    """One line of the revenue-cap report."""

    period: str
    party: str
    category: str
    revenue_fen: int
    #: Excess carried in from the previous period, deducted now.
    prior_excess_fen: int
    #: ``None`` when the category is uncapped.
    cap_fen: int | None
    #: ``revenue + prior_excess``: what counts against the cap this period.
    counted_fen: int
    #: The part of ``counted`` within the cap (``min(counted, cap)``).
    within_cap_fen: int
    #: Revenue above the cap, to deduct next period.
    excess_fen: int
    #: Remaining headroom under the cap this period (0 when over; ``None`` when uncapped).
    headroom_fen: int | None
    #: ``counted / cap`` as a Decimal, ``None`` when uncapped.
    utilization: Decimal | None

    @property
    def over_cap(self) -> bool:
        return self.excess_fen > 0

    def to_dict(self) -> dict[str, object]:
        return {
            "period": self.period,
            "party": self.party,
            "category": self.category,
            "revenue": self.revenue_fen,
            "prior_excess": self.prior_excess_fen,
            "cap": self.cap_fen,
            "counted": self.counted_fen,
            "within_cap": self.within_cap_fen,
            "excess_to_deduct_next_period": self.excess_fen,
            "headroom": self.headroom_fen,
            "utilization": None if self.utilization is None else plain(self.utilization),
            "currency": "CNY",
        }


#: Months the platform's books can hold: Python dates end at 9999, and the books start long
#: after year 1 (and the next month must still exist).
MIN_PERIOD_YEAR, MAX_PERIOD_YEAR = 1900, 9998


def parse_period(period: str) -> tuple[int, int]:
    """``"2025-07"`` -> ``(2025, 7)``; raises ``InvalidRevenueInput`` for anything else,
    including a year outside ``MIN_PERIOD_YEAR``..``MAX_PERIOD_YEAR``."""
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None:
        raise InvalidRevenueInput("period", N_("must be a month written YYYY-MM, e.g. 2025-07"))
    year, month = int(match.group(1)), int(match.group(2))
    if not MIN_PERIOD_YEAR <= year <= MAX_PERIOD_YEAR:
        raise InvalidRevenueInput(
            "period",
            N_("the year must be between %(min_period_year)s and %(max_period_year)s"),
            min_period_year=MIN_PERIOD_YEAR,
            max_period_year=MAX_PERIOD_YEAR,
        )
    return year, month


def next_period(period: str) -> str:
    """The month after ``period``. Raises ``InvalidRevenueInput`` for a bad period."""
    year, month = parse_period(period)
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


def revenue_cap_report(
    period: str,
    revenue: Iterable[RevenueEntry],
    params: PricingParameters,
    prior_excess: Mapping[tuple[str, str], int] | None = None,
) -> tuple[RevenueCapRow, ...]:
    """Compare each (party, category) revenue with its cap for ``period``.

    ``prior_excess`` maps (party, category) to the excess carried from the previous period
    (use :func:`carry_forward` on the previous report). Rows are sorted by (party, category)
    and include pairs that only have a carried excess. Pure: same inputs, same rows, whatever
    their order. Raises ``InvalidRevenueInput`` naming the bad field.
    """
    parse_period(period)
    totals: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(revenue):
        if not isinstance(entry, RevenueEntry):
            raise InvalidRevenueInput(f"revenue[{i}]", N_("must be a RevenueEntry"))
        for name in ("party", "category"):
            if not isinstance(getattr(entry, name), str) or not getattr(entry, name):
                raise InvalidRevenueInput(f"revenue[{i}].{name}", N_("must be a non-empty string"))
        amount = to_int(entry.amount_fen, f"revenue[{i}].amount_fen", InvalidRevenueInput)
        key = (entry.party, entry.category)
        totals[key] = totals.get(key, 0) + amount
    carried: dict[tuple[str, str], int] = {}
    for key, value in (prior_excess or {}).items():
        name = f"prior_excess.{key[0]}.{key[1]}" if isinstance(key, tuple) else "prior_excess"
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InvalidRevenueInput(name, N_("keys must be (party, category) pairs"))
        amount = to_int(value, name, InvalidRevenueInput)
        if amount < 0:
            raise InvalidRevenueInput(name, N_("must be >= 0 fen"))
        carried[key] = amount

    rows = []
    for key in sorted(totals.keys() | carried.keys()):
        party, category = key
        rows.append(_row(period, party, category, totals.get(key, 0), carried.get(key, 0), params))
    return tuple(rows)


def _row(
    period: str,
    party: str,
    category: str,
    revenue: int,
    prior: int,
    params: PricingParameters,
) -> RevenueCapRow:
    cap = params.revenue_cap_fen(category)
    counted = revenue + prior
    if cap is None:
        return RevenueCapRow(
            period, party, category, revenue, prior, None, counted, counted, 0, None, None
        )
    excess = max(0, counted - cap)
    return RevenueCapRow(
        period=period,
        party=party,
        category=category,
        revenue_fen=revenue,
        prior_excess_fen=prior,
        cap_fen=cap,
        counted_fen=counted,
        within_cap_fen=counted - excess,
        excess_fen=excess,
        headroom_fen=max(0, cap - counted),
        utilization=quantize_factor(CURVE.divide(Decimal(counted), Decimal(cap))),
    )


def carry_forward(rows: Iterable[RevenueCapRow]) -> dict[tuple[str, str], int]:
    """The ``prior_excess`` input for the next period's report (only non-zero excesses)."""
    return {(row.party, row.category): row.excess_fen for row in rows if row.excess_fen > 0}
