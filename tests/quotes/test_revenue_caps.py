"""Revenue per category against its cap: settled payments less refunds, per party, with
carried excess."""

from __future__ import annotations

import datetime as dt

import pytest

import pricing
from tests.accounts.test_api import assert_envelope

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


#: License states that went through a settled payment.
PAID_STATUSES = ("active", "expired", "suspended", "revoked")


@pytest.fixture
def sell(client, as_role, make_license, quote_body):
    """``sell([(dataset, amount), ...], price, starts_at, status, paid_at=None)`` → a license
    whose items have exactly those amounts (quoted first, as the licensing area does), with a
    payment of ``price`` settled at ``paid_at`` (default: ``starts_at``) when its status went
    through payment."""
    import uuid

    from licenses.models import Payment
    from market.extensions import db
    from market.quotes.models import Quote

    _, h = as_role("buyer")

    def make(items, price, starts_at, status="active", paid_at=None):
        body = quote_body(*[d for d, _ in items])
        quote = db.session.get(
            Quote, client.post("/api/v1/quotes", headers=h, json=body).get_json()["id"]
        )
        lic = make_license(quote, status=status, starts_at=starts_at, price=price)
        amounts = {d.id: amount for d, amount in items}
        for item in lic.items:
            item.amount_fen = amounts[item.dataset_id]
        if status in PAID_STATUSES and price > 0:
            db.session.add(
                Payment(
                    license_id=lic.id,
                    provider="invoice",
                    status="settled",
                    amount_fen=price,
                    currency="CNY",
                    reference=f"pay_{uuid.uuid4().hex[:12]}",
                    refunded_fen=0,
                    settled_at=paid_at or starts_at,
                )
            )
        db.session.commit()
        return lic

    return make


@pytest.fixture
def refund(app):
    """``refund(license, amount, at)``: a refund of the license's settled payment."""
    import uuid

    import sqlalchemy as sa

    from licenses.models import Payment, Refund
    from market.extensions import db

    def make(lic, amount, at_):
        payment = db.session.scalar(sa.select(Payment).where(Payment.license_id == lic.id))
        payment.refunded_fen += amount
        db.session.add(
            Refund(
                payment_id=payment.id,
                license_id=lic.id,
                amount_fen=amount,
                provider_refund_id=f"CN-{uuid.uuid4().hex[:10]}",
                status="pending",
                reason="revoked",
                created_at=at_,
            )
        )
        db.session.commit()

    return make


@pytest.fixture
def set_caps(app):
    """Store a parameter version with these monthly caps, in force since 2020."""
    from market.extensions import db
    from market.quotes import parameters
    from market.quotes.models import PricingParameterSet

    def make(caps: dict[str, int], default: int | None = None):
        current = parameters.current_parameter_set(db.session)
        params = pricing.PricingParameters.from_dict(
            {
                **current.params,
                "version": current.version + 1,
                "revenue_caps_fen": caps,
                "default_revenue_cap_fen": default,
            }
        )
        row = PricingParameterSet(
            version=params.version, params=params.to_dict(), created_at=at("2020-01-01T00:00:00")
        )
        db.session.add(row)
        db.session.commit()
        return row

    return make


