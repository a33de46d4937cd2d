"""#17.4 (money): payments and settlements raced across two app servers.

Two gunicorn instances on different ports share one PostgreSQL database, one Redis (rate
limits) and one Celery worker, as in ``test_two_app_servers``; localstripe stands in for
Stripe and delivers its webhooks to BOTH servers. Over HTTP, at once (threads released by a
barrier):

- the buyer asks for an invoice for each license on A and on B at the same moment: one
  invoice per license (one 201, the other answer is that same open invoice);
- the operator settles every invoice twice on A and twice on B at the same moment: exactly
  one 200 per invoice, the rest 409;
- a card payment confirmed at localstripe: its ``payment_intent.succeeded`` webhook reaches
  A and B at the same moment (two registered endpoints);
- a second card payment whose two signed events (Stripe may send two about one intent) are
  each delivered four times, alternately to A and B;
- two licenses revoked with a refund, twice on each server at once (one paid by invoice: a
  credit note; one by card: refunded at localstripe): one revocation and one refund each;
- the credit note paid back twice on each server at once: recorded once;
- each department's whole payable paid out twice on each server at once: one payout each,
  never more than owed.

Then, from the database, exactly: each license is active (or revoked), activated once; each payment has
exactly one ``payment_settled`` journal and one ``payment.settled`` event, and each invoice one
``invoice_issued`` journal; every journal balances; every settlement's split (the departments'
payables and the platform fee) sums to the payment's total in fen; there is no journal
beyond these and one refund per revoked license (nothing lost, nothing duplicated); one
credit note paid and one payout per department, each journal balanced; the whole ledger balances; the audit log is
one valid chain. PostgreSQL only (``MARKET_TEST_DB=postgres``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from tests.conftest import BACKEND, TEST_SECRETS
from tests.e2e import harness
from tests.licenses.conftest import localstripe  # noqa: F401 - the session's fake Stripe
from tests.scale.conftest import celery_env, start_worker
from tests.scale.test_two_app_servers import _gunicorn

WEBHOOK_SECRET = "whsec_two_servers_money"
INVOICES = 4
#: Settlement attempts per invoice, half on each server.
TRIES = 4
#: Item amounts (fen) of each license's two datasets, one per department: odd on purpose, so
#: that the fee share and the departments' parts need rounding.
AMOUNTS = [(100_003, 33_331), (77_777, 7), (12_345, 67_891), (99_999, 99_999),
           (1_001, 2_003), (55_555, 44_449)]
_serial = itertools.count(1)


def _call(base: str, method: str, path: str, headers: dict[str, str],
          body: dict | bytes | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers={
        "Accept-Language": "en", "Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _at_once(jobs: list) -> list:
    """Run the callables in ``jobs`` in threads released together; their results, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


def _signed(payload: bytes) -> str:
    ts = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.".encode() + payload, hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def _quote(session, buyer_org_id: int, datasets, amounts: tuple[int, int]):
    from market.quotes.models import Quote

    quote = Quote(
        buyer_org_id=buyer_org_id, params_version=1, model_version="two-servers",
        purpose="research", duration_months=6, query_quota=50, total_fen=sum(amounts),
        currency="CNY",
        items=[{"dataset_id": ds.id, "dataset_version": 1, "columns": None, "amount": amount,
                "factors": {"base": str(amount)}} for ds, amount in zip(datasets, amounts,
                                                                        strict=True)],
        document={"two_servers": True}, signature="x" * 86, key_id="0" * 16,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7),
    )
    session.add(quote)
    session.flush()
    return quote


def _seed(app) -> dict:
    """Operator and buyer with tokens; two departments with a dataset each; one license
    awaiting payment per entry of AMOUNTS, over both datasets. Committed."""
    from pathlib import Path

    from licenses import services
    from market.accounts.models import Organization
    from market.extensions import db
    from market.quotes import parameters
    from tests.reliability.conftest import _org, build_callers
    from tests.sandbox_app import data

    with app.app_context():
        session = db.session
        world = build_callers(session)
        parameters.current_parameter_set(session)
        first = session.get(Organization, world.ids["A"]["department"])
        second = _org(session, "department", "A")
        datasets = []
        for dept in (first, second):
            n = next(_serial)
            ds = data.dataset(session, Path(app.config["MARKET_DATA_DIR"]), "firms",
                              slug=f"firms_money_{n}_{uuid.uuid4().hex[:6]}", department=dept)
            ds.current_version.quality_score = 85
            datasets.append(ds)
        licenses = []
        for amounts in AMOUNTS:
            quote = _quote(session, world.ids["A"]["buyer"], datasets, amounts)
            lic = services.apply_for_license(session, world.users["buyer"], quote_id=quote.id,
                                             purpose_statement="two servers, one ledger")
            assert lic.status == "awaiting_payment", lic.status
            licenses.append(lic.id)
        session.commit()
        out = {"licenses": licenses, "buyer": world.headers["buyer"],
               "operator": world.headers["operator"],
               "departments": {first.id, second.id}}
        db.session.remove()
    return out


