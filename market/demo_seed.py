"""Seeding the demo, idempotently, from the Faker population in :mod:`market.demo`.

``seed_demo`` creates the organizations and users, then runs each step in ``DEMO_STEPS``
(publishing the departments' datasets, a license, a consent…). Each area appends its step;
a step takes ``(demo, report)`` and must be safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from market.accounts import services
from market.accounts.actor import Actor
from market.accounts.models import Organization, User
from market.extensions import db

DEMO_ACTOR = Actor.system("demo")


@dataclass
class DemoReport:
    #: (role, e-mail, password, organization name) for every seeded account.
    accounts: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: Free-form lines printed after the accounts ("3 datasets listed", …).
    notes: list[str] = field(default_factory=list)
    orgs: dict[str, Organization] = field(default_factory=dict)


#: Later seeding steps, in order: ``step(demo, report) -> None``.
DEMO_STEPS: list[Callable[[Any, DemoReport], None]] = []


def _ensure_org(key: str, kind: str, name: str, credit_code: str) -> Organization:
    org = db.session.scalar(sa.select(Organization).where(Organization.credit_code == credit_code))
    if org is None:
        org = services.create_organization(
            db.session, DEMO_ACTOR, name=name, kind=kind, credit_code=credit_code, check=False
        )
    return org


def seed_demo(rows: int = 2000, progress: Callable[[str], None] | None = None) -> DemoReport:
    """Create the demo organizations and users if missing, then run the later steps."""
    from market.demo import generate

    say = progress or (lambda _msg: None)
    say(f"Generating the demo population ({rows} enterprises)…")
    demo = generate(rows=rows)
    report = DemoReport()
    for org in demo.all_organizations():
        report.orgs[org.key] = _ensure_org(org.key, str(org.kind), org.name_zh, org.credit_code)
    for user in demo.users:
        org = report.orgs[user.organization_key]
        if db.session.scalar(sa.select(User).where(User.email == user.email)) is None:
            services.create_user(
                db.session, DEMO_ACTOR, email=user.email, password=user.password,
                organization_id=org.id, check=False,
            )
        report.accounts.append((str(user.role), user.email, user.password, org.name))
    db.session.commit()
    for step in DEMO_STEPS:
        say(f"Seeding: {getattr(step, '__doc__', None) or step.__name__}")
        step(demo, report)
        db.session.commit()
    return report


def _register_steps() -> None:
    # Datasets first: the later steps (licenses, consents…) need listed datasets.
    from market.datasets.demo import publish_demo_datasets

    DEMO_STEPS.insert(0, publish_demo_datasets)
    # Before the datasets: a dataset is listed only under an authorization agreement.
    from market.agreements.demo import seed_demo_agreements

    DEMO_STEPS.insert(0, seed_demo_agreements)


_register_steps()


def _register_consent_step() -> None:
    # Last: it needs the listed datasets, and makes its own license and consent.
    from market.consents.demo import seed_consent_demo

    DEMO_STEPS.append(seed_consent_demo)


_register_consent_step()


def _register_scenario_step() -> None:
    # Before the consented lookups: the demo bank's 普惠金融 product license is the one its
    # consent is seeded on (market.scenarios.demo).
    from market.consents.demo import seed_consent_demo
    from market.scenarios.demo import seed_scenario_demo

    DEMO_STEPS.insert(DEMO_STEPS.index(seed_consent_demo), seed_scenario_demo)


_register_scenario_step()