def test_revenue_by_category_counts_payments_less_refunds_in_their_month(
    app, make_org, make_dataset, sell, refund
):
    from market.datasets.models import DatasetContributor
    from market.extensions import db
    from market.quotes.revenue import revenue_by_category

    samr, tax, court = make_org("department"), make_org("department"), make_org("department")
    a = make_dataset(category="market_supervision", department=samr)
    b = make_dataset(category="tax", department=tax)
    # Dataset b is shared: tax 3 parts, the court 1 part.
    db.session.add_all(
        [
            DatasetContributor(dataset_id=b.id, department_id=tax.id, weight=3),
            DatasetContributor(dataset_id=b.id, department_id=court.id, weight=1),
        ]
    )
    db.session.commit()

    # 2026-10-31 17:30 UTC is 2026-11-01 01:30 in Shanghai: November.
    sell([(a, 60_000), (b, 40_000)], 90_001, at("2026-10-31T17:30:00"))  # a bundle discount
    sell([(a, 10_000)], 10_000, at("2026-11-15T08:00:00"), status="expired")
    sell([(b, 20_000)], 20_000, at("2026-11-20T08:00:00"), status="suspended")
    # Paid and refunded in full in November: nets to nothing.
    revoked = sell([(a, 99_999)], 99_999, at("2026-11-10T08:00:00"), status="revoked")
    refund(revoked, 99_999, at("2026-11-12T08:00:00"))
    # Paid in October, partly refunded in November: the refund lowers November.
    october = sell([(a, 50_000)], 50_000, at("2026-10-05T08:00:00"), status="revoked")
    refund(october, 20_000, at("2026-11-05T08:00:00"))
    # Not counted: not paid yet, free, or paid in another month (Shanghai time).
    sell([(a, 99_999)], 99_999, at("2026-11-10T08:00:00"), status="awaiting_payment")
    sell([(a, 0)], 0, at("2026-11-10T08:00:00"))
    sell([(a, 99_999)], 99_999, at("2026-11-30T16:00:00"))  # 2026-12-01 00:00 Shanghai

    entries = {
        (e.party, e.category): e.amount_fen for e in revenue_by_category(db.session, "2026-11")
    }
    # The operator's own fee income (10%), not the gross: 90_001 -> fee floor(9_000.1) = 9_000,
    # split 60:40 -> 5_400 / 3_600; the rest 81_001 -> 48_601 / 32_400 (largest remainder).
    assert entries[("operator", "market_supervision")] == 5_400 + 1_000 + 0 - 2_000
    assert entries[("operator", "tax")] == 3_600 + 2_000
    assert entries[(f"department:{samr.id}", "market_supervision")] == 48_601 + 9_000 - 18_000
    assert entries[(f"department:{tax.id}", "tax")] == 24_300 + 13_500
    assert entries[(f"department:{court.id}", "tax")] == 8_100 + 4_500
    operator_total = sum(v for (p, _), v in entries.items() if p == "operator")
    assert operator_total == 9_000 + 1_000 + 2_000 - 2_000
    # Fee plus departments is still every fen received, less refunds.
    assert sum(entries.values()) == 90_001 + 10_000 + 20_000 - 20_000
    october_entries = {
        (e.party, e.category): e.amount_fen for e in revenue_by_category(db.session, "2026-10")
    }
    assert october_entries == {
        ("operator", "market_supervision"): 5_000,
        (f"department:{samr.id}", "market_supervision"): 45_000,
    }
    assert revenue_by_category(db.session, "2026-09") == []
    with pytest.raises(pricing.InvalidRevenueInput):
        revenue_by_category(db.session, "2026-13")


