"""The monthly regulator report (监管报送): computed from the books and the audit log, signed
with the platform key, carrying the signed audit head it was computed from.

A report covers one calendar month in Asia/Shanghai (the revenue period of
``market.quotes.revenue``). It holds ids, names of organizations, counts and amounts only —
never personal data (the audit log holds none either). The signature covers the canonical JSON
of ``report`` (``market.crypto.canonical_json``); a verifier needs only ``cryptography`` (see
docs/license-verification.md).

What is counted, each over the month:
- licenses granted (``starts_at`` in the month), by category, by providing department, by
  scenario and by data product, with their item amounts (the scenario and product rows sum
  exactly to ``granted`` and ``amount_fen``); and applications made (``created_at``) by status
  now;
- revenue and caps: ``market.quotes.revenue.revenue_cap_report`` for the month (settled payments
  net of refunds; the operator's part is its fee at each department's agreed share), and the
  same money by scenario and by data product, each payment or refund split exactly as the
  totals split it, so that the rows sum exactly (in fen) to ``total_fen``, ``operator_fen`` and
  ``departments_fen``;
- sandbox queries by outcome and refusals by rule; privacy budget (epsilon) spent per buyer;
- consents (audit events by type) and lookups (rows; refusals from the audit log);
- suspensions, reinstatements, revocations, list and agreement changes, delistings (audit log);
- KPIs: datasets listed at the end of the month and at any time in it (replayed from the audited
  listing events, so a past month is not read from today's listings), buyers served, the share of revenue returned to
  departments, the p95 latency of sandbox queries (``sandbox_queries.elapsed_ms``) and of the
  API's HTTP requests (``market.metrics``: histogram buckets per route group, merged over every
  process; the p95 is the upper bound of its bucket, ``null`` without requests).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

import pricing
from licenses.models import License, LicenseItem
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.audit.models import AuditEvent
from market.consents.models import Lookup
from market.crypto import canonical_json, sign
from market.csvutil import safe_cell
from market.datasets.models import Dataset, DatasetContributor
from market.db import utcnow
from market.errors import Forbidden, ValidationFailed
from market.keys import signing_key
from market.metrics.histogram import merge, percentile
from market.metrics.recorder import flush_now, month_histogram
from market.quotes import revenue
from market.scenarios.models import DataProduct, Scenario
from sandbox.models import SandboxQuery

REPORT_TYPE = "regulator-monthly-report"
REPORT_VERSION = 1
#: The CSV row (``signature,signed_json,…``) and the PDF's Subject prefix carrying the signed JSON.
SIGNED_JSON_KEY = "signed_json"
PDF_SUBJECT_PREFIX = "market-signed-report:"

#: Audit event types listed under "suspensions and list changes".
GOVERNANCE_EVENTS = (
    "license.suspended",
    "license.reinstated",
    "license.revoked",
    "blacklist.added",
    "blacklist.removed",
    "lists.added",
    "lists.removed",
    "agreement.countersigned",
    "agreement.declined",
    "agreement.expired",
    "dataset.delisted",
    "dataset.relisted",
)
#: The audit events that list (True) or take off the catalogue (False) a dataset: the
#: listing history of "datasets listed". A new way of delisting must add its event here.
LISTING_EVENTS = {
    "dataset.listed": True,
    "dataset.relisted": True,
    "dataset.delisted": False,
    "dataset.withdrawn": False,
}
CONSENT_EVENTS = (
    "consent.requested",
    "consent.granted",
    "consent.denied",
    "consent.recorded",
    "consent.revoked",
)


def can_read_reports(actor: Actor) -> bool:
    """The regulator, to whom it is submitted, and the operator, who submits it."""
    return actor.is_user and actor.role in ("regulator", "operator")


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of ``period`` (``YYYY-MM``, Asia/Shanghai).

    Raises ValidationFailed for anything else.
    """
    try:
        return revenue.period_bounds(period)
    except (pricing.InvalidRevenueInput, ValueError):
        raise ValidationFailed(
            _("The period is a month written YYYY-MM."), {"period": [_("Use YYYY-MM.")]}
        ) from None


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(
        session.execute(
            sa.select(Organization.id, Organization.name).where(Organization.id.in_(wanted))
        ).all()
    )


