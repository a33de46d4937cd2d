"""Figures for the regulator's dashboards, computed from the audit chain and the ledger.

Read-only; every figure comes from records the regulator can also verify or export.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from market.accounts.models import Organization
from market.audit.models import AuditEvent
from market.db import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Event families shown on the "transactions over time" chart.
FAMILIES = ("dataset", "quote", "license", "payment", "sandbox", "lookup", "consent")


def transactions_by_day(session: Session, days: int = 30, now: dt.datetime | None = None) -> dict[str, Any]:
    """Daily event counts per family over the last ``days`` Shanghai days."""
    now = now or utcnow()
    today = now.astimezone(SHANGHAI).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=SHANGHAI).astimezone(dt.UTC)
    labels = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    counts: dict[str, Counter] = {f: Counter() for f in FAMILIES}
    rows = session.execute(sa.select(AuditEvent.at, AuditEvent.type).where(AuditEvent.at >= start))
    for at, type_ in rows:
        family = type_.split(".", 1)[0]
        if family in counts:
            counts[family][at.astimezone(SHANGHAI).date().isoformat()] += 1
    return {"labels": labels, "series": {f: [counts[f][d] for d in labels] for f in FAMILIES}}


def revenue_by_department(session: Session) -> list[dict[str, Any]]:
    """Each department's revenue to date (credits minus debits on its payable, payouts aside)."""
    try:
        from licenses.models import LedgerJournal, LedgerLine
    except ImportError:  # pragma: no cover - licenses is part of the app
        return []
    stmt = (
        sa.select(
            Organization.id,
            Organization.name,
            sa.func.coalesce(sa.func.sum(LedgerLine.credit_fen - LedgerLine.debit_fen), 0),
        )
        .join(LedgerLine, LedgerLine.department_id == Organization.id)
        .join(LedgerJournal, LedgerJournal.id == LedgerLine.journal_id)
        .where(LedgerJournal.kind != "payout")
        .group_by(Organization.id, Organization.name)
        .order_by(Organization.name)
    )
    return [{"department_id": i, "name": n, "amount": int(a)} for i, n, a in session.execute(stmt)]


def queries_by_license(session: Session, limit: int = 20_000) -> dict[str, Any]:
    """Accepted and refused sandbox queries per license, and the most frequent refusal rules."""
    per_license: dict[str, Counter] = defaultdict(Counter)
    rules: Counter = Counter()
    stmt = (
        sa.select(AuditEvent.subject_id, AuditEvent.data)
        .where(AuditEvent.type == "sandbox.query")
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    for license_id, data in session.execute(stmt):
        decision = (data or {}).get("decision") or "unknown"
        per_license[license_id or "?"]["ok" if decision == "ok" else "refused"] += 1
        if decision != "ok" and (data or {}).get("rule"):
            rules[data["rule"]] += 1
    licenses = sorted(per_license, key=lambda k: (len(k), k))
    return {
        "licenses": licenses,
        "ok": [per_license[k]["ok"] for k in licenses],
        "refused": [per_license[k]["refused"] for k in licenses],
        "rules": rules.most_common(10),
    }


def dashboard(session: Session) -> dict[str, Any]:
    return {
        "transactions": transactions_by_day(session),
        "revenue": revenue_by_department(session),
        "queries": queries_by_license(session),
    }