def test_cap_report_deducts_excess_next_period(
    app, client, as_role, make_org, make_dataset, sell, set_caps
):
    samr = make_org("department", name="上海市市场监督管理局-test")
    a = make_dataset(category="market_supervision", department=samr)
    set_caps({"market_supervision": 100_000})
    # The cap limits the operator's fee income (10% of the payments): 150_000 and 30_000.
    sell([(a, 1_500_000)], 1_500_000, at("2026-09-10T08:00:00"))
    sell([(a, 300_000)], 300_000, at("2026-10-10T08:00:00"))

    _, h = as_role("operator")
    sep = client.get("/api/v1/pricing/revenue-caps?period=2026-09", headers=h).get_json()
    op = next(r for r in sep["rows"] if r["party"] == "operator")
    assert (op["revenue"], op["cap"], op["within_cap"], op["excess_to_deduct_next_period"]) == (
        150_000,
        100_000,
        100_000,
        50_000,
    )
    assert sep["totals"] == {"revenue": 150_000, "excess_to_deduct_next_period": 50_000}
    assert sep["basis"] == "settled_payments_net_of_refunds" and sep["next_period"] == "2026-10"
    dept = next(r for r in sep["rows"] if r["party"] == f"department:{samr.id}")
    assert dept["party_name"] == "上海市市场监督管理局-test"

    octo = client.get("/api/v1/pricing/revenue-caps?period=2026-10", headers=h).get_json()
    op = next(r for r in octo["rows"] if r["party"] == "operator")
    # September's 50_000 excess counts first against October's cap.
    assert (
        op["revenue"],
        op["prior_excess"],
        op["counted"],
        op["excess_to_deduct_next_period"],
    ) == (30_000, 50_000, 80_000, 0)
    assert op["headroom"] == 20_000 and op["utilization"] == "0.8"
    assert octo["carried_from"] == "2026-09"

    # The regulator reads it too; an empty month has no rows.
    _, reg = as_role("regulator")
    empty = client.get("/api/v1/pricing/revenue-caps?period=2025-01", headers=reg).get_json()
    assert empty["rows"] == [] and empty["totals"]["revenue"] == 0


def test_revenue_caps_permissions_and_validation(client, as_role):
    for role in ("buyer", "department", "subject"):
        _, h = as_role(role)
        assert_envelope(client.get("/api/v1/pricing/revenue-caps?period=2026-11", headers=h), 403)
    assert_envelope(client.get("/api/v1/pricing/revenue-caps?period=2026-11"), 401)
    _, op = as_role("operator")
    assert (
        "period"
        in assert_envelope(
            client.get("/api/v1/pricing/revenue-caps?period=2026-13", headers=op), 422
        )["errors"]
    )
    current = client.get("/api/v1/pricing/revenue-caps", headers=op).get_json()
    assert current["period"] == dt.datetime.now(dt.UTC).astimezone(
        dt.timezone(dt.timedelta(hours=8))
    ).strftime("%Y-%m")


def test_once_the_cap_is_reached_new_quotes_get_the_reduction(
    app, client, as_role, make_org, make_dataset, quote_body, sell, set_caps
):
    """Issue #13 item 5: quotes went on at full price after the cap was exceeded."""
    from market.quotes.revenue import current_period, over_cap_categories

    a = make_dataset(category="market_supervision")
    other = make_dataset(category="tax")
    set_caps({"market_supervision": 100_000})
    _, h = as_role("buyer")
    before = client.post("/api/v1/quotes", headers=h, json=quote_body(a, other)).get_json()
    assert not any(i["over_cap"] for i in before["items"])
    assert "over_cap" not in before["items"][0]["factors"]

    # This month's operator fee income reaches the cap: 10% of 1,000,000.
    now = dt.datetime.now(dt.UTC)
    sell([(a, 1_000_000)], 1_000_000, now - dt.timedelta(seconds=5))
    from market.extensions import db

    assert over_cap_categories(db.session) == {"market_supervision"}
    after = client.post("/api/v1/quotes", headers=h, json=quote_body(a, other)).get_json()
    items = {i["dataset_id"]: i for i in after["items"]}
    reduced, untouched = items[a.id], items[other.id]
    assert reduced["over_cap"] and reduced["factors"]["over_cap"] == "0.5"
    old = {i["dataset_id"]: i["amount"] for i in before["items"]}
    # Half the price (rounded up to a fen), explained by the factor; the tax item is untouched.
    assert reduced["amount"] == -(-old[a.id] // 2)
    assert untouched["amount"] == old[other.id] and not untouched["over_cap"]
    _, op = as_role("operator")
    report = client.get(
        f"/api/v1/pricing/revenue-caps?period={current_period()}", headers=op
    ).get_json()
    row = next(r for r in report["rows"] if r["party"] == "operator")
    assert row["counted"] == 100_000 and row["headroom"] == 0
