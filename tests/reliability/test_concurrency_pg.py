"""Concurrency on PostgreSQL, with figures: what the invariants withstand under real threads.

Each test fires a burst of simultaneous requests (threads released by a barrier) at an app on
a database of its own with real commits (``live_app``), then checks the invariant and prints
the burst's elapsed time, throughput and per-request latency (``-s`` shows them; they are
also written to ``test-output/bench-concurrency.json``):

- 50 sandbox queries against a quota of 10: exactly 10 answered, 40 refused with 429.
- 20 settlements of one invoice: one 200, nineteen 409; one activation, one ledger journal.
- 20 Stripe webhook deliveries (two events, replayed): one activation, one ledger journal.
- 20 payments of one credit note: one 200, nineteen 409; one ledger journal.
- 100 audited requests: exactly 100 new events in one unbroken chain.

Run: ``MARKET_TEST_DB=postgres .venv/bin/python -m pytest tests/reliability/test_concurrency_pg.py -s``.
On SQLite every write takes the database lock up front, so the races these tests look for
cannot happen there; the areas' own concurrency tests cover SQLite.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pytest
import sqlalchemy as sa

from tests.conftest import BACKEND, valid_uscc
from tests.reliability.conftest import build_world, stripe_signature

pg_only = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="row locks and advisory locks are what these bursts test; SQLite serializes "
    "every writer up front (run with MARKET_TEST_DB=postgres)",
)

WEBHOOK_SECRET = "whsec_reliability_concurrency"
_figures: dict[str, dict] = {}


@dataclass
class Burst:
    name: str
    requests: int
    elapsed_s: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    statuses: dict[int, int]

    def line(self) -> str:
        return (
            f"{self.name}: {self.requests} requests in {self.elapsed_s:.2f} s "
            f"({self.throughput_rps:.1f} req/s), latency p50 {self.p50_ms:.0f} ms, "
            f"p95 {self.p95_ms:.0f} ms, max {self.max_ms:.0f} ms, statuses {self.statuses}"
        )


def burst(name: str, n: int, work: Callable[[int], int]) -> tuple[Burst, list[int]]:
    """Run ``work(i)`` in ``n`` threads released at once; returns figures and statuses."""
    barrier = threading.Barrier(n + 1)
    statuses: list[int] = [0] * n
    latencies: list[float] = [0.0] * n

    def worker(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            statuses[i] = work(i)
        finally:
            latencies[i] = time.perf_counter() - started

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(timeout=300)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "a request hung"
    ordered = sorted(latencies)
    figures = Burst(
        name=name,
        requests=n,
        elapsed_s=elapsed,
        throughput_rps=n / elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p95_ms=ordered[max(0, int(round(0.95 * n)) - 1)] * 1000,
        max_ms=ordered[-1] * 1000,
        statuses=dict(sorted(Counter(statuses).items())),
    )
    _figures[name] = asdict(figures)
    print("\n" + figures.line())
    return figures, statuses


@pytest.fixture(scope="module", autouse=True)
def _write_figures(output_dir):
    yield
    if _figures:
        path = output_dir / "bench-concurrency.json"
        path.write_text(json.dumps({"backend": BACKEND, "bursts": _figures}, indent=2))


@pytest.fixture
def seeded(live_app):
    from market.extensions import db

    with live_app.app_context():
        world = build_world(live_app, db.session)
        db.session.remove()
    return world


def _bearer(world, role: str) -> dict[str, str]:
    return world.caller(role)


def _chain_ok(app) -> tuple[bool, int, list[int]]:
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    with app.app_context():
        seqs = db.session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        valid = verify_chain(db.session, public_keys()).valid
        db.session.remove()
    return valid, len(seqs), seqs


def _activation_count(app, license_id: int) -> tuple[str, int, int, tuple[int, int]]:
    from licenses import ledger
    from licenses.models import LedgerJournal, License
    from market.audit.models import AuditEvent
    from market.extensions import db

    with app.app_context():
        status = db.session.get(License, license_id).status
        journals = db.session.scalar(
            sa.select(sa.func.count()).select_from(LedgerJournal)
            .where(LedgerJournal.kind == "payment_settled", LedgerJournal.license_id == license_id)
        )
        activations = db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(
                AuditEvent.type == "license.activated",
                AuditEvent.subject_id == str(license_id),
            )
        )
        totals = ledger.totals(db.session)
        db.session.remove()
    return status, journals, activations, totals


# ------------------------------------------------------------------------------- tests


@pytest.mark.postgres
@pg_only
def test_fifty_sandbox_queries_against_a_quota_of_ten(live_app, seeded):
    from licenses.models import License
    from market.datasets.models import Dataset
    from market.extensions import db
    from tests.sandbox_app import data

    try:
        from sandbox import app_engine
    except ImportError:
        pytest.skip("the sandbox app side is not registered yet")
    with live_app.app_context():
        dataset = db.session.get(Dataset, seeded.of("A", "dataset_listed"))
        lic = data.license_for(db.session, seeded.of("A", "buyer"), [(dataset, None)], quota=10)
        db.session.commit()
        license_id, slug = lic.id, dataset.slug
        db.session.remove()
    sql = f"SELECT district, COUNT(*) AS n FROM {slug} GROUP BY district"
    headers = _bearer(seeded, "buyer")

    def query(i: int) -> int:
        r = live_app.test_client().post(
            f"/api/v1/sandbox/{license_id}/queries", json={"sql": sql}, headers=headers)
        return r.status_code

    try:
        _, statuses = burst("sandbox: 50 queries, quota 10", 50, query)
    finally:
        app_engine.close_engine(live_app)
    assert Counter(statuses) == {200: 10, 429: 40}, Counter(statuses)
    with live_app.app_context():
        assert db.session.get(License, license_id).quota_remaining == 0
        db.session.remove()
    valid, _, _ = _chain_ok(live_app)
    assert valid


@pytest.mark.postgres
@pg_only
def test_twenty_concurrent_settlements_activate_once(live_app, seeded):
    license_id = seeded.of("A", "license_awaiting")
    payment_id = seeded.of("A", "payment_open")
    headers = _bearer(seeded, "operator")
    journals_before = _activation_count(live_app, license_id)[1]

    def settle(i: int) -> int:
        r = live_app.test_client().post(
            f"/api/v1/payments/{payment_id}/settle", json={"bank_reference": f"BANK-RACE-{i}"},
            headers=headers)
        return r.status_code

    _, statuses = burst("settle: 20 settlements of one invoice", 20, settle)
    assert Counter(statuses) == {200: 1, 409: 19}, Counter(statuses)
    status, journals, activations, (debit, credit) = _activation_count(live_app, license_id)
    assert status == "active" and journals_before == 0
    assert journals == 1 and activations == 1
    assert debit == credit
    assert _chain_ok(live_app)[0]


@pytest.mark.postgres
@pg_only
def test_twenty_concurrent_credit_note_payments_post_once(live_app, seeded):
    from licenses.models import LedgerJournal, Refund
    from market.extensions import db

    refund_id = seeded.of("A", "credit_note")
    headers = _bearer(seeded, "operator")

    def pay(i: int) -> int:
        r = live_app.test_client().post(
            f"/api/v1/refunds/{refund_id}/pay", json={"reference": f"TRF-RACE-{i}"},
            headers=headers)
        return r.status_code

    _, statuses = burst("credit note: 20 payments of one credit note", 20, pay)
    assert Counter(statuses) == {200: 1, 409: 19}, Counter(statuses)
    with live_app.app_context():
        refund = db.session.get(Refund, refund_id)
        journals = db.session.scalars(
            sa.select(LedgerJournal).where(
                LedgerJournal.kind == "credit_note_paid", LedgerJournal.refund_id == refund_id
            )
        ).all()
        assert refund.status == "paid" and len(journals) == 1
        assert journals[0].memo == refund.paid_reference
        db.session.remove()
    assert _chain_ok(live_app)[0]


@pytest.mark.postgres
@pg_only
def test_twenty_concurrent_webhook_deliveries_activate_once(live_app, seeded):
    from licenses import services
    from licenses.models import Payment, WebhookEvent
    from market.extensions import db

    live_app.config.update(STRIPE_API_KEY="sk_test_unused", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with live_app.app_context():
        lic = services.apply_for_license(
            db.session, seeded.users["buyer"], quote_id=seeded.of("A", "quote"),
            purpose_statement="webhook race")
        payment = Payment(
            license_id=lic.id, provider="stripe", status="pending", amount_fen=lic.price_total_fen,
            currency="CNY", reference=f"pay_{uuid.uuid4().hex[:12]}",
            provider_id=f"pi_{uuid.uuid4().hex[:12]}", refunded_fen=0,
        )
        db.session.add(payment)
        db.session.commit()
        license_id = lic.id
        events = []
        for _ in range(2):  # Stripe may send two events about one intent; each is replayed
            body = {
                "id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event",
                "type": "payment_intent.succeeded", "created": int(time.time()),
                "livemode": False,
                "data": {"object": {
                    "id": payment.provider_id, "object": "payment_intent",
                    "amount": payment.amount_fen, "currency": "cny", "status": "succeeded",
                    "metadata": {"payment_ref": payment.reference}}},
            }
            events.append(json.dumps(body).encode())
        db.session.remove()

    def deliver(i: int) -> int:
        payload = events[i % 2]
        r = live_app.test_client().post(
            "/api/v1/payments/stripe/webhook", data=payload,
            headers={"Stripe-Signature": stripe_signature(payload, WEBHOOK_SECRET),
                     "Content-Type": "application/json"})
        return r.status_code

    _, statuses = burst("webhook: 20 deliveries of 2 events", 20, deliver)
    assert set(statuses) == {200}, Counter(statuses)
    status, journals, activations, (debit, credit) = _activation_count(live_app, license_id)
    assert status == "active" and journals == 1 and activations == 1
    assert debit == credit
    with live_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent)) == 2
        db.session.remove()
    assert _chain_ok(live_app)[0]


@pytest.mark.postgres
@pg_only
def test_hundred_concurrent_audited_requests_keep_one_chain(live_app, seeded):
    headers = _bearer(seeded, "operator")
    valid, before, _ = _chain_ok(live_app)
    assert valid

    def create(i: int) -> int:
        r = live_app.test_client().post(
            "/api/v1/organizations", headers=headers,
            json={"name": f"race-{i}", "kind": "buyer", "credit_code": valid_uscc(990_000 + i)})
        return r.status_code

    _, statuses = burst("audit: 100 audited requests", 100, create)
    assert Counter(statuses) == {201: 100}, Counter(statuses)
    valid, after, seqs = _chain_ok(live_app)
    assert valid
    assert after == before + 100
    assert seqs == list(range(1, after + 1))  # no gap, no fork


def test_figures_are_sane():
    """The figures printed above come from ``burst``: check its arithmetic on a tiny run."""
    figures, statuses = burst("self-check: 8 no-op requests", 8, lambda i: 204)
    assert statuses == [204] * 8 and figures.statuses == {204: 8}
    assert figures.p50_ms <= figures.p95_ms <= figures.max_ms
    _figures.pop("self-check: 8 no-op requests")

