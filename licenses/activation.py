"""Turning a license active: its term, and its signed ODRL document.

Used by the license services (free licenses activate on application or approval) and by
payment settlement.
"""

from __future__ import annotations

import calendar
import datetime as dt

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from licenses import odrl
from licenses.models import License
from licenses.states import LicenseEvent, transition
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.db import iso, utcnow
from market.errors import Conflict
from market.keys import signing_key


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` plus calendar months, the day clamped to the target month's length
    (31 January + 1 month = 28 or 29 February). Computed in UTC."""
    utc = moment.astimezone(dt.UTC)
    index = utc.month - 1 + months
    year, month = utc.year + index // 12, index % 12 + 1
    day = min(utc.day, calendar.monthrange(year, month)[1])
    return utc.replace(year=year, month=month, day=day)


def operator_organization(session: Session) -> Organization:
    """The platform operator (授权运营单位): the first organization of kind ``operator``.

    Raises Conflict if there is none (a platform set-up error, not the caller's).
    """
    org = session.scalar(
        sa.select(Organization).where(Organization.kind == "operator").order_by(Organization.id)
    )
    if org is None:
        raise Conflict(_("The platform has no operator organization to issue licenses."))
    return org


def build_document(session: Session, lic: License) -> odrl.SignedPolicy:
    """The license's ODRL Agreement, signed with the platform key (needs starts/ends)."""
    from market.agreements.services import covering_agreement

    operator = operator_organization(session)
    buyer = lic.buyer

    def asset(item) -> odrl.LicensedAsset:
        dataset = item.dataset
        department = dataset.department
        agreement = covering_agreement(session, dataset, lic.starts_at)
        return odrl.LicensedAsset(
            item.dataset_id,
            item.dataset_version,
            list(item.columns),
            security_level=dataset.security_level,
            rights_holder=odrl.PolicyParty(department.id, department.name, department.credit_code),
            agreement=agreement.number if agreement is not None else None,
        )

    policy = odrl.build_policy(
        license_id=lic.id,
        assigner=odrl.PolicyParty(operator.id, operator.name, operator.credit_code),
        assignee=odrl.PolicyParty(buyer.id, buyer.name, buyer.credit_code),
        assets=[asset(item) for item in lic.items],
        purpose=lic.purpose,
        starts_at=lic.starts_at,
        ends_at=lic.ends_at,
        query_quota=lic.query_quota,
        price_fen=lic.price_total_fen,
    )
    return odrl.sign_policy(signing_key().private, policy)


def activate(
    session: Session,
    lic: License,
    actor: Actor,
    *,
    now: dt.datetime | None = None,
    payment_id: int | None = None,
) -> License:
    """Move an awaiting-payment license to active: set its term from ``now`` and sign its
    document. The caller holds the license row lock.

    Raises IllegalTransition (→ 409) unless the license is awaiting payment.
    """
    lic.status = transition(lic.status, LicenseEvent.PAY_SETTLED).value
    # Whole seconds: the term is printed on the license document.
    start = (now or utcnow()).replace(microsecond=0)
    lic.starts_at = start
    lic.ends_at = add_months(start, lic.duration_months)
    signed = build_document(session, lic)
    lic.document = signed["policy"]
    lic.signature = signed["signature"]
    lic.key_id = signed["public_key_id"]
    session.flush()
    audit.record(
        session,
        "license.activated",
        actor,
        ("license", lic.id),
        {
            "starts_at": iso(lic.starts_at),
            "ends_at": iso(lic.ends_at),
            "payment_id": payment_id,
            "price": lic.price_total_fen,
            "key_id": lic.key_id,
        },
    )
    return lic
