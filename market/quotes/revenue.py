"""Revenue per category against its cap (NDRC 发改价格〔2025〕65号: revenue above the cap is
deducted in the next period).

What counts as revenue: **money received, net of refunds**. A settled payment counts in the
month it settled (``settled_at``), and a refund counts, negatively, in the month it was issued
(``created_at``), each a calendar month in Asia/Shanghai: the same events that post the
``payment_settled`` and ``refund_issued`` journals of the ledger, at the same instants. A
license activated without payment (public welfare, free) brings no revenue; a license
refunded in full nets to nothing.

Parties: ``operator`` is the operator's **own fee income** (the operator's fee share of each
department's part of each payment, from that department's authorization agreement —
``MARKET_OPERATOR_FEE_SHARE`` for a department without one — as the settlement split takes
it: the operator
revenue cap limits what the operator earns, not what the departments are paid), and each
providing department ``department:<id>`` the rest of each item it provides (by
``DatasetContributor`` weight, or the owning department). Each payment or refund is split into
fee and rest, and each is apportioned over its license's items in proportion to the item
amounts, by largest remainder, so a bundle discount is shared and nothing is lost to rounding.

Enforcement (NDRC 发改价格〔2025〕65号): once a category's operator income (with the excess
carried in) reaches its cap in the current period, :func:`over_cap_categories` names it, and
new quotes in it carry the parameters' ``over_cap_reduction`` as an explained ``over_cap``
factor; the excess over the cap is carried into the next period's deduction by the report.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

import pricing
from licenses.models import LicenseItem, Payment, PaymentState, Refund
from licenses.split import apportion
from market.accounts.models import Organization
from market.datasets.models import Dataset, DatasetContributor
from market.quotes.parameters import parameters_in_force, parameters_of

#: What the report says it counts: settled payments, less refunds, when they happen.
BASIS = "settled_payments_net_of_refunds"
#: The revenue period is a calendar month where the platform operates.
PERIOD_ZONE = ZoneInfo("Asia/Shanghai")
#: How far back the carried excess is recomputed from.
MAX_CARRY_MONTHS = 120

DEPARTMENT_PREFIX = "department:"


def department_party(department_id: int) -> str:
    return f"{DEPARTMENT_PREFIX}{department_id}"


def period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """``"2026-11"`` -> [start, end) in UTC of that month in Asia/Shanghai.

    Raises ``pricing.InvalidRevenueInput`` for anything but a ``YYYY-MM`` the books can hold.
    """
    year, month = pricing.parse_period(period)
    start = dt.datetime(year, month, 1, tzinfo=PERIOD_ZONE)
    ny, nm = pricing.parse_period(pricing.next_period(period))
    end = dt.datetime(ny, nm, 1, tzinfo=PERIOD_ZONE)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def period_of(moment: dt.datetime) -> str:
    local = moment.astimezone(PERIOD_ZONE)
    return f"{local.year:04d}-{local.month:02d}"


def current_period(now: dt.datetime | None = None) -> str:
    return period_of(now or dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class _Money:
    """A settled payment (positive) or a refund (negative) of one license."""

    license_id: int
    at: dt.datetime
    amount_fen: int


@dataclass(frozen=True)
class _Item:
    dataset_id: int
    amount_fen: int
    category: str


def _money(session: Session, start: dt.datetime, end: dt.datetime) -> list[_Money]:
    payments = sa.select(Payment.license_id, Payment.settled_at, Payment.amount_fen).where(
        Payment.status == PaymentState.settled.value,
        Payment.settled_at >= start,
        Payment.settled_at < end,
        Payment.amount_fen > 0,
    )
    refunds = sa.select(Refund.license_id, Refund.created_at, Refund.amount_fen).where(
        Refund.created_at >= start, Refund.created_at < end
    )
    out = [_Money(lic, at, amount) for lic, at, amount in session.execute(payments)]
    out += [_Money(lic, at, -amount) for lic, at, amount in session.execute(refunds)]
    return sorted(out, key=lambda m: (m.at, m.license_id, m.amount_fen))


def _items(session: Session, license_ids: Iterable[int]) -> dict[int, list[_Item]]:
    ids = sorted(set(license_ids))
    if not ids:
        return {}
    stmt = (
        sa.select(
            LicenseItem.license_id, LicenseItem.dataset_id, LicenseItem.amount_fen, Dataset.category
        )
        .join(Dataset, Dataset.id == LicenseItem.dataset_id)
        .where(LicenseItem.license_id.in_(ids))
        .order_by(LicenseItem.license_id, LicenseItem.id)
    )
    out: dict[int, list[_Item]] = defaultdict(list)
    for license_id, dataset_id, amount, category in session.execute(stmt):
        out[license_id].append(_Item(dataset_id, amount, category))
    return out


def _providers(session: Session, dataset_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """dataset id -> {department id: weight}: declared contributors, else the owner."""
    ids = sorted(set(dataset_ids))
    if not ids:
        return {}
    out: dict[int, dict[int, int]] = {}
    for c in session.scalars(
        sa.select(DatasetContributor).where(DatasetContributor.dataset_id.in_(ids))
    ):
        out.setdefault(c.dataset_id, {})[c.department_id] = c.weight
    for dataset_id, department_id in session.execute(
        sa.select(Dataset.id, Dataset.department_id).where(Dataset.id.in_(ids))
    ):
        out.setdefault(dataset_id, {department_id: 1})
    return out


def fee_share() -> Fraction:
    """The operator's fee share of each payment (``MARKET_OPERATOR_FEE_SHARE``)."""
    from flask import current_app

    from licenses.payments import operator_fee_share

    return operator_fee_share(current_app.config)