def _licenses(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    granted = list(
        session.execute(
            sa.select(License.id, LicenseItem.dataset_id, LicenseItem.amount_fen,
                      Dataset.category, Dataset.department_id, License.scenario_id,
                      License.product_id)
            .join(LicenseItem, LicenseItem.license_id == License.id)
            .join(Dataset, Dataset.id == LicenseItem.dataset_id)
            .where(License.starts_at >= start, License.starts_at < end)
            .order_by(License.id, LicenseItem.id)
        ).all()
    )
    contributors: dict[int, list[int]] = defaultdict(list)
    dataset_ids = sorted({row.dataset_id for row in granted})
    if dataset_ids:
        for c in session.scalars(
            sa.select(DatasetContributor).where(DatasetContributor.dataset_id.in_(dataset_ids))
        ):
            contributors[c.dataset_id].append(c.department_id)
    by_cat: dict[str, dict[str, Any]] = {}
    by_dept: dict[int, dict[str, Any]] = {}
    for row in granted:
        cat = by_cat.setdefault(row.category, {"licenses": set(), "amount_fen": 0})
        cat["licenses"].add(row.id)
        cat["amount_fen"] += row.amount_fen
        for dept in sorted(set(contributors.get(row.dataset_id) or [row.department_id])):
            entry = by_dept.setdefault(dept, {"licenses": set(), "items": 0})
            entry["licenses"].add(row.id)
            entry["items"] += 1
    names = _names(session, by_dept)
    by_scenario: dict[int | None, dict[str, Any]] = {}
    by_product: dict[int | None, dict[str, Any]] = {}
    for row in granted:
        for groups, key in ((by_scenario, row.scenario_id), (by_product, row.product_id)):
            entry = groups.setdefault(key, {"licenses": set(), "amount_fen": 0})
            entry["licenses"].add(row.id)
            entry["amount_fen"] += row.amount_fen
    scenarios, products = _scenario_names(session), _product_names(session)
    applied = Counter(
        dict(
            session.execute(
                sa.select(License.status, sa.func.count(License.id))
                .where(License.created_at >= start, License.created_at < end)
                .group_by(License.status)
            ).all()
        )
    )
    return {
        "granted": len({row.id for row in granted}),
        "amount_fen": sum(row.amount_fen for row in granted),
        "applications_by_status": dict(sorted(applied.items())),
        "by_category": [
            {"category": c, "licenses": len(v["licenses"]), "amount_fen": v["amount_fen"]}
            for c, v in sorted(by_cat.items())
        ],
        "by_department": [
            {"department_id": d, "department": names.get(d), "licenses": len(v["licenses"]),
             "items": v["items"]}
            for d, v in sorted(by_dept.items())
        ],
        # A license has at most one scenario and one product: these rows partition the
        # licenses granted (``None``: bought without a scenario / a product).
        "by_scenario": [
            {"scenario_id": k, "scenario": scenarios.get(k), "licenses": len(v["licenses"]),
             "amount_fen": v["amount_fen"]}
            for k, v in sorted(by_scenario.items(), key=_none_last)
        ],
        "by_product": [
            {"product_id": k, "product": products.get(k), "licenses": len(v["licenses"]),
             "amount_fen": v["amount_fen"]}
            for k, v in sorted(by_product.items(), key=_none_last)
        ],
    }


def _none_last(item: tuple[int | None, Any]) -> tuple[bool, int]:
    return (item[0] is None, item[0] or 0)


def _scenario_names(session: Session) -> dict[int, str]:
    return dict(session.execute(sa.select(Scenario.id, Scenario.code)).all())


def _product_names(session: Session) -> dict[int, str]:
    return dict(session.execute(sa.select(DataProduct.id, DataProduct.code)).all())


@dataclass(frozen=True)
class GroupRevenue:
    """The money of one group of licenses in the month, split as the report's totals are."""

    key: int | None
    licenses: int
    operator_fen: int
    departments_fen: int

    @property
    def total_fen(self) -> int:
        return self.operator_fen + self.departments_fen


def revenue_by_group(
    money: Iterable[revenue._Money],
    items: Mapping[int, list[revenue._Item]],
    providers: Mapping[int, Mapping[int, int]],
    share_of: revenue.ShareOf,
    group_of: Mapping[int, int | None],
) -> list[GroupRevenue]:
    """The month's money grouped by ``group_of[license_id]`` (``None`` for a license missing
    from it). Each payment or refund is split into the operator's fee and the departments'
    rest on its own (``market.quotes.revenue`` entries), so the groups' sums equal the totals
    of the whole month exactly, in fen. Pure: raises nothing for well-formed input.

    (It reuses the revenue module's own split, ``_entries``, on purpose: one split, not two.)"""
    grouped: dict[int | None, list[revenue._Money]] = defaultdict(list)
    for m in money:
        if items.get(m.license_id):  # the totals skip a license without items too
            grouped[group_of.get(m.license_id)].append(m)
    out = []
    for key, ms in grouped.items():
        entries = revenue._entries(ms, items, providers, share_of)
        operator = sum(e.amount_fen for e in entries if e.party == pricing.OPERATOR)
        departments = sum(e.amount_fen for e in entries if e.party != pricing.OPERATOR)
        out.append(GroupRevenue(key, len({m.license_id for m in ms}), operator, departments))
    return sorted(out, key=lambda g: (g.key is None, g.key or 0))


def _revenue_groups(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    money, items, providers = revenue._revenue(session, start, end)
    share_of = revenue.agreed_shares(session, providers)
    ids = sorted({m.license_id for m in money})
    scenario_of: dict[int, int | None] = {}
    product_of: dict[int, int | None] = {}
    if ids:
        for lic_id, scenario_id, product_id in session.execute(
            sa.select(License.id, License.scenario_id, License.product_id)
            .where(License.id.in_(ids))
        ):
            scenario_of[lic_id], product_of[lic_id] = scenario_id, product_id
    names = {"scenario": _scenario_names(session), "product": _product_names(session)}

    def rows(kind: str, group_of: Mapping[int, int | None]) -> list[dict[str, Any]]:
        return [
            {f"{kind}_id": g.key, kind: names[kind].get(g.key) if g.key else None,
             "licenses": g.licenses, "total_fen": g.total_fen, "operator_fen": g.operator_fen,
             "departments_fen": g.departments_fen}
            for g in revenue_by_group(money, items, providers, share_of, group_of)
        ]

    return {"by_scenario": rows("scenario", scenario_of),
            "by_product": rows("product", product_of)}


def _revenue(session: Session, period: str) -> dict[str, Any]:
    start, end = bounds(period)
    report = revenue.revenue_cap_report(session, period)
    names = revenue.party_names(session, [r.party for r in report.rows])
    rows = [
        {
            "party": r.party,
            "department": names.get(r.party),
            "category": r.category,
            "revenue_fen": r.revenue_fen,
            "prior_excess_fen": r.prior_excess_fen,
            "cap_fen": r.cap_fen,
            "counted_fen": r.counted_fen,
            "excess_fen": r.excess_fen,
            "over_cap": r.over_cap,
        }
        for r in report.rows
    ]
    operator = sum(r.revenue_fen for r in report.rows if r.party == pricing.OPERATOR)
    departments = sum(r.revenue_fen for r in report.rows if r.party != pricing.OPERATOR)
    return {
        "basis": report.basis,
        "params_version": report.params_version,
        "rows": rows,
        "operator_fen": operator,
        "departments_fen": departments,
        "total_fen": operator + departments,
        **_revenue_groups(session, start, end),
    }


def _decimal_text(value: Decimal | int | None) -> str:
    return format(Decimal(value or 0).quantize(Decimal("0.0001")), "f")


def _p95(values: list[int]) -> int | None:
    """The nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _queries(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    in_month = (SandboxQuery.created_at >= start, SandboxQuery.created_at < end)
    by_status = dict(
        session.execute(
            sa.select(SandboxQuery.status, sa.func.count(SandboxQuery.id))
            .where(*in_month).group_by(SandboxQuery.status)
        ).all()
    )
    by_rule = dict(
        session.execute(
            sa.select(SandboxQuery.rule, sa.func.count(SandboxQuery.id))
            .where(*in_month, SandboxQuery.status == "refused")
            .group_by(SandboxQuery.rule)
        ).all()
    )
    spent = session.execute(
        sa.select(SandboxQuery.buyer_org_id, sa.func.sum(SandboxQuery.epsilon_spent),
                  sa.func.count(SandboxQuery.id))
        .where(*in_month, SandboxQuery.epsilon_spent > 0)
        .group_by(SandboxQuery.buyer_org_id)
    ).all()
    names = _names(session, (b for b, _, _ in spent))
    return {
        "total": sum(by_status.values()),
        "by_status": {k: by_status[k] for k in sorted(by_status)},
        "refusals_by_rule": {(k or "unspecified"): by_rule[k] for k in sorted(by_rule, key=str)},
        "privacy_budget_by_buyer": [
            {"buyer_id": b, "buyer": names.get(b), "epsilon_spent": _decimal_text(eps),
             "queries": n}
            for b, eps, n in sorted(spent, key=lambda r: r[0])
        ],
    }


def _events(session: Session, types: Iterable[str], start: dt.datetime, end: dt.datetime,
            until_seq: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.type.in_(list(types)), AuditEvent.at >= start, AuditEvent.at < end,
                   AuditEvent.seq <= until_seq)
            .order_by(AuditEvent.seq)
        )
    )


def _consents(session: Session, start: dt.datetime, end: dt.datetime,
              until_seq: int) -> dict[str, Any]:
    events = Counter(e.type for e in _events(session, CONSENT_EVENTS, start, end, until_seq))
    lookups = session.scalar(
        sa.select(sa.func.count(Lookup.id)).where(Lookup.created_at >= start,
                                                  Lookup.created_at < end)
    )
    refused = len(_events(session, ("lookup.refused",), start, end, until_seq))
    return {
        "events": {t.removeprefix("consent."): events.get(t, 0) for t in CONSENT_EVENTS},
        "lookups": lookups or 0,
        "lookups_refused": refused,
    }


def _governance(session: Session, start: dt.datetime, end: dt.datetime,
                until_seq: int) -> dict[str, Any]:
    events = _events(session, GOVERNANCE_EVENTS, start, end, until_seq)
    counts = Counter(e.type for e in events)
    return {
        "counts": {t: counts.get(t, 0) for t in GOVERNANCE_EVENTS},
        "events": [
            {"seq": e.seq, "at": iso(e.at), "type": e.type, "subject_type": e.subject_type,
             "subject_id": e.subject_id}
            for e in events
        ],
    }


def listing_history(session: Session, start: dt.datetime, end: dt.datetime,
                    until_seq: int) -> tuple[set[int], set[int]]:
    """The datasets listed at the end of ``[start, end)`` and those listed at any moment in it,
    replayed from the audit log (up to the report's head ``until_seq``), not read from today's
    ``Dataset.status``: a dataset delisted since still counts for the months it was listed.

    Raises nothing."""
    events = session.execute(
        sa.select(AuditEvent.subject_id, AuditEvent.type, AuditEvent.at)
        .where(AuditEvent.type.in_(list(LISTING_EVENTS)), AuditEvent.subject_type == "dataset",
               AuditEvent.at < end, AuditEvent.seq <= until_seq)
        .order_by(AuditEvent.seq)
    ).all()
    listed: set[int] = set()
    during: set[int] = set()
    started = False
    for subject_id, type_, at in events:
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        if not started and at >= start:
            during |= listed  # listed when the month began
            started = True
        dataset_id = int(subject_id)
        if LISTING_EVENTS[type_]:
            listed.add(dataset_id)
            if at >= start:
                during.add(dataset_id)
        else:
            listed.discard(dataset_id)
    if not started:
        during |= listed
    return listed, during


def _kpis(session: Session, start: dt.datetime, end: dt.datetime,
          money: dict[str, Any], until_seq: int) -> dict[str, Any]:
    at_end, during = listing_history(session, start, end, until_seq)
    served = set(
        session.scalars(
            sa.select(License.buyer_org_id).where(
                License.starts_at.is_not(None), License.starts_at < end,
                sa.or_(License.ends_at.is_(None), License.ends_at >= start),
            )
        )
    )
    served |= set(
        session.scalars(
            sa.select(SandboxQuery.buyer_org_id).where(
                SandboxQuery.created_at >= start, SandboxQuery.created_at < end
            )
        )
    )
    served |= set(
        session.scalars(
            sa.select(Lookup.buyer_org_id).where(Lookup.created_at >= start,
                                                 Lookup.created_at < end)
        )
    )
    latencies = [
        v for v in session.scalars(
            sa.select(SandboxQuery.elapsed_ms).where(
                SandboxQuery.created_at >= start, SandboxQuery.created_at < end,
                SandboxQuery.elapsed_ms.is_not(None),
            )
        )
    ]
    http = month_histogram(session, start, end)
    all_requests = merge(*http.values())
    total = money["total_fen"]
    # Basis points, rounded down: an exact integer, never a float.
    returned_bps = (money["departments_fen"] * 10_000) // total if total > 0 else None
    return {
        "datasets_listed": len(at_end),
        "datasets_listed_during_month": len(during),
        "buyers_served": len(served),
        "revenue_returned_to_departments_bps": returned_bps,
        "sandbox_query_p95_ms": _p95(latencies),
        "sandbox_queries_timed": len(latencies),
        # The app's own request-latency histogram (market.metrics), every process merged:
        # the upper bound of the bucket holding the 95th percentile of /api/ requests.
        "http_p95_ms": percentile(all_requests, 95),
        "http_requests_timed": sum(all_requests.values()),
        "http_latency_by_route_group": [
            {"route_group": group, "requests": sum(counts.values()),
             "p95_ms": percentile(counts, 95)}
            for group, counts in sorted(http.items())
        ],
    }


def build_report(session: Session, actor: Actor, period: str,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The signed report of ``period``: ``{report, signature, public_key_id}``.

    The audit head is taken (and signed, see ``market.audit.services.signed_head``) first; the
    events the report lists are those up to that head.

    Raises Forbidden (not the regulator or the operator), ValidationFailed (bad period, or a
    month that has not started).
    """
    if not can_read_reports(actor):
        raise Forbidden(_("Only the regulator and the operator read regulator reports."))
    start, end = bounds(period)
    now = now or utcnow()
    if start > now:
        raise ValidationFailed(
            _("The period has not started yet."), {"period": [_("Choose a past month.")]}
        )
    # This process's latency counts, written now so that the report sees them. The flush
    # writes on a connection of its own, so the caller's transaction ends first: on SQLite it
    # holds the database's write lock from its first statement (market.database), and the
    # flush would wait for it until the busy timeout (30 s), then give up without writing.
    # Nothing of the report has been read yet; what the request wrote before (its sign-in)
    # is committed, as the report view would commit it anyway.
    session.commit()
    flush_now(current_app._get_current_object())
    head = audit.signed_head(session)
    until_seq = head.seq if head else 0
    money = _revenue(session, period)
    report = {
        "type": REPORT_TYPE,
        "version": REPORT_VERSION,
        "period": period,
        "from": iso(start),
        "until": iso(end),
        "complete": end <= now,
        "generated_at": iso(now),
        "audit_head": head.to_dict() if head else None,
        "licenses": _licenses(session, start, end),
        "revenue": money,
        "queries": _queries(session, start, end),
        "consents": _consents(session, start, end, until_seq),
        "governance": _governance(session, start, end, until_seq),
        "kpis": _kpis(session, start, end, money, until_seq),
    }
    key = signing_key()
    return {"report": report, "signature": sign(key.private, report), "public_key_id": key.id}


def report_csv(signed: dict[str, Any]) -> str:
    """The report flattened to ``section,key,value`` rows, then the signature lines and the
    signed JSON (``signature,signed_json,…``): what verifies is that JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])

    def walk(section: str, prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k in value:
                walk(section, f"{prefix}.{k}" if prefix else str(k), value[k])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(section, f"{prefix}[{i}]", item)
        else:
            writer.writerow([section, prefix, "" if value is None else safe_cell(value)])

    report = signed["report"]
    for section, value in report.items():
        walk(section, "", value) if isinstance(value, dict | list) else writer.writerow(
            [section, "", "" if value is None else safe_cell(value)]
        )
    writer.writerow(["signature", "public_key_id", signed["public_key_id"]])
    writer.writerow(["signature", "ed25519", signed["signature"]])
    # The signed JSON itself, so that the file verifies offline on its own (the rows above
    # are its values for reading; a verifier checks this cell, then that the rows match it).
    writer.writerow(["signature", SIGNED_JSON_KEY, canonical_json(signed).decode("utf-8")])
    return out.getvalue()
