"""Dashboard panels: the buyer's licenses, the operator's queues, a department's revenue, the
regulator's blacklist."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from licenses import ledger
from licenses.models import BlacklistEntry, License, Payment, PaymentState
from licenses.states import LicenseStatus
from market.db import utcnow
from market.extensions import db
from market.web import registry


@registry.panel("my_licenses", roles={"buyer"}, title=_l("My licenses"), order=20)
def _my_licenses_panel(user):
    rows = db.session.execute(
        sa.select(License.status, sa.func.count())
        .where(License.buyer_org_id == user.organization_id)
        .group_by(License.status)
    ).all()
    return {"counts": dict(rows), "total": sum(n for _, n in rows)}


@registry.panel("license_queue", roles={"operator"}, title=_l("License applications"), order=35)
def _license_queue_panel(user):
    pending = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(License)
        .where(License.status == LicenseStatus.PENDING_REVIEW.value)
    )
    return {"pending": pending}


@registry.panel("settlements", roles={"operator"}, title=_l("Invoices to settle"), order=36)
def _settlements_panel(user):
    count, total = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Payment.amount_fen), 0)).where(
            Payment.provider == "invoice", Payment.status == PaymentState.pending.value
        )
    ).one()
    return {"count": count, "total": int(total)}


@registry.panel("revenue", roles={"department"}, title=_l("Revenue"), order=30)
def _revenue_panel(user):
    period = ledger.period_of(utcnow())
    statement = ledger.statement(db.session, user.organization, period)
    return {"period": period, "statement": statement}


@registry.panel("blacklist", roles={"regulator"}, title=_l("Blacklist"), order=40)
def _blacklist_panel(user):
    return {"count": db.session.scalar(sa.select(sa.func.count()).select_from(BlacklistEntry))}
