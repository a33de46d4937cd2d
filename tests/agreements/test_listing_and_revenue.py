"""The listing rule (rule ``no_active_agreement``), expiry with delisting while licenses run to
their end, and the revenue split at each department's agreed share."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from licenses.split import split_payment, split_payment_by_rates
from market.accounts.actor import Actor
from market.agreements import services
from market.audit.models import AuditEvent
from market.extensions import db
from tests.licenses_app.conftest import apply


def _types(subject_type: str, subject_id: int) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.type)
            .where(AuditEvent.subject_type == subject_type,
                   AuditEvent.subject_id == str(subject_id))
            .order_by(AuditEvent.seq)
        )
    )


def test_listing_needs_an_active_agreement_covering_the_dataset(
    client, department, operator, published
):
    dataset_id = published(category="tax")
    review = {"decision": "approve", "comment": "ok"}
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", json=review, headers=operator[1])
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["errors"]["rule"] == "no_active_agreement"

    now = dt.datetime.now(dt.UTC)
    terms = {"starts_at": (now - dt.timedelta(days=1)).isoformat(),
             "ends_at": (now + dt.timedelta(days=30)).isoformat(), "revenue_share_bps": 9000}
    # An agreement over another category does not cover it, even once countersigned.
    other = client.post("/api/v1/agreements", json={**terms, "categories": ["social_security"]},
                        headers=department[1]).get_json()
    client.post(f"/api/v1/agreements/{other['id']}/countersign", headers=operator[1])
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", json=review, headers=operator[1])
    assert r.status_code == 409
    # Proposed but not countersigned does not count either.
    own = client.post("/api/v1/agreements", json={**terms, "dataset_ids": [dataset_id]},
                      headers=department[1]).get_json()
    assert client.post(f"/api/v1/datasets/{dataset_id}/review", json=review,
                       headers=operator[1]).status_code == 409
    client.post(f"/api/v1/agreements/{own['id']}/countersign", headers=operator[1])
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", json=review, headers=operator[1])
    assert r.status_code == 200, r.get_json()
    assert client.get(f"/api/v1/datasets/{dataset_id}").status_code == 200


def test_expiry_delists_and_active_licenses_run_to_their_end(client, market, make_org, runner):
    now = dt.datetime.now(dt.UTC)
    dept = make_org("department", agreement=False)
    agreement = services.seed_default_agreement(
        db.session, dept, starts_at=now - dt.timedelta(days=365 * 3) + dt.timedelta(hours=1),
        years=3,
    )
    db.session.commit()
    dataset = market.dataset(dept)
    lic = apply(client, market, market.quote([(dataset, 50_000)])).get_json()
    pay = client.post(f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"},
                      headers=market.buyer.headers).get_json()
    assert client.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                       json={"bank_reference": "B-1"},
                       headers=market.operator.headers).status_code == 200

    early_quote = market.quote([(dataset, 40_000)])
    later = now + dt.timedelta(hours=2)
    # At read time the agreement is already expired, before any sweep.
    assert services.effective_status(agreement, later) == "expired"
    assert services.effective_status(agreement, now) == "active"

    expired = services.expire_agreements(db.session, Actor.system("test"), later)
    db.session.commit()
    assert [a.id for a in expired] == [agreement.id]
    assert services.expire_agreements(db.session, Actor.system("test"), later) == []
    db.session.refresh(dataset)
    assert dataset.status == services.DELISTED
    assert _types("dataset", dataset.id)[-1] == "dataset.delisted"
    assert _types("agreement", agreement.id)[-1] == "agreement.expired"
    # Gone from the catalogue and from new quotes...
    assert client.get(f"/api/v1/datasets/{dataset.id}").status_code == 404
    # ...and from new licenses, even on a quote made before it was delisted...
    r = apply(client, market, early_quote)
    assert r.status_code == 409 and r.get_json()["errors"]["rule"] == "no_active_agreement"
    # ...but the license granted before keeps running until its own end.
    got = client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()
    assert got["status"] == "active"

    # A new agreement covering it lists it again once countersigned.
    renewed = services.seed_default_agreement(db.session, dept, categories=[dataset.category])
    services._relist(db.session, Actor.system("test"), renewed, now)
    db.session.commit()
    db.session.refresh(dataset)
    assert dataset.status == "listed"


def test_the_cli_sweeper(runner, make_org):
    now = dt.datetime.now(dt.UTC)
    dept = make_org("department", agreement=False)
    services.seed_default_agreement(
        db.session, dept, starts_at=now - dt.timedelta(days=365 * 3 + 1), years=3
    )
    db.session.commit()
    result = runner.invoke(args=["agreements", "expire"])
    assert result.exit_code == 0, result.output
    assert "1 agreement(s) expired" in result.output
    assert "0 agreement(s) expired" in runner.invoke(args=["agreements", "expire"]).output


def test_settlement_splits_at_each_departments_agreed_share(client, market, make_org):
    from licenses.models import LedgerLine  # noqa: F401  (the split is also in the ledger)
    from market.quotes.revenue import current_period, revenue_by_category

    a = make_org("department", agreement=False)
    b = make_org("department", agreement=False)
    services.seed_default_agreement(db.session, a, revenue_share_bps=9000)
    services.seed_default_agreement(db.session, b, revenue_share_bps=7000)
    db.session.commit()
    da, dbb = market.dataset(a), market.dataset(b)
    lic = apply(client, market, market.quote([(da, 100_000), (dbb, 100_000)])).get_json()
    pay = client.post(f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"},
                      headers=market.buyer.headers).get_json()
    assert client.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                       json={"bank_reference": "B-2"},
                       headers=market.operator.headers).status_code == 200
    settled = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.type == "payment.settled",
                                    AuditEvent.subject_id == str(pay["payment_id"]))
    )
    # 10 % of A's half and 30 % of B's half go to the operator.
    assert settled.data["operator_fee"] == 40_000
    assert settled.data["departments"] == {str(a.id): 90_000, str(b.id): 70_000}
    # The license's ODRL policy names each department as the rights holder of its data, and
    # the agreement it is licensed under.
    policy = client.get(f"/api/v1/licenses/{lic['id']}/document",
                        headers=market.buyer.headers).get_json()["policy"]
    holders = {t["market:dataset"]: t["dct:rightsHolder"] for t in policy["target"]}
    assert holders[str(da.id)]["vcard:fn"] == a.name
    assert holders[str(dbb.id)]["market:creditCode"] == b.credit_code
    assert all(t["market:authorizationAgreement"].startswith("AGR-") for t in policy["target"])
    # The revenue-cap report takes the same shares.
    entries = {(e.party, e.category): e.amount_fen
               for e in revenue_by_category(db.session, current_period())}
    assert entries[("operator", "enterprise")] >= 40_000
    assert entries[(f"department:{a.id}", "enterprise")] == 90_000
    assert entries[(f"department:{b.id}", "enterprise")] == 70_000


shares = st.fractions(min_value=0, max_value=1, max_denominator=10_000)
item_lists = st.lists(
    st.tuples(
        st.integers(0, 3),  # dataset
        st.integers(0, 2_000_000),  # amount
        st.lists(st.tuples(st.integers(0, 4), st.integers(1, 9)), min_size=1, max_size=3,
                 unique_by=lambda x: x[0]),
    ),
    min_size=1, max_size=4, unique_by=lambda x: x[0],
)


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 10_000_000), items=item_lists, share=shares,
       rates=st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 4)), shares))
def test_split_by_rates_is_exact(total, items, share, rates):
    if total and not any(amount for _, amount, _ in items):
        return  # nothing to divide by: refused like split_payment (tested below)
    result = split_payment_by_rates(total, items, rates, share)
    assert result.total == total
    assert all(v >= 0 for v in result.departments.values())
    # With one share for everyone it is exactly the single-rate split.
    assert split_payment_by_rates(total, items, {}, share) == split_payment(total, share, items)
    # The operator's fee is the floor of its exact quota.
    parts: dict = {}
    fee_exact = Fraction(0)
    amounts = sum(amount for _, amount, _ in items)
    for ds, amount, depts in items:
        weight = sum(w for _, w in depts)
        for dept, w in depts:
            part = Fraction(total) * amount * w / weight / amounts if amounts else Fraction(0)
            fee_exact += part * rates.get((ds, dept), share)
            parts[dept] = parts.get(dept, 0) + part * (1 - rates.get((ds, dept), share))
    assert result.operator_fee == int(fee_exact // 1)
    rest = total - result.operator_fee
    rest_exact = sum(parts.values(), Fraction(0))
    for dept, got in result.departments.items():
        quota = rest * parts[dept] / rest_exact if rest_exact else Fraction(0)
        assert abs(got - quota) < 1


def test_split_by_rates_refuses_what_split_payment_refuses():
    from licenses.errors import InvalidSplit

    with pytest.raises(InvalidSplit):
        split_payment_by_rates(100, [(1, 0, [(1, 1)])], {}, Fraction(1, 10))
    with pytest.raises(InvalidSplit):
        split_payment_by_rates(100, [(1, 10, [(1, 1)])], {(1, 1): Fraction(3, 2)}, 0)
    with pytest.raises(InvalidSplit):
        split_payment_by_rates(100, [(1, 10, [(1, 1)])], {}, 0.1)
