"""Ledger invariants over random flows of apply / pay / settle / revoke (refund) / payout.

Whatever the sequence: the ledger balances; department payables plus the operator's fee
(net of fee refunds) equal what was settled minus refunds and payouts; cash and credit notes
match; open invoices are exactly the receivables.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = dt.datetime(2025, 3, 10, 8, 0, tzinfo=dt.UTC)

operations = st.lists(
    st.tuples(
        st.sampled_from(["pay", "settle", "settle", "revoke", "revoke", "payout", "payout"]),
        st.integers(min_value=0, max_value=1),
        st.fractions(min_value=0, max_value=1, max_denominator=97),
    ),
    min_size=3,
    max_size=14,
)
quotes = st.lists(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(min_value=1, max_value=5_000_000)),
        min_size=1,
        max_size=3,
        unique_by=lambda x: x[0],
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(quote_items=quotes, ops=operations, fee=st.sampled_from(["0.10", "0", "1", "0.333", "0.07"]))
def test_ledger_invariants_on_random_flows(app, market, quote_items, ops, fee):
    from licenses import ledger, payments, services
    from licenses.models import Payment
    from market.accounts.actor import Actor
    from market.extensions import db
    from market.quotes.models import Quote

    if not hasattr(market, "fixture"):
        d = [market.department() for _ in range(3)]
        datasets = [
            market.dataset(d[0]),
            market.dataset(d[1], contributors=[(d[1], 3), (d[2], 1)]),
            market.dataset(d[2], grade="conditional", contributors=[(d[0], 1), (d[2], 5)]),
        ]
        # Ids, not rows: each example starts from an empty identity map (see below).
        market.fixture = {
            "depts": [x.id for x in d],
            "datasets": [x.id for x in datasets],
            "buyer": Actor.from_user(market.buyer.user),
            "operator": Actor.from_user(market.operator.user),
        }
    fx = market.fixture
    config = {"MARKET_OPERATOR_FEE_SHARE": fee}
    session = db.session
    savepoint = session.begin_nested()
    try:
        licenses = []
        for items in quote_items:
            quote = Quote(
                buyer_org_id=fx["buyer"].org_id,
                params_version=1,
                model_version="t",
                purpose="research",
                duration_months=12,
                query_quota=10,
                total_fen=sum(a for _, a in items),
                items=[
                    {
                        "dataset_id": fx["datasets"][i],
                        "dataset_version": 1,
                        "columns": None,
                        "amount": a,
                        "factors": {},
                    }
                    for i, a in items
                ],
                document={},
                signature="s",
                key_id="k",
                expires_at=T0 + dt.timedelta(days=1),
            )
            session.add(quote)
            session.flush()
            lic = services.apply_for_license(
                session, fx["buyer"], quote_id=quote.id, purpose_statement="p", now=T0
            )
            if lic.status == "pending_review":
                services.review_license(session, fx["operator"], lic.id, decision="approve", now=T0)
            licenses.append(lic)

        settled = refunded = paid_out = 0
        for op, index, frac in ops:
            lic = licenses[index % len(licenses)]
            if op == "pay" and lic.status == "awaiting_payment":
                payments.create_payment(
                    session, fx["buyer"], lic.id, "invoice", config=config, now=T0
                )
            elif op == "settle" and lic.status == "awaiting_payment":
                payment, _, _ = payments.create_payment(
                    session, fx["buyer"], lic.id, "invoice", config=config, now=T0
                )
                payments.settle_invoice(
                    session, fx["operator"], payment.id, "B", config=config, now=T0
                )
                settled += payment.amount_fen
            elif op == "revoke" and lic.status in ("active", "awaiting_payment"):
                when = T0
                if lic.status == "active":
                    # At or after the end the license has expired and cannot be revoked.
                    frac = min(frac, Fraction(99, 100))
                    when = lic.starts_at + _scale(lic.ends_at - lic.starts_at, frac)
                before = sum(p.refunded_fen for p in lic.payments)
                services.revoke_license(
                    session, fx["operator"], lic.id, "r", config=config, now=when
                )
                session.refresh(lic)
                refunded += sum(p.refunded_fen for p in lic.payments) - before
            elif op == "payout":
                dept = fx["depts"][index % 3]
                owed = ledger.department_payable(session, dept)
                amount = int(owed * frac)
                if amount > 0:
                    ledger.record_payout(
                        session, fx["operator"], dept, amount, f"T{len(ops)}-{paid_out}-{amount}"
                    )
                    paid_out += amount

        debit, credit = ledger.totals(session)
        assert debit == credit
        balances = ledger.account_balances(session)
        payables = -sum(v for k, v in balances.items() if k.startswith("payable:department:"))
        fee_net = -balances.get("revenue:platform_fee", 0) - balances.get("refunds", 0)
        assert payables + fee_net == settled - refunded - paid_out
        assert balances.get("cash", 0) == settled - paid_out
        assert -balances.get(f"credit_notes:buyer:{fx['buyer'].org_id}", 0) == refunded
        open_invoices = sum(
            p.amount_fen for lic in licenses for p in payments.open_payments(session, lic.id)
        )
        assert balances.get(f"receivable:buyer:{fx['buyer'].org_id}", 0) == open_invoices
        assert -balances.get("deferred:sales", 0) == open_invoices
        assert sum(session.scalars(sa.select(Payment.refunded_fen))) == refunded
    finally:
        savepoint.rollback()
        # Rows of this example must not linger: the next one reuses their primary keys.
        session.expunge_all()


def _scale(delta: dt.timedelta, frac: Fraction) -> dt.timedelta:
    micros = delta // dt.timedelta(microseconds=1)
    return dt.timedelta(microseconds=int(micros * frac))
