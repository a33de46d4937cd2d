"""The demo's default authorization agreements: one per department, before any listing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from market.agreements.models import Agreement, AgreementStatus
from market.agreements.services import seed_default_agreement
from market.db import utcnow
from market.extensions import db


def seed_demo_agreements(demo: Any, report: Any) -> None:
    """Signing each department's default authorization agreement"""
    now = utcnow()
    for org in report.orgs.values():
        if org.kind != "department":
            continue
        exists = db.session.scalar(
            sa.select(Agreement.id).where(
                Agreement.department_id == org.id,
                Agreement.status == AgreementStatus.active,
                Agreement.ends_at > now,
            ).limit(1)
        )
        if exists is None:
            agreement = seed_default_agreement(db.session, org, now=now)
            report.notes.append(
                f"agreement {agreement.number}: {org.name}, department share "
                f"{agreement.revenue_share_bps / 100:.0f}%"
            )