#: ``share_of(dataset_id, category, department_id, at)`` -> the operator's fee share.
ShareOf = Callable[[int, str, int, dt.datetime], Fraction]


def _uniform(share: Fraction) -> ShareOf:
    return lambda _ds, _cat, _dept, _at: share


def agreed_shares(session: Session, providers: Mapping[int, Mapping[int, int]]) -> ShareOf:
    """Each department's fee share from its authorization agreement at the time of the money
    (``market.agreements.services.operator_share_at``), ``MARKET_OPERATOR_FEE_SHARE`` for a
    department without one: the same shares the settlement split takes."""
    from market.agreements.services import agreed_rates, operator_share_at

    default = fee_share()
    rates = agreed_rates(session, (d for ws in providers.values() for d in ws))
    return lambda ds, cat, dept, at: operator_share_at(rates, dept, ds, cat, at, default)


def _entries(
    money: Iterable[_Money],
    items: Mapping[int, list[_Item]],
    providers: Mapping[int, Mapping[int, int]],
    share_of: ShareOf,
) -> list[pricing.RevenueEntry]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for m in money:
        lic_items = items.get(m.license_id, [])
        if not lic_items:
            continue
        amounts = {i: it.amount_fen for i, it in enumerate(lic_items)}
        if not any(amounts.values()):
            amounts = dict.fromkeys(amounts, 1)  # a priced license of free items: share evenly
        at = m.at if m.at.tzinfo else m.at.replace(tzinfo=dt.UTC)
        # Per item: the providers' weights and each one's agreed fee share. An item's fee
        # weight is its amount times the weighted mean share of its providers, so with one
        # share for everyone this is exactly floor(amount × share) apportioned by amount.
        fee_w: dict[int, Fraction] = {}
        rest_w: dict[int, Fraction] = {}
        within: dict[int, dict[int, Fraction]] = {}
        for i, item in enumerate(lic_items):
            provs = providers.get(item.dataset_id, {})
            total_w = sum(provs.values())
            f = r = Fraction(0)
            within[i] = {}
            for dept, w in provs.items():
                s = share_of(item.dataset_id, item.category, dept, at)
                part = Fraction(w, total_w) if total_w else Fraction(0)
                f += part * s
                r += part * (1 - s)
                within[i][dept] = w * (1 - s)
            fee_w[i] = amounts[i] * f
            rest_w[i] = amounts[i] * r
        base = sum(fee_w.values(), Fraction(0)) + sum(rest_w.values(), Fraction(0))
        sign = 1 if m.amount_fen >= 0 else -1
        # The operator's fee as the settlement split takes it: floor(amount × share).
        fee = math.floor(abs(m.amount_fen) * sum(fee_w.values(), Fraction(0)) / base) if base else 0
        for i, part in apportion(fee, fee_w).items():
            totals[(pricing.OPERATOR, lic_items[i].category)] += sign * part
        rest_total = abs(m.amount_fen) - fee
        for i, rest in apportion(rest_total, rest_w if any(rest_w.values()) else amounts).items():
            item = lic_items[i]
            weights = within[i] if any(within[i].values()) else providers.get(item.dataset_id, {})
            for dept, part in apportion(rest, weights).items():
                totals[(department_party(dept), item.category)] += sign * part
    return [
        pricing.RevenueEntry(party, category, amount)
        for (party, category), amount in sorted(totals.items())
    ]


def _revenue(
    session: Session, start: dt.datetime, end: dt.datetime
) -> tuple[list[_Money], dict[int, list[_Item]], dict[int, dict[int, int]]]:
    money = _money(session, start, end)
    items = _items(session, (m.license_id for m in money))
    datasets = (it.dataset_id for its in items.values() for it in its)
    return money, items, _providers(session, datasets)


