"""Revenue sharing: exact shares on statements (JSON and CSV), period boundaries, payouts,
and who may read the ledger."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from tests.licenses_app.conftest import apply


@pytest.fixture
def shared(client, market):
    """One settled license of 100,001 fen over three departments.

    Item A (70,000) is department 1's; item B (30,001) is shared 2:1 by departments 2 and 3.
    Fee 10% = floor(10,000.1) = 10,000; the rest, 90,001, splits by largest remainder into
    63,000.07 → 63,000; 18,000.62 → 18,001; 9,000.31 → 9,000 (the one leftover fen goes to
    the largest remainder, department 2).
    """
    d1, d2, d3 = (market.department(f"Department {n}") for n in (1, 2, 3))
    a = market.dataset(d1)
    b = market.dataset(d2, contributors=[(d2, 2), (d3, 1)])
    quote = market.quote([(a, 70_000), (b, 30_001)])
    lic = apply(client, market, quote).get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    r = client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "BOC-7781"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200
    period = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    return {"departments": (d1, d2, d3), "license": lic, "period": period}


EXPECTED = (63_000, 18_001, 9_000)


def test_each_department_sees_its_exact_share(client, market, shared):
    from market.extensions import db

    period = shared["period"]
    for dept, share in zip(shared["departments"], EXPECTED, strict=True):
        user = market.party("department")
        user.user.organization_id = dept.id
        db.session.commit()
        r = client.get(f"/api/v1/revenue/statements?period={period}", headers=user.headers)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        assert page["timezone"] == "Asia/Shanghai" and page["total"] == 1
        st = page["items"][0]
        assert st["department"]["id"] == dept.id
        assert (st["revenue"], st["closing_balance"], st["opening_balance"]) == (share, share, 0)
        assert [e["amount"] for e in st["entries"]] == [share]
        # Another department's statement is refused.
        other = (
            shared["departments"][0]
            if dept is not shared["departments"][0]
            else shared["departments"][1]
        )
        r = client.get(
            f"/api/v1/revenue/statements?period={period}&department_id={other.id}",
            headers=user.headers,
        )
        assert r.status_code == 403


def test_operator_sees_all_and_fee_completes_the_payment(client, market, shared):
    page = client.get(
        f"/api/v1/revenue/statements?period={shared['period']}", headers=market.operator.headers
    ).get_json()
    revenue = {st["department"]["id"]: st["revenue"] for st in page["items"]}
    ids = [d.id for d in shared["departments"]]
    assert [revenue[i] for i in ids] == list(EXPECTED)
    ledger = client.get(
        "/api/v1/ledger?account=revenue:platform_fee", headers=market.operator.headers
    ).get_json()
    assert [line["credit"] for line in ledger["items"]] == [10_000]
    assert sum(EXPECTED) + 10_000 == 100_001


def test_statement_csv(client, market, shared):
    d2 = shared["departments"][1]
    for url in (
        f"/api/v1/revenue/statements.csv?period={shared['period']}&department_id={d2.id}",
        f"/api/v1/revenue/statements?period={shared['period']}&department_id={d2.id}&format=csv",
    ):
        r = client.get(url, headers=market.regulator.headers)
        assert r.status_code == 200 and r.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
        by_line = {row["line"]: row for row in rows if row["line"] != "entry"}
        entries = [row for row in rows if row["line"] == "entry"]
        assert [int(e["amount_fen"]) for e in entries] == [18_001]
        assert entries[0]["kind"] == "payment_settled"
        assert entries[0]["license_id"] == str(shared["license"]["id"])
        assert by_line["closing_balance"]["amount_fen"] == "18001"


def test_other_periods_are_empty_but_carry_the_balance(client, market, shared):
    from licenses.ledger import shift_period

    d1 = shared["departments"][0]

    def statement(months: int) -> dict:
        period = shift_period(shared["period"], months)
        url = f"/api/v1/revenue/statements?period={period}&department_id={d1.id}"
        return client.get(url, headers=market.operator.headers).get_json()["items"][0]

    before, after = statement(-1), statement(1)
    assert (before["revenue"], before["closing_balance"]) == (0, 0)
    assert (after["opening_balance"], after["revenue"], after["closing_balance"]) == (
        63_000,
        0,
        63_000,
    )


@pytest.mark.parametrize("period", ["2025-13", "2025-3", "march", ""])
def test_bad_period_is_422(client, market, period):
    r = client.get(f"/api/v1/revenue/statements?period={period}", headers=market.operator.headers)
    assert r.status_code == 422


def test_buyers_read_no_statements(client, market):
    r = client.get("/api/v1/revenue/statements?period=2025-01", headers=market.buyer.headers)
    assert r.status_code == 403


def test_payouts(client, market, shared):
    d1 = shared["departments"][0]
    url = "/api/v1/revenue/payouts"
    body = {"department_id": d1.id, "amount": 63_001, "reference": "TRF-1"}
    r = client.post(url, json=body, headers=market.operator.headers)
    assert r.status_code == 409 and "63000" in r.get_json()["message"]
    r = client.post(url, json={**body, "amount": 60_000}, headers=market.operator.headers)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["payable_after"] == 3_000
    # The same bank reference twice is one payout.
    r = client.post(url, json={**body, "amount": 1_000}, headers=market.operator.headers)
    assert r.status_code == 409
    r = client.post(
        url, json={**body, "amount": 3_000, "reference": "TRF-2"}, headers=market.operator.headers
    )
    assert r.status_code == 201 and r.get_json()["payable_after"] == 0
    assert (
        client.post(
            url, json={**body, "amount": 1, "reference": "TRF-3"}, headers=market.operator.headers
        ).status_code
        == 409
    )

    st = client.get(
        f"/api/v1/revenue/statements?period={shared['period']}&department_id={d1.id}",
        headers=market.operator.headers,
    ).get_json()["items"][0]
    assert (st["revenue"], st["payouts"], st["closing_balance"]) == (63_000, 63_000, 0)

    for party in (market.regulator, market.buyer, market.party("department")):
        assert (
            client.post(
                url, json={**body, "amount": 1, "reference": "X"}, headers=party.headers
            ).status_code
            == 403
        )
    r = client.post(
        url,
        json={"department_id": market.buyer.org.id, "amount": 1, "reference": "Y"},
        headers=market.operator.headers,
    )
    assert r.status_code == 422
    r = client.post(
        url,
        json={"department_id": d1.id, "amount": 0, "reference": "Y"},
        headers=market.operator.headers,
    )
    assert r.status_code == 422


def test_ledger_roles_and_shape(client, market, shared):
    r = client.get("/api/v1/ledger?per_page=3", headers=market.regulator.headers)
    assert r.status_code == 200
    page = r.get_json()
    # The invoice (2 lines), the settlement: cash, receivable, deferral, 3 payables, the fee.
    assert page["per_page"] == 3 and page["total"] == 2 + 7
    assert set(page["items"][0]) >= {"account", "debit", "credit", "kind", "reference", "posted_at"}
    settled = client.get(
        "/api/v1/ledger?kind=payment_settled&per_page=100", headers=market.operator.headers
    ).get_json()["items"]
    assert sum(line["debit"] for line in settled) == sum(line["credit"] for line in settled)
    for party in (market.buyer, market.party("department"), market.party("subject")):
        assert client.get("/api/v1/ledger", headers=party.headers).status_code == 403


def test_statement_months_are_shanghai_months(app, market):
    """A settlement at 2025-03-31 16:30 UTC is 1 April 00:30 in Shanghai: April's revenue."""
    from licenses import journal as jr
    from licenses import ledger
    from licenses.split import Split
    from market.extensions import db

    dept = market.department()
    moment = dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)
    split = Split(operator_fee=100, departments={dept.id: 900})
    ledger.post(db.session, jr.payment_settled("t:1", 1, split, invoiced=False), posted_at=moment)

    assert ledger.statement(db.session, dept, "2025-03").revenue == 0
    assert ledger.statement(db.session, dept, "2025-04").revenue == 900
    assert ledger.period_bounds("2025-04") == (
        dt.datetime(2025, 3, 31, 16, 0, tzinfo=dt.UTC),
        dt.datetime(2025, 4, 30, 16, 0, tzinfo=dt.UTC),
    )
    assert ledger.monthly_revenue(db.session, dept.id, "2025-05", months=3) == [
        ("2025-03", 0),
        ("2025-04", 900),
        ("2025-05", 0),
    ]