@pytest.fixture
def money_servers(celery_available, localstripe, live_app, tmp_path):  # noqa: F811
    if BACKEND != "postgres":
        pytest.skip("SKIPPED: two app servers share PostgreSQL: runs under MARKET_TEST_DB=postgres")
    seeded = _seed(live_app)
    env = celery_env(harness.instance_env(
        tmp_path / "instance", live_app.config["SQLALCHEMY_DATABASE_URI"],
        MARKET_DATA_DIR=live_app.config["MARKET_DATA_DIR"],
        STRIPE_API_KEY=localstripe.api_key,
        STRIPE_API_BASE=localstripe.base_url,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **TEST_SECRETS,
    ))
    worker = start_worker(env, tmp_path / "worker.log", queue=env["MARKET_CELERY_QUEUE"])
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(_gunicorn(env, tmp_path / f"gunicorn-{name}.log"))
        for server in servers:
            localstripe.register_webhook(
                f"two-servers-{server.port}-{uuid.uuid4().hex[:6]}",
                f"{server.url}/api/v1/payments/stripe/webhook", WEBHOOK_SECRET,
                events=["payment_intent.succeeded", "payment_intent.payment_failed"],
            )
        yield servers, seeded, localstripe
    finally:
        for server in servers:
            server.stop()
        worker.stop()


