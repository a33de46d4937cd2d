"""Concurrent settlements and webhook deliveries, with real commits in threads: exactly one
activation and one set of ledger entries (run on PostgreSQL too: MARKET_TEST_DB=postgres)."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from tests.conftest import valid_uscc
from tests.licenses_app.test_stripe import event, signed

SECRET = "whsec_concurrency"


def _seed(app, n: int) -> dict:
    """Operator, buyer, department, one dataset and a license awaiting payment (committed)."""
    from licenses import services
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db
    from market.quotes.models import Quote

    system = Actor.system("test")
    with app.app_context():
        orgs = {
            kind: accounts.create_organization(
                db.session,
                system,
                name=f"{kind}-{n}",
                kind=kind,
                credit_code=valid_uscc(5000 + 10 * n + i),
                check=False,
            )
            for i, kind in enumerate(("operator", "buyer", "department"))
        }
        users = {
            kind: accounts.create_user(
                db.session,
                system,
                email=f"{kind}{n}@conc.example.cn",
                password="long-password-1",
                organization_id=orgs[kind].id,
                check=False,
            )
            for kind in ("operator", "buyer")
        }
        dataset = Dataset(
            slug=f"conc_{n}",
            department_id=orgs["department"].id,
            title="t",
            description="",
            category="c",
            open_grade="open",
            status="listed",
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(dataset_id=dataset.id, version=1, status="listed", filename="f")
        version.columns = [DatasetColumn(position=0, name="k", type="string", role="entity_key")]
        db.session.add(version)
        quote = Quote(
            buyer_org_id=orgs["buyer"].id,
            params_version=1,
            model_version="t",
            purpose="research",
            duration_months=6,
            query_quota=100,
            total_fen=50_000,
            items=[
                {
                    "dataset_id": dataset.id,
                    "dataset_version": 1,
                    "columns": None,
                    "amount": 50_000,
                    "factors": {},
                }
            ],
            document={},
            signature="s",
            key_id="k",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        )
        db.session.add(quote)
        db.session.flush()
        lic = services.apply_for_license(
            db.session,
            Actor.from_user(users["buyer"]),
            quote_id=quote.id,
            purpose_statement="concurrency",
        )
        token, _ = accounts.issue_token(db.session, users["operator"], dt.timedelta(hours=1))
        db.session.commit()
        return {"license_id": lic.id, "buyer": Actor.from_user(users["buyer"]), "token": token}


def _run(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _check_single_activation(app, license_id: int) -> None:
    from licenses import ledger
    from licenses.models import LedgerJournal, License
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    with app.app_context():
        assert db.session.get(License, license_id).status == "active"
        settled = db.session.scalars(
            sa.select(LedgerJournal).where(LedgerJournal.kind == "payment_settled")
        ).all()
        assert len(settled) == 1
        activations = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.type == "license.activated")
        )
        assert activations == 1
        debit, credit = ledger.totals(db.session)
        assert debit == credit
        assert verify_chain(db.session, public_keys()).valid
        db.session.remove()


def test_concurrent_invoice_settlements_activate_once(live_app):
    from licenses import payments
    from market.extensions import db

    seed = _seed(live_app, 1)
    with live_app.app_context():
        payment, _, _ = payments.create_payment(
            db.session, seed["buyer"], seed["license_id"], "invoice", config=live_app.config
        )
        payment_id = payment.id
        db.session.commit()
        db.session.remove()

    def settle(i: int) -> int:
        r = live_app.test_client().post(
            f"/api/v1/payments/{payment_id}/settle",
            json={"bank_reference": f"BANK-{i}"},
            headers={"Authorization": f"Bearer {seed['token']}"},
        )
        return r.status_code

    statuses = _run(6, settle)
    assert sorted(statuses) == [200] + [409] * 5, statuses
    _check_single_activation(live_app, seed["license_id"])


def test_concurrent_webhook_deliveries_and_replays_activate_once(live_app):
    from licenses.models import Payment, WebhookEvent
    from market.extensions import db

    live_app.config.update(STRIPE_API_KEY="sk_test_unused", STRIPE_WEBHOOK_SECRET=SECRET)
    seed = _seed(live_app, 2)
    with live_app.app_context():
        payment = Payment(
            license_id=seed["license_id"],
            provider="stripe",
            status="pending",
            amount_fen=50_000,
            currency="CNY",
            reference="pay_concurrency",
            provider_id="pi_concurrency",
            refunded_fen=0,
        )
        db.session.add(payment)
        db.session.commit()
        # Two distinct events about the same intent (Stripe may send both), each delivered
        # three times at once.
        deliveries = [signed(event("payment_intent.succeeded", payment), SECRET) for _ in range(2)]
        db.session.remove()

    def deliver(i: int):
        payload, header = deliveries[i % 2]
        r = live_app.test_client().post(
            "/api/v1/payments/stripe/webhook",
            data=payload,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
        return r.status_code, r.get_json().get("outcome")

    results = _run(6, deliver)
    assert all(status == 200 for status, _ in results), results
    outcomes = sorted(outcome for _, outcome in results)
    assert outcomes == [
        "already_settled",
        "duplicate",
        "duplicate",
        "duplicate",
        "duplicate",
        "settled",
    ], outcomes
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 2
        db.session.remove()
    _check_single_activation(live_app, seed["license_id"])


def test_concurrent_applications_and_payouts(live_app):
    """One quote, many applications at once: one license. One balance, many payouts at once:
    never more paid out than owed."""
    from licenses import ledger, payments
    from licenses.models import License
    from market.accounts import services as accounts
    from market.accounts.models import Organization, User
    from market.extensions import db
    from market.quotes.models import Quote

    seed = _seed(live_app, 3)
    with live_app.app_context():
        first = db.session.get(License, seed["license_id"])
        old = db.session.get(Quote, first.quote_id)
        quote = Quote(
            buyer_org_id=old.buyer_org_id,
            params_version=1,
            model_version="t",
            purpose="research",
            duration_months=6,
            query_quota=100,
            total_fen=50_000,
            items=old.items,
            document={},
            signature="s",
            key_id="k",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        )
        db.session.add(quote)
        buyer = db.session.scalar(sa.select(User).where(User.organization_id == old.buyer_org_id))
        buyer_token, _ = accounts.issue_token(db.session, buyer, dt.timedelta(hours=1))
        payment, _, _ = payments.create_payment(
            db.session, seed["buyer"], seed["license_id"], "invoice", config=live_app.config
        )
        db.session.commit()
        quote_id, payment_id = quote.id, payment.id
        department_id = db.session.scalar(
            sa.select(Organization.id).where(Organization.name == "department-3")
        )
        db.session.remove()

    def apply(i: int) -> int:
        return (
            live_app.test_client()
            .post(
                "/api/v1/licenses",
                json={"quote_id": quote_id, "purpose_statement": f"race {i}"},
                headers={"Authorization": f"Bearer {buyer_token}"},
            )
            .status_code
        )

    assert sorted(_run(5, apply)) == [201, 409, 409, 409, 409]

    operator = {"Authorization": f"Bearer {seed['token']}"}
    r = live_app.test_client().post(
        f"/api/v1/payments/{payment_id}/settle", json={"bank_reference": "B"}, headers=operator
    )
    assert r.status_code == 200
    with live_app.app_context():
        owed = ledger.department_payable(db.session, department_id)
        db.session.remove()
    assert owed == 45_000

    def payout(i: int) -> int:
        return (
            live_app.test_client()
            .post(
                "/api/v1/revenue/payouts",
                json={"department_id": department_id, "amount": 30_000, "reference": f"TRF-{i}"},
                headers=operator,
            )
            .status_code
        )

    assert sorted(_run(5, payout)) == [201, 409, 409, 409, 409]
    with live_app.app_context():
        assert ledger.department_payable(db.session, department_id) == 15_000
        db.session.remove()
