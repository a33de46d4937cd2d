"""#13.6 and #13.7: a revocation refunds only what was not used (term and quota, the smaller
share), and it takes effect even when Stripe fails the refund — the refund then becomes a
pending credit note that the operator retries (API and settlements page)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.licenses_app import test_stripe
from tests.licenses_app.conftest import active_license, apply
from tests.licenses_app.test_stripe import event, pay_with_test_card, post_webhook, signed

# The Stripe fixtures of test_stripe, for this module too.
stripe_config = test_stripe.stripe_config
card_holder = test_stripe.card_holder


def _set(license_id: int, **values) -> None:
    from licenses.models import License
    from market.extensions import db

    db.session.execute(sa.update(License).where(License.id == license_id).values(**values))
    db.session.commit()


def _audit(type_: str) -> list[dict]:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return [e.data for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.seq)
    )]


def _balance(account: str) -> int:
    from licenses.ledger import account_balances
    from market.extensions import db

    return account_balances(db.session).get(account, 0)


# ----------------------------------------------------------------------------- 13.6 by use


def test_all_queries_spent_refunds_nothing(app, client, market):
    from licenses.models import Refund
    from market.extensions import db

    lic = active_license(client, market, amount=50_000, query_quota=5)
    _set(lic["id"], quota_remaining=0)  # 5 of 5 queries spent
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "department withdrew the data"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "revoked"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_the_smaller_unused_share_is_refunded_fen_exact(app, client, market):
    from licenses.models import LedgerJournal, Refund
    from licenses.refunds import usage_refund
    from market.extensions import db

    lic = active_license(client, market, amount=123_457, query_quota=1000)
    now = dt.datetime.now(dt.UTC)
    starts, ends = now - dt.timedelta(days=100), now + dt.timedelta(days=265)
    _set(lic["id"], starts_at=starts, ends_at=ends, quota_remaining=300)  # quota binds
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "department withdrew the data"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    refund = db.session.scalar(sa.select(Refund))
    assert refund.amount_fen == usage_refund(123_457, starts, ends, refund.created_at, 1000, 300)
    assert refund.amount_fen == 37_038  # ceil(123457 × 0.3)
    journal = db.session.scalar(
        sa.select(LedgerJournal).where(LedgerJournal.kind == "refund_issued")
    )
    assert sum(line.debit_fen for line in journal.lines) == 37_038
    assert sum(line.credit_fen for line in journal.lines) == 37_038
    # The signed document states the rule.
    doc = client.get(
        f"/api/v1/licenses/{lic['id']}/document", headers=market.buyer.headers
    ).get_json()
    [duty] = doc["policy"]["permission"][0]["duty"]
    assert duty["market:refundOnRevocation"]["market:refundShare"] == (
        "min(unusedTermShare, unusedQuotaShare)"
    )


# ------------------------------------------------------------------ 13.7 fail-safe revocation


def _stripe_settled_license(client, market, amount: int = 88_800) -> tuple[dict, object]:
    """A license settled by a signed Stripe webhook whose PaymentIntent localstripe never saw
    paid: localstripe then refuses to refund it, as Stripe refuses a refund it cannot do."""
    from licenses.models import Payment
    from market.extensions import db

    lic = apply(client, market, market.quote([(market.dataset(), amount)])).get_json()
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "stripe"},
        headers=market.buyer.headers,
    )
    assert r.status_code == 201, r.get_json()
    payment = db.session.get(Payment, r.get_json()["payment_id"])
    ok = post_webhook(client, *signed(event("payment_intent.succeeded", payment)))
    assert ok.get_json()["outcome"] == "settled"
    return lic, payment


def test_a_failed_stripe_refund_never_blocks_the_revocation(
    app, client, market, stripe_config, card_holder
):
    from licenses.models import Refund
    from market.extensions import db

    lic, payment = _stripe_settled_license(client, market)
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "dataset withdrawn"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "revoked"
    refund = db.session.scalar(sa.select(Refund))
    assert refund.status == "pending" and refund.credit_note_number.startswith("CN-")
    assert refund.amount_fen == payment.amount_fen  # nothing used yet
    assert refund.attempts == 1 and refund.last_error
    buyer = market.buyer.org.id
    # The buyer is owed the refund: it is a credit note in the ledger, not cash yet.
    assert _balance(f"credit_notes:buyer:{buyer}") == -refund.amount_fen
    [failed] = _audit("payment.refund_failed")
    assert failed["refund_id"] == refund.id and failed["amount"] == refund.amount_fen

    # Visible to the operator: the API list and the settlements page, with a retry button.
    pending = client.get("/api/v1/refunds?status=pending", headers=market.operator.headers)
    [item] = pending.get_json()["items"]
    assert item["id"] == refund.id and item["retryable"] is True and item["last_error"]
    # Nobody else retries.
    url = f"/api/v1/refunds/{refund.id}/retry"
    for party in (market.buyer, market.regulator):
        assert client.post(url, headers=party.headers).status_code == 403

    # A retry that fails again keeps it pending and counts the attempt.
    again = client.post(url, headers=market.operator.headers)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "pending" and again.get_json()["attempts"] == 2

    # Once Stripe can refund (the intent is really paid now), the retry pays the note back.
    pay_with_test_card(card_holder, payment.provider_id)
    done = client.post(url, headers=market.operator.headers)
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["status"] == "paid" and body["paid_reference"].startswith("re_")
    assert _balance(f"credit_notes:buyer:{buyer}") == 0
    assert _audit("refund.retried")[-1]["outcome"] == "succeeded"
    # Retrying a paid note is a conflict.
    assert client.post(url, headers=market.operator.headers).status_code == 409


def test_the_settlements_page_retries_a_failed_stripe_refund(
    app, client, market, stripe_config
):
    from licenses.models import Refund
    from market.extensions import db
    from tests.licenses_app.test_web import login

    lic, _payment = _stripe_settled_license(client, market)
    client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "dataset withdrawn"},
        headers=market.operator.headers,
    )
    refund = db.session.scalar(sa.select(Refund))
    token = login(client, market.operator)
    page = client.get("/payments/settlements").get_data(as_text=True)
    assert f'data-testid="retry-refund-{refund.id}"' in page
    assert f'data-testid="refund-error-{refund.id}"' in page
    assert client.post(f"/payments/credit-notes/{refund.id}/retry").status_code == 400  # CSRF
    r = client.post(
        f"/payments/credit-notes/{refund.id}/retry", data={"csrf_token": token}
    )
    assert r.status_code == 302
    db.session.refresh(refund)
    assert refund.attempts == 2 and refund.status == "pending"