def _wait_active(base: str, headers: dict, license_id: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, lic = _call(base, "GET", f"/api/v1/licenses/{license_id}", headers)
        assert status == 200, lic
        if lic["status"] == "active":
            return
        assert time.monotonic() < deadline, f"license {license_id} never activated: {lic}"
        time.sleep(0.3)


def test_each_payment_settles_once_across_two_servers(money_servers, live_app):
    import stripe

    (a, b), seeded, fake_stripe = money_servers
    buyer, operator = seeded["buyer"], seeded["operator"]
    invoiced, card_webhook, card_burst = (seeded["licenses"][:INVOICES],
                                          seeded["licenses"][INVOICES],
                                          seeded["licenses"][INVOICES + 1])

    # 1. An invoice per license, asked for on both servers at once.
    asked = _at_once([
        (lambda lic=lic, srv=srv: _call(srv.url, "POST", f"/api/v1/licenses/{lic}/payments",
                                        buyer, {"provider": "invoice"}))
        for lic in invoiced for srv in (a, b)
    ])
    invoice_of = {}
    for lic, pair in zip(invoiced, (asked[i:i + 2] for i in range(0, len(asked), 2)),
                         strict=True):
        assert sorted(s for s, _ in pair) == [200, 201], pair
        ids = {body["payment_id"] for _, body in pair}
        assert len(ids) == 1, pair  # the second answer is the same open invoice
        invoice_of[lic] = ids.pop()

    # 2. Every invoice settled twice on each server, all at once.
    settled = _at_once([
        (lambda pid=pid, k=k: (pid, _call((a, b)[k % 2].url, "POST",
                                          f"/api/v1/payments/{pid}/settle", operator,
                                          {"bank_reference": f"BANK-{pid}-{k}"})))
        for pid in invoice_of.values() for k in range(TRIES)
    ])
    by_payment: dict[int, Counter] = {}
    for pid, (status, body) in settled:
        assert status in (200, 409), (status, body)
        by_payment.setdefault(pid, Counter())[status] += 1
    assert all(c == Counter({200: 1, 409: TRIES - 1}) for c in by_payment.values()), by_payment

    # 3. A card payment: localstripe delivers the webhook to A and B at once.
    status, paid = _call(a.url, "POST", f"/api/v1/licenses/{card_webhook}/payments", buyer,
                         {"provider": "stripe"})
    assert status == 201, paid
    intent = paid["client_secret"].split("_secret_")[0]
    http = stripe.RequestsClient(timeout=10)
    try:
        card = stripe.StripeClient(fake_stripe.api_key,
                                   base_addresses={"api": fake_stripe.base_url},
                                   max_network_retries=0, http_client=http)
        card.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
        card.v1.payment_intents.confirm(intent)
    finally:
        http.close()
    _wait_active(b.url, buyer, card_webhook)
    # localstripe posts the event to every registered endpoint: both servers got it.
    deadline = time.monotonic() + 30
    while not all("POST /api/v1/payments/stripe/webhook" in s.log_text() for s in (a, b)):
        assert time.monotonic() < deadline, "the webhook did not reach both servers"
        time.sleep(0.3)

    # 4. A card payment's two events, each delivered four times, to A and B alternately.
    status, paid = _call(b.url, "POST", f"/api/v1/licenses/{card_burst}/payments", buyer,
                         {"provider": "stripe"})
    assert status == 201, paid
    intent = paid["client_secret"].split("_secret_")[0]
    events = [json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event",
        "type": "payment_intent.succeeded", "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": intent, "object": "payment_intent",
                            "amount": paid["amount"], "currency": "cny",
                            "status": "succeeded", "metadata": {}}},
    }).encode() for _ in range(2)]
    delivered = _at_once([
        (lambda i=i: _call((a, b)[i % 2].url, "POST", "/api/v1/payments/stripe/webhook",
                           {"Stripe-Signature": _signed(events[(i // 2) % 2])},
                           events[(i // 2) % 2]))
        for i in range(8)
    ])
    assert {s for s, _ in delivered} == {200}, delivered
    outcomes = Counter(body.get("outcome") for _, body in delivered)
    assert outcomes["duplicate"] == 6, outcomes  # two events stored, six replays
    _wait_active(a.url, buyer, card_burst)

    # 5. Two licenses revoked with a refund, twice on A and twice on B at once: one paid by
    #    invoice (its refund is a credit note to pay back) and one by card (refunded at
    #    localstripe). One revocation each; the rest 409; one refund each.
    revoked = [invoiced[0], card_webhook]
    answers = _at_once([
        (lambda lic=lic, k=k: (lic, _call((a, b)[k % 2].url, "POST",
                                          f"/api/v1/licenses/{lic}/revoke", operator,
                                          {"reason": f"两台服务器并发撤销 {k}", "refund": True})))
        for lic in revoked for k in range(TRIES)
    ])
    by_license: dict[int, Counter] = {}
    for lic, (status, body) in answers:
        assert status in (200, 409), (status, body)
        by_license.setdefault(lic, Counter())[status] += 1
    assert all(c == Counter({200: 1, 409: TRIES - 1}) for c in by_license.values()), by_license

    # 6. The credit note paid back, twice on each server at once: recorded once.
    status, pending = _call(a.url, "GET", "/api/v1/refunds?status=pending", operator)
    assert status == 200, pending
    notes = [r for r in pending["items"] if r["license_id"] == invoiced[0]]
    assert len(notes) == 1, pending
    paid_back = _at_once([
        (lambda k=k: _call((a, b)[k % 2].url, "POST", f"/api/v1/refunds/{notes[0]['id']}/pay",
                           operator, {"reference": f"BANK-BACK-{k}"}))
        for k in range(TRIES)
    ])
    assert Counter(s for s, _ in paid_back) == Counter({200: 1, 409: TRIES - 1}), paid_back

    # 7. Each department paid out all it is owed, twice on each server at once: one payout
    #    each (never more than owed); the rest refused.
    owed = _payables(live_app, seeded["departments"])
    assert all(v > 0 for v in owed.values()), owed
    payouts = _at_once([
        (lambda dep=dep, k=k: (dep, _call((a, b)[k % 2].url, "POST", "/api/v1/revenue/payouts",
                                          operator, {"department_id": dep, "amount": owed[dep],
                                                     "reference": f"PAYOUT-{dep}-{k}"})))
        for dep in owed for k in range(TRIES)
    ])
    by_department: dict[int, Counter] = {}
    for dep, (status, body) in payouts:
        assert status in (201, 409, 422), (status, body)
        by_department.setdefault(dep, Counter())[status == 201] += 1
    assert all(c[True] == 1 for c in by_department.values()), payouts
    assert set(_payables(live_app, seeded["departments"]).values()) == {0}

    _assert_money_invariants(live_app, seeded, invoice_of, revoked=revoked,
                             departments_paid=len(owed))


def _payables(app, departments) -> dict[int, int]:
    from licenses import ledger
    from market.extensions import db

    with app.app_context():
        owed = {dep: ledger.department_payable(db.session, dep) for dep in sorted(departments)}
        db.session.remove()
    return owed


def _assert_money_invariants(app, seeded: dict, invoice_of: dict[int, int], *,
                             revoked: list[int], departments_paid: int) -> None:
    import sqlalchemy as sa

    from licenses import journal as jr
    from licenses import ledger
    from licenses.models import LedgerJournal, License, Payment, Refund
    from market.audit.models import AuditEvent
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    licenses = seeded["licenses"]
    with app.app_context():
        session = db.session
        session.expire_all()
        payments = session.scalars(
            sa.select(Payment).where(Payment.license_id.in_(licenses))
        ).all()
        settled = [p for p in payments if p.status == "settled"]
        assert sorted(p.license_id for p in settled) == sorted(licenses), payments
        assert {p.id for p in settled if p.provider == "invoice"} == set(invoice_of.values())
        assert all(p.status == "settled" for p in payments), [(p.id, p.status) for p in payments]
        journals = session.scalars(
            sa.select(LedgerJournal).where(LedgerJournal.license_id.in_(licenses))
        ).all()
        kinds = Counter((j.kind, j.payment_id) for j in journals)
        for p in settled:
            assert kinds[("payment_settled", p.id)] == 1, (p.id, kinds)
            if p.provider == "invoice":
                assert kinds[("invoice_issued", p.id)] == 1, (p.id, kinds)
        # One refund per revoked license, and nothing beyond one issue per invoice and one
        # settlement per payment.
        refunds = Counter(j.license_id for j in journals if j.kind == "refund_issued")
        assert refunds == Counter(revoked), refunds
        # (+1: the credit note paid back, which names its license.)
        assert len(journals) == len(settled) + len(invoice_of) + len(revoked) + 1, kinds
        assert session.scalar(sa.select(sa.func.count()).select_from(Refund)) == len(revoked)
        # The credit note paid back; the card refund done at localstripe.
        assert sorted(r.status for r in session.scalars(sa.select(Refund))) == ["paid", "succeeded"]
        # The credit note paid back once, each department paid out once.
        assert session.scalar(sa.select(sa.func.count()).select_from(LedgerJournal).where(
            LedgerJournal.kind == "credit_note_paid")) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(LedgerJournal).where(
            LedgerJournal.kind == "payout")) == departments_paid
        for j in journals:
            debit = sum(line.debit_fen for line in j.lines)
            credit = sum(line.credit_fen for line in j.lines)
            assert debit == credit, (j.kind, j.reference)
            assert all(isinstance(line.debit_fen, int) for line in j.lines)
            if j.kind != "payment_settled":
                continue
            total = session.get(Payment, j.payment_id).amount_fen
            split = [line for line in j.lines
                     if line.account.startswith("payable:") or line.account == jr.PLATFORM_FEE_REVENUE]
            assert sum(line.credit_fen for line in split) == total, (j.reference, total)
            paid_to = {line.department_id for line in split if line.department_id}
            assert paid_to and paid_to <= seeded["departments"], (j.reference, paid_to)
        for j in session.scalars(sa.select(LedgerJournal).where(
                LedgerJournal.kind.in_(["credit_note_paid", "payout"]))):
            assert sum(x.debit_fen for x in j.lines) == sum(x.credit_fen for x in j.lines)
        for lic_id in licenses:
            lic = session.get(License, lic_id)
            assert lic.status == ("revoked" if lic_id in revoked else "active")
            assert lic.price_total_fen == sum(AMOUNTS[licenses.index(lic_id)])

        def events(kind: str, subject: str) -> Counter:
            return Counter(session.scalars(
                sa.select(AuditEvent.subject_id).where(AuditEvent.type == kind,
                                                       AuditEvent.subject_type == subject)))
        activated = events("license.activated", "license")
        assert all(activated[str(lic)] == 1 for lic in licenses), activated
        settled_events = events("payment.settled", "payment")
        assert all(settled_events[str(p.id)] == 1 for p in settled), settled_events
        debit, credit = ledger.totals(session)
        assert debit == credit
        verdict = verify_chain(session, public_keys())
        assert verdict.valid, verdict.to_dict()
        db.session.remove()
