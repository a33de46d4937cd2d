"""Revenue per category against its cap (NDRC 发改价格〔2025〕65号: revenue above the cap is
deducted in the next period).

What counts as revenue, for now: **activated licenses**. A license counts in the month its
term starts (``starts_at``, a calendar month in Asia/Shanghai) when it is active, expired or
suspended, at its full price. That is when a settled payment turns it active, so it matches
settled payments except for refunds; once the payments ledger exists, this is the one
function to switch over to it.

Parties: ``operator`` receives every licence's whole price (the operator's gross sales, which
is what the operator revenue cap limits), and each providing department ``department:<id>``
the part of each item it provides (by ``DatasetContributor`` weight, or the owning
department). Each license's price is apportioned over its items in proportion to the item
amounts, by largest remainder, so a bundle discount is shared and nothing is lost to rounding.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

import pricing
from licenses.models import License, LicenseItem
from licenses.split import apportion
from market.accounts.models import Organization
from market.datasets.models import Dataset, DatasetContributor
from market.quotes.parameters import parameters_in_force, parameters_of

#: License states whose price counts as revenue of the month the license started.
COUNTED_STATUSES = ("active", "expired", "suspended")
#: What the report says it counts, so that a reader never mistakes it for cash received.
BASIS = "activated_licenses"
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
class _Item:
    license_id: int
    starts_at: dt.datetime
    price_total_fen: int
    dataset_id: int
    amount_fen: int
    category: str


def _items(session: Session, start: dt.datetime, end: dt.datetime) -> list[_Item]:
    stmt = (
        sa.select(
            License.id,
            License.starts_at,
            License.price_total_fen,
            LicenseItem.dataset_id,
            LicenseItem.amount_fen,
            Dataset.category,
        )
        .join(LicenseItem, LicenseItem.license_id == License.id)
        .join(Dataset, Dataset.id == LicenseItem.dataset_id)
        .where(
            License.status.in_(COUNTED_STATUSES),
            License.starts_at >= start,
            License.starts_at < end,
        )
        .order_by(License.id, LicenseItem.id)
    )
    return [_Item(*row) for row in session.execute(stmt)]


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


def _entries(
    items: list[_Item], providers: Mapping[int, Mapping[int, int]]
) -> list[pricing.RevenueEntry]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    by_license: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        by_license[item.license_id].append(item)
    for lic_items in by_license.values():
        price = lic_items[0].price_total_fen
        weights = {i: it.amount_fen for i, it in enumerate(lic_items)}
        if not any(weights.values()):
            weights = dict.fromkeys(weights, 1)  # a priced license of free items: share evenly
        for i, share in apportion(price, weights).items():
            item = lic_items[i]
            totals[(pricing.OPERATOR, item.category)] += share
            for dept, part in apportion(share, providers.get(item.dataset_id, {})).items():
                totals[(department_party(dept), item.category)] += part
    return [
        pricing.RevenueEntry(party, category, amount)
        for (party, category), amount in sorted(totals.items())
    ]


def revenue_by_category(session: Session, period: str) -> list[pricing.RevenueEntry]:
    """Revenue of ``period`` per (party, category), from activated licenses (see module doc).

    Raises ``pricing.InvalidRevenueInput`` for a bad period.
    """
    start, end = period_bounds(period)
    items = _items(session, start, end)
    return _entries(items, _providers(session, (i.dataset_id for i in items)))


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


def revenue_cap_report(session: Session, period: str) -> CapReport:
    """Each party's revenue per category in ``period`` against the caps in force at the end of
    that month, with the excess carried in from earlier months and the excess to deduct next.

    Earlier months are replayed (at most :data:`MAX_CARRY_MONTHS`), each with the parameter
    version in force at its end, so a carried excess is the one those caps produced.
    Raises ``pricing.InvalidRevenueInput`` for a bad period.
    """
    start, end = period_bounds(period)
    earliest = session.scalar(
        sa.select(sa.func.min(License.starts_at)).where(
            License.status.in_(COUNTED_STATUSES), License.starts_at < end
        )
    )
    first = period if earliest is None or earliest >= start else period_of(earliest)
    months = _months(first, period)[-MAX_CARRY_MONTHS:]
    first_start, _ = period_bounds(months[0])
    items = _items(session, first_start, end)
    providers = _providers(session, (i.dataset_id for i in items))
    by_month: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        by_month[period_of(item.starts_at)].append(item)
    carried: dict[tuple[str, str], int] = {}
    rows: tuple[pricing.RevenueCapRow, ...] = ()
    version = 0
    for month in months:
        _, month_end = period_bounds(month)
        param_row = parameters_in_force(session, month_end)
        version = param_row.version
        rows = pricing.revenue_cap_report(
            month, _entries(by_month[month], providers), parameters_of(param_row), carried
        )
        carried = pricing.carry_forward(rows)
    return CapReport(
        period=period,
        params_version=version,
        rows=rows,
        carried_from=months[0] if len(months) > 1 else None,
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
