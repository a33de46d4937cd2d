"""Demo seeding step: the demo bank (buyer_ccb) holds an active license over the listed tax,
HRSS and market-supervision datasets, and the demo enterprise has granted it consent, so a
consented lookup can be tried at once.

The license goes through the real flow (quote → application → operator review → invoice →
settlement), each step audited. Idempotent: an active license of the bank over those datasets
and a valid consent are reused. Without the listed datasets (the datasets step did not run or
failed) the step only adds a note.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import current_app

from licenses import payments
from licenses import services as licenses
from licenses.models import License, LicenseItem, Payment
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.accounts.models import Organization, User
from market.consents import services
from market.consents.models import Consent, ConsentStatus
from market.datasets.models import Dataset, VersionStatus
from market.db import utcnow
from market.extensions import db

#: The departments whose datasets the demo license covers (market.demo keys).
DEPARTMENTS = ("tax", "hrss", "market_supervision")
BUYER = "buyer_ccb"
DURATION_MONTHS = 12
QUERY_QUOTA = 1000
CONSENT_DAYS = 180


def _user_actor(org: Organization) -> Actor | None:
    user = db.session.scalar(
        sa.select(User).where(User.organization_id == org.id).order_by(User.id).limit(1)
    )
    return Actor.from_user(user) if user is not None else None


def _listed(org: Organization) -> Dataset | None:
    return db.session.scalar(
        sa.select(Dataset)
        .where(Dataset.department_id == org.id, Dataset.status == VersionStatus.listed.value)
        .order_by(Dataset.id.desc())
        .limit(1)
    )


def _existing_license(buyer: Organization, dataset_ids: set[int]) -> License | None:
    for lic in db.session.scalars(
        sa.select(License)
        .where(License.buyer_org_id == buyer.id, License.status == LicenseStatus.ACTIVE.value)
        .order_by(License.id.desc())
    ):
        covered = set(
            db.session.scalars(
                sa.select(LicenseItem.dataset_id).where(LicenseItem.license_id == lic.id)
            )
        )
        if dataset_ids <= covered and (lic.ends_at is None or lic.ends_at > utcnow()):
            return lic
    return None


def _new_license(buyer: Actor, operator: Actor, datasets: list[Dataset]) -> License:
    from market.quotes import services as quotes

    quote = quotes.create_quote(
        db.session,
        buyer,
        quotes.QuoteRequest(
            items=tuple(quotes.ItemRequest(d.id) for d in datasets),
            duration_months=DURATION_MONTHS,
            purpose="internal_risk_control",
            query_quota=QUERY_QUOTA,
        ),
    )
    lic = licenses.apply_for_license(
        db.session,
        buyer,
        quote_id=quote.id,
        purpose_statement="普惠金融小微企业授信审查：经企业授权查询其纳税、社保和登记信息。",
    )
    if lic.status == LicenseStatus.PENDING_REVIEW:
        licenses.review_license(db.session, operator, lic.id, decision="approve", comment="demo")
    if lic.status == LicenseStatus.AWAITING_PAYMENT:
        config = current_app.config
        payment, _provided, _created = payments.create_payment(
            db.session, buyer, lic.id, "invoice", config=config
        )
        payments.settle_invoice(
            db.session, operator, payment.id, f"DEMO-{payment.id:06d}", config=config
        )
    db.session.refresh(lic)
    return lic


def _consent(lic: License, buyer: Actor, subject: Actor, code: str) -> tuple[Consent, bool]:
    now = utcnow()
    found = db.session.scalar(
        sa.select(Consent).where(
            Consent.license_id == lic.id,
            Consent.subject_credit_code == code,
            sa.or_(
                Consent.status == ConsentStatus.requested.value,
                sa.and_(Consent.status == ConsentStatus.granted.value, Consent.valid_until > now),
            ),
        )
    )
    created = found is None
    if found is None:
        until = now + dt.timedelta(days=CONSENT_DAYS)
        if lic.ends_at is not None:
            until = min(until, lic.ends_at)
        found = services.request_consent(
            db.session,
            buyer,
            license_id=lic.id,
            subject_credit_code=code,
            purpose="流动资金贷款授信审查 (demo)",
            valid_until=until,
        )
    if found.status == ConsentStatus.requested:
        services.decide_consent(db.session, subject, found.id, decision="grant")
    return found, created


def seed_consent_demo(demo: Any, report: Any) -> None:
    """Granting the demo bank a consented-lookup license and the demo enterprise's consent"""
    orgs = report.orgs
    missing = [k for k in (BUYER, "operator", "subject", *DEPARTMENTS) if k not in orgs]
    if missing:
        report.notes.append(f"consented lookups: skipped (no demo organization {missing[0]})")
        return
    datasets = [_listed(orgs[k]) for k in DEPARTMENTS]
    if any(d is None for d in datasets):
        absent = [k for k, d in zip(DEPARTMENTS, datasets, strict=True) if d is None]
        report.notes.append(
            "consented lookups: skipped, the demo datasets are not listed yet "
            f"({', '.join(absent)})"
        )
        return
    buyer, operator, subject = (_user_actor(orgs[k]) for k in (BUYER, "operator", "subject"))
    if buyer is None or operator is None or subject is None:
        report.notes.append("consented lookups: skipped (a demo account is missing)")
        return

    lic = _existing_license(orgs[BUYER], {d.id for d in datasets})
    reused = lic is not None
    if lic is None:
        lic = _new_license(buyer, operator, datasets)
    if lic.status != LicenseStatus.ACTIVE:
        paid = db.session.scalar(
            sa.select(sa.func.count()).select_from(Payment).where(Payment.license_id == lic.id)
        )
        report.notes.append(
            f"consented lookups: license {lic.id} is {lic.status} ({paid} payment(s)); "
            "no consent seeded"
        )
        return
    consent, created = _consent(lic, buyer, subject, demo.subject.credit_code)
    report.notes.append(
        f"consented lookups: license {lic.id} ({'existing' if reused else 'new'}, "
        f"{', '.join(d.slug for d in datasets)}) and consent {consent.id} "
        f"({'new' if created else 'existing'}) from {demo.subject.name_zh} "
        f"{demo.subject.credit_code}: sign in as the bank and open /lookups"
    )