def revenue_by_category(
    session: Session, period: str, *, share: Fraction | None = None
) -> list[pricing.RevenueEntry]:
    """Revenue of ``period`` per (party, category): settled payments less refunds, the
    operator's part being its fee (see the module doc).

    Raises ``pricing.InvalidRevenueInput`` for a bad period.
    """
    start, end = period_bounds(period)
    money, items, providers = _revenue(session, start, end)
    share_of = agreed_shares(session, providers) if share is None else _uniform(share)
    return _entries(money, items, providers, share_of)


@dataclass(frozen=True)
class CapReport:
    period: str
    params_version: int
    rows: tuple[pricing.RevenueCapRow, ...]
    #: The first month whose excess was carried forward into this report.
    carried_from: str | None
    basis: str = BASIS

    @property
    def next_period(self) -> str:
        return pricing.next_period(self.period)

    @property
    def total_revenue(self) -> int:
        return sum(r.revenue_fen for r in self.rows if r.party == pricing.OPERATOR)

    @property
    def total_excess(self) -> int:
        return sum(r.excess_fen for r in self.rows if r.party == pricing.OPERATOR)


def _months(first: str, last: str) -> list[str]:
    out = [first]
    while out[-1] != last:
        out.append(pricing.next_period(out[-1]))
    return out


def revenue_cap_report(
    session: Session, period: str, *, share: Fraction | None = None
) -> CapReport:
    """Each party's revenue per category in ``period`` against the caps in force at the end of
    that month, with the excess carried in from earlier months and the excess to deduct next.

    Earlier months are replayed (at most :data:`MAX_CARRY_MONTHS`), each with the parameter
    version in force at its end, so a carried excess is the one those caps produced.
    Raises ``pricing.InvalidRevenueInput`` for a bad period.
    """
    start, end = period_bounds(period)
    earliest = min(
        (
            at
            for at in (
                session.scalar(
                    sa.select(sa.func.min(Payment.settled_at)).where(
                        Payment.status == PaymentState.settled.value, Payment.settled_at < end
                    )
                ),
                session.scalar(
                    sa.select(sa.func.min(Refund.created_at)).where(Refund.created_at < end)
                ),
            )
            if at is not None
        ),
        default=None,
    )
    first = period if earliest is None or earliest >= start else period_of(earliest)
    months = _months(first, period)[-MAX_CARRY_MONTHS:]
    first_start, _first_end = period_bounds(months[0])
    money, items, providers = _revenue(session, first_start, end)
    share_of = agreed_shares(session, providers) if share is None else _uniform(share)
    by_month: dict[str, list[_Money]] = defaultdict(list)
    for m in money:
        by_month[period_of(m.at)].append(m)
    carried: dict[tuple[str, str], int] = {}
    rows: tuple[pricing.RevenueCapRow, ...] = ()
    version = 0
    for month in months:
        _month_start, month_end = period_bounds(month)
        param_row = parameters_in_force(session, month_end)
        version = param_row.version
        rows = pricing.revenue_cap_report(
            month,
            _entries(by_month[month], items, providers, share_of),
            parameters_of(param_row),
            carried,
        )
        carried = pricing.carry_forward(rows)
    return CapReport(
        period=period,
        params_version=version,
        rows=rows,
        carried_from=months[0] if len(months) > 1 else None,
    )


def over_cap_categories(session: Session, now: dt.datetime | None = None) -> frozenset[str]:
    """Categories whose operator income this period (with the excess carried in) has reached
    the cap in force: new quotes in them get the over-cap reduction until the month ends."""
    report = revenue_cap_report(session, current_period(now))
    return frozenset(
        row.category
        for row in report.rows
        if row.party == pricing.OPERATOR
        and row.cap_fen is not None
        and row.counted_fen >= row.cap_fen
    )


def party_names(session: Session, parties: Iterable[str]) -> dict[str, str | None]:
    """Organization names of ``department:<id>`` parties (None for the operator)."""
    wanted: dict[str, int] = {}
    for party in parties:
        suffix = party.removeprefix(DEPARTMENT_PREFIX)
        if party.startswith(DEPARTMENT_PREFIX) and suffix.isdigit():
            wanted[party] = int(suffix)
    names: dict[int, str] = {}
    if wanted:
        stmt = sa.select(Organization.id, Organization.name).where(
            Organization.id.in_(set(wanted.values()))
        )
        names = {org_id: name for org_id, name in session.execute(stmt)}
    return {party: names.get(wanted[party]) if party in wanted else None for party in parties}
