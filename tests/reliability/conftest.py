"""A small, complete marketplace for the reliability tests: two of everything.

``world`` builds, inside the rolled-back ``app`` fixture, side ``A`` (the callers' own
organizations) and side ``B`` (somebody else's): departments with a listed, an unlisted and a
conditional dataset, buyers with an unused quote and licenses in each state a matrix row needs
(active and paid with a credit note to pay back, awaiting payment with an open invoice, pending
review, suspended), data
subjects with a requested and a granted consent, and a pending organization awaiting
admission. One user per role on side A holds an API token.

Everything goes through the ORM or the areas' own services (so every state is a real one) and
is committed; the ``app`` fixture rolls it all back after the test.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from market.accounts.actor import Actor
from tests.conftest import module_data
from tests.sandbox_app import data as sandbox_data

ROLES = ("department", "buyer", "operator", "regulator", "subject")
#: The callers of every matrix row and fuzzing run; "anonymous" sends no token.
CALLERS = ("anonymous", *ROLES)

_serial = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _close_sandbox_engines():
    """The sandbox's DuckDB worker processes outlive a test; stop them at the end."""
    yield
    try:
        from sandbox import app_engine
    except ImportError:  # pragma: no cover - the sandbox app side not registered
        return
    app_engine.close_all()


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header as Stripe computes it (HMAC-SHA256 of ``t.payload``)."""
    import hashlib
    import hmac
    import time

    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@functools.cache
def password_hash() -> str:
    """Argon2 is slow on purpose: hash the test password once per session."""
    from market.accounts.services import hash_password
    from tests.conftest import PASSWORD

    return hash_password(PASSWORD)


@dataclass
class World:
    """Ids of everything, by side (``"A"`` own, ``"B"`` other) and name, plus tokens."""

    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, dict[str, Any]] = field(default_factory=lambda: {"A": {}, "B": {}})
    shared: dict[str, Any] = field(default_factory=dict)

    def caller(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else dict(self.headers[role])

    def of(self, side: str, name: str) -> Any:
        return self.ids[side][name]


def _org(session, kind: str, side: str, status: str = "active", name: str | None = None):
    from market.accounts.models import Organization
    from tests.conftest import valid_uscc

    n = next(_serial)
    org = Organization(
        name=name or f"rel-{kind}-{side}-{n}",
        kind=kind,
        credit_code=valid_uscc(800_000 + n),
        status=status,
    )
    session.add(org)
    session.flush()
    return org


def _user(session, org):
    from market.accounts.models import User

    user = User(
        email=f"rel{next(_serial)}@{org.kind}.reliability.example.cn",
        password_hash=password_hash(),
        organization=org,
    )
    session.add(user)
    session.flush()
    return user


def _quote(session, buyer_org_id: int, dataset, amount: int = 120_000, purpose: str = "research"):
    from market.quotes.models import Quote

    quote = Quote(
        buyer_org_id=buyer_org_id,
        params_version=1,
        model_version="reliability",
        purpose=purpose,
        duration_months=6,
        query_quota=50,
        total_fen=amount,
        currency="CNY",
        items=[
            {
                "dataset_id": dataset.id,
                "dataset_version": 1,
                "columns": None,
                "amount": amount,
                "factors": {"base": str(amount)},
            }
        ],
        document={"reliability": True},
        signature="x" * 86,
        key_id="0" * 16,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7),
    )
    session.add(quote)
    session.flush()
    return quote


def _unlisted(session, department, side: str, data_dir: Path):
    """A dataset awaiting review, over a Parquet file of its own (a treatment change may
    rewrite it)."""
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion

    n = next(_serial)
    key = f"reliability/unlisted_{side.lower()}_{n}.parquet"
    path = data_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    sandbox_data.firms_frame()[["fk", "district"]].to_parquet(path, index=False)
    ds = Dataset(
        slug=f"unlisted_{side.lower()}_{n}",
        department_id=department.id,
        title=f"Unlisted {side} {n}",
        description="awaiting review",
        category="enterprise",
        open_grade="open",
        entity_key="fk",
        status="pending_review",
    )
    session.add(ds)
    session.flush()
    version = DatasetVersion(
        dataset_id=ds.id,
        version=1,
        status="pending_review",
        filename="unlisted.csv",
        row_count=60,
        quality_score=80,
        parquet_path=key,
        report={
            "columns": [
                {"name": "fk", "type": "string", "pii_kind": None, "treatment": "pseudonymized"},
                {"name": "district", "type": "string", "pii_kind": None, "treatment": "none"},
            ]
        },
    )
    version.columns = [
        DatasetColumn(position=0, name="fk", type="string", role="entity_key",
                      treatment="pseudonymized"),
        DatasetColumn(position=1, name="district", type="string", role="dimension",
                      treatment="none"),
    ]
    session.add(version)
    session.flush()
    ds.current_version_id = version.id
    session.flush()
    return ds


def _consent(session, license_id: int, buyer_org_id: int, subject_org, status: str):
    from market.consents.models import Consent

    now = dt.datetime.now(dt.UTC)
    consent = Consent(
        license_id=license_id,
        buyer_org_id=buyer_org_id,
        subject_credit_code=subject_org.credit_code,
        subject_org_id=subject_org.id,
        purpose="SME loan application",
        valid_until=now + dt.timedelta(days=30),
        status=status,
        decided_at=now if status != "requested" else None,
    )
    session.add(consent)
    session.flush()
    return consent


def build_callers(session) -> World:
    """One user per role, each in an organization of its own (side A), with a token; no
    other object. Committed."""
    from market.accounts import services as accounts
    from market.accounts.actor import Actor

    world = World()
    for role in ROLES:
        org = _org(session, role, "A")
        user = _user(session, org)
        world.users[role] = Actor.from_user(user)
        world.ids["A"][role] = org.id
        world.shared[f"{role}_org"] = org.id
        if role == "buyer":
            world.ids["A"]["buyer_email"] = user.email
        token, _ = accounts.issue_token(session, user, dt.timedelta(hours=1))
        world.headers[role] = {"Authorization": f"Bearer {token}"}
    session.commit()
    return world


def build_world(app, session) -> World:
    """Both sides of the marketplace on top of ``build_callers``; committed."""
    from licenses import blacklist, payment_refunds, payments, services
    from market.accounts.models import Organization
    from market.quotes import parameters

    config = app.config
    data_dir = Path(config["MARKET_DATA_DIR"])
    world = build_callers(session)
    parameters.current_parameter_set(session)  # pricing parameter version 1
    operator, regulator = world.users["operator"], world.users["regulator"]

    for side in ("A", "B"):
        ids = world.ids[side]
        if side == "A":
            department = session.get(Organization, ids["department"])
            buyer_org = session.get(Organization, ids["buyer"])
            subject_org = session.get(Organization, ids["subject"])
            buyer = world.users["buyer"]
        else:
            department = _org(session, "department", side)
            buyer_org = _org(session, "buyer", side)
            subject_org = _org(session, "subject", side)
            buyer_user = _user(session, buyer_org)
            ids["buyer_email"] = buyer_user.email
            buyer = Actor.from_user(buyer_user)
        pending = _org(session, "buyer", side, status="pending")
        n = next(_serial)
        listed = sandbox_data.dataset(
            session, data_dir, "firms", slug=f"firms_{side.lower()}_{n}", department=department
        )
        conditional = sandbox_data.dataset(
            session, data_dir, "loans", slug=f"loans_{side.lower()}_{n}", department=department
        )
        unlisted = _unlisted(session, department, side, data_dir)
        for ds in (listed, conditional):
            ds.current_version.quality_score = 85  # priceable

        def licensed(dataset, *, amount=120_000, purpose="research", _buyer=buyer,
                     _org_id=buyer_org.id):
            quote = _quote(session, _org_id, dataset, amount=amount, purpose=purpose)
            return services.apply_for_license(
                session, _buyer, quote_id=quote.id, purpose_statement="reliability tests",
                free_use_justification="reliability tests" if amount == 0 else None,
            )

        active = licensed(listed)
        paid, _, _ = payments.create_payment(session, buyer, active.id, "invoice", config=config)
        payments.settle_invoice(session, operator, paid.id, f"BANK-{side}-{n}", config=config)
        # A partial refund of an invoice payment: a credit note the operator has to pay back.
        credit_note = payment_refunds.refund_payment(
            session, operator, paid.id, 1_000, "reliability tests", config=config
        )
        # A Stripe refund that failed on revocation: a pending credit note to retry. Its
        # PaymentIntent id is not one, so a retry fails before any network call.
        from licenses.models import Payment, Refund

        stripe_paid = Payment(
            license_id=licensed(listed).id, provider="stripe", status="settled",
            amount_fen=5_000, currency="CNY", reference=f"pay_matrix_{side}_{n}",
            provider_id=f"matrix_intent_{side}_{n}", refunded_fen=1_000,
            settled_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )
        session.add(stripe_paid)
        session.flush()
        failed_refund = Refund(
            payment_id=stripe_paid.id, license_id=stripe_paid.license_id, amount_fen=1_000,
            provider_refund_id=f"CN-MATRIX-{side}-{n}", credit_note_number=f"CN-MATRIX-{side}-{n}",
            status="pending", reason="reliability tests", provider_ref=f"pay_matrix_{side}_{n}-r1",
            attempts=1, last_error="matrix",
        )
        session.add(failed_refund)
        session.flush()
        awaiting = licensed(listed)
        open_payment, _, _ = payments.create_payment(
            session, buyer, awaiting.id, "invoice", config=config
        )
        review = licensed(conditional)
        # Free (public welfare): whitelisted buyer, approved by the operator; no payment
        # needed to suspend it.
        from licenses import welfare

        welfare.add(session, operator, buyer_org.id, "reliability tests")
        suspended = licensed(listed, amount=0, purpose="public_welfare")
        services.review_license(session, operator, suspended.id, decision="approve")
        services.suspend_license(session, regulator, suspended.id, "reliability tests")
        unused_quote = _quote(session, buyer_org.id, listed)
        banned = _org(session, "buyer", side)
        blacklist.add(session, regulator, banned.id, "reliability tests")
        requested = _consent(session, active.id, buyer_org.id, subject_org, "requested")
        granted = _consent(session, active.id, buyer_org.id, subject_org, "granted")
        # A pending proposal of ceilings and caps (it belongs to no organization).
        from market.quotes.models import PricingProposal

        proposal = PricingProposal(
            changes={"default_ceiling_fen": 7_000_000 + next(_proposals)},
            based_on_version=1,
            status="pending",
        )
        session.add(proposal)
        session.flush()
        ids.update(
            pricing_proposal=proposal.id,
            department=department.id,
            buyer=buyer_org.id,
            subject=subject_org.id,
            subject_code=subject_org.credit_code,
            pending_org=pending.id,
            blacklisted_org=banned.id,
            welfare_body=buyer_org.id,
            welfare_candidate=pending.id,
            dataset_listed=listed.id,
            listed_slug=listed.slug,
            dataset_unlisted=unlisted.id,
            dataset_conditional=conditional.id,
            quote=unused_quote.id,
            license_active=active.id,
            license_awaiting=awaiting.id,
            license_review=review.id,
            license_suspended=suspended.id,
            payment_settled=paid.id,
            payment_open=open_payment.id,
            credit_note=credit_note.id,
            failed_refund=failed_refund.id,
            consent_requested=requested.id,
            consent_granted=granted.id,
        )
        ids.update(_agreements(session, world, side, department))
    session.commit()
    return world


def _agreements(session, world: World, side: str, department) -> dict[str, Any]:
    """A proposed agreement and a draft (with a registered key and its signature of the draft)
    of the side's department; its default active agreement lets its datasets be listed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from market.agreements import document
    from market.agreements import services as agreements

    agreements.seed_default_agreement(session, department)
    if side == "A":
        actor = world.users["department"]
    else:
        actor = Actor.from_user(_user(session, department))
    now = dt.datetime.now(dt.UTC)
    terms = agreements.Terms(["matrix"], [], now - dt.timedelta(days=1),
                             now + dt.timedelta(days=30), 8000)
    proposed = agreements.propose(session, actor, terms)
    draft = agreements.propose(session, actor, terms, custodial=False)
    key = Ed25519PrivateKey.generate()
    registered = agreements.register_key(
        session, actor, document.public_key_b64(key.public_key())
    )
    return {
        "agreement_proposed": proposed.id,
        "agreement_draft": draft.id,
        "draft_signature": {"key_id": registered.key_id,
                            "signature": document.sign_document(key, draft.document)},
    }


_proposals = itertools.count(1)


@pytest.fixture
def callers(app) -> World:
    """Just a token per role (cheap): for tests that need no marketplace objects."""
    from market.extensions import db

    return build_callers(db.session)


@pytest.fixture
def world(app) -> World:
    """Both sides of the marketplace (see the module docstring)."""
    from market.extensions import db

    return build_world(app, db.session)


def _build_shared_world(app) -> World:
    from market.extensions import db

    return build_world(app, db.session)


#: The same world, built once for a module (``tests.conftest.module_data``): for modules whose
#: tests change it only in the database, since each of their tests runs in a savepoint of the
#: module's transaction that is rolled back. A module opts in by overriding ``world`` with a
#: fixture that returns ``shared_world``.
shared_world = module_data(_build_shared_world)
