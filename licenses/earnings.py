"""A department's revenue per dataset and per license, for its revenue page.

The ledger books a payment's split per department (one line per department and journal), not
per dataset. The share of one journal that a department's dataset earned is rebuilt exactly as
the split made it: the department's part of each license item is proportional to the item's
amount times the department's contributor weight in that dataset (``payments.revenue_split``),
so the department's line is apportioned over its datasets by those weights with the same
largest-remainder method. The per-dataset amounts of a journal therefore sum exactly to the
department's line, and the per-dataset totals to the statement's revenue less refunds.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licenses import journal as jr
from licenses.models import LedgerJournal, LedgerLine, License
from licenses.split import apportion


@dataclass
class DatasetEarnings:
    dataset_id: int
    title: str
    revenue: int = 0
    refunds: int = 0
    licenses: set[int] = field(default_factory=set)

    @property
    def net(self) -> int:
        return self.revenue - self.refunds


@dataclass
class LicenseEarnings:
    license_id: int
    buyer: str
    status: str
    #: ``[(dataset_id, title, net amount)]`` in dataset order.
    datasets: list[tuple[int, str, int]]
    revenue: int = 0
    refunds: int = 0

    @property
    def net(self) -> int:
        return self.revenue - self.refunds


@dataclass
class Earnings:
    by_dataset: list[DatasetEarnings]
    by_license: list[LicenseEarnings]
    #: journal id → ``[(dataset_id, title, amount)]``: what each statement entry paid for.
    by_journal: dict[int, list[tuple[int, str, int]]]


def _weights(lic: License, department_id: int) -> dict[int, Fraction]:
    """The department's weight in each dataset of ``lic``: item amount × its contributor share."""
    weights: dict[int, Fraction] = defaultdict(Fraction)
    for item in lic.items:
        dataset = item.dataset
        contributors = [(c.department_id, c.weight) for c in dataset.contributors] or [
            (dataset.department_id, 1)
        ]
        total = sum(Fraction(w) for _d, w in contributors)
        mine = sum(Fraction(w) for d, w in contributors if d == department_id)
        if total and mine:
            weights[item.dataset_id] += Fraction(item.amount_fen) * mine / total
    return dict(weights)


def earnings(
    session: Session, department_id: int, start: dt.datetime, end: dt.datetime
) -> Earnings:
    """Revenue and refunds of ``department_id`` posted in ``[start, end)``, per dataset and per
    license. Payouts are not per dataset and are left out."""
    rows = session.execute(
        sa.select(LedgerJournal.id, LedgerJournal.kind, LedgerJournal.license_id,
                  sa.func.sum(LedgerLine.credit_fen - LedgerLine.debit_fen))
        .join(LedgerLine, LedgerLine.journal_id == LedgerJournal.id)
        .where(
            LedgerLine.department_id == department_id,
            LedgerJournal.posted_at >= start,
            LedgerJournal.posted_at < end,
            LedgerJournal.license_id.is_not(None),
            LedgerJournal.kind.in_([jr.JournalKind.PAYMENT_SETTLED, jr.JournalKind.REFUND_ISSUED]),
        )
        .group_by(LedgerJournal.id, LedgerJournal.kind, LedgerJournal.license_id)
        .order_by(LedgerJournal.id)
    ).all()
    license_ids = {r[2] for r in rows}
    licenses = {
        lic.id: lic
        for lic in session.scalars(sa.select(License).where(License.id.in_(license_ids)))
    } if license_ids else {}
    datasets: dict[int, DatasetEarnings] = {}
    per_license: dict[int, LicenseEarnings] = {}
    per_license_dataset: dict[tuple[int, int], int] = defaultdict(int)
    by_journal: dict[int, list[tuple[int, str, int]]] = {}
    for journal_id, kind, license_id, amount in rows:
        lic = licenses[license_id]
        titles = {item.dataset_id: item.dataset.title for item in lic.items}
        weights = _weights(lic, department_id)
        if not weights or not amount:
            continue
        shares = apportion(abs(int(amount)), weights)
        sign = 1 if amount > 0 else -1
        by_journal[journal_id] = [(d, titles[d], sign * s) for d, s in shares.items()]
        entry = per_license.setdefault(
            license_id,
            LicenseEarnings(license_id, lic.buyer.name, lic.status, []),
        )
        for dataset_id, share in shares.items():
            row = datasets.setdefault(dataset_id, DatasetEarnings(dataset_id, titles[dataset_id]))
            row.licenses.add(license_id)
            if kind == jr.JournalKind.PAYMENT_SETTLED:
                row.revenue += sign * share
                entry.revenue += sign * share
            else:
                row.refunds += -sign * share
                entry.refunds += -sign * share
            per_license_dataset[(license_id, dataset_id)] += sign * share
    for (license_id, dataset_id), net in sorted(per_license_dataset.items()):
        titles = {i.dataset_id: i.dataset.title for i in licenses[license_id].items}
        per_license[license_id].datasets.append((dataset_id, titles[dataset_id], net))
    return Earnings(
        by_dataset=sorted(datasets.values(), key=lambda d: (-d.net, d.dataset_id)),
        by_license=sorted(per_license.values(), key=lambda e: e.license_id),
        by_journal=by_journal,
    )
