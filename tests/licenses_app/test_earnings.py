"""Revenue per dataset and per license on the department's revenue page: exact (the per-dataset
amounts sum to the statement), naming the dataset, never ``payment:N``."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.licenses_app.conftest import apply


def _settle(client, market, quote) -> dict:
    lic = apply(client, market, quote).get_json()
    pay = client.post(f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"},
                      headers=market.buyer.headers).get_json()
    r = client.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                    json={"bank_reference": f"BOC-{lic['id']}"}, headers=market.operator.headers)
    assert r.status_code == 200, r.get_json()
    return lic


@pytest.fixture
def two_licenses(client, market):
    """Department 1 owns 企业登记 (alone) and 纳税信用 (shared 1:1 with department 2).
    License 1 buys both (60,000 + 40,001 fen); license 2 buys 企业登记 alone (20,000)."""
    d1, d2 = market.department("部门一"), market.department("部门二")
    a = market.dataset(d1, title="企业登记")
    c = market.dataset(d1, title="纳税信用", contributors=[(d1, 1), (d2, 1)])
    first = _settle(client, market, market.quote([(a, 60_000), (c, 40_001)]))
    second = _settle(client, market, market.quote([(a, 20_000)]))
    period = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    return {"d1": d1, "d2": d2, "a": a, "c": c, "licenses": (first, second), "period": period}


def test_per_dataset_amounts_sum_to_the_statement(app, market, two_licenses):
    from licenses import ledger
    from licenses.earnings import earnings
    from market.extensions import db

    start, end = ledger.period_bounds(two_licenses["period"])
    for dept in (two_licenses["d1"], two_licenses["d2"]):
        statement = ledger.statement(db.session, dept, two_licenses["period"])
        earned = earnings(db.session, dept.id, start, end)
        assert sum(d.net for d in earned.by_dataset) == statement.revenue - statement.refunds
        assert sum(item.net for item in earned.by_license) == statement.revenue - statement.refunds
        for entry in statement.entries:
            assert sum(amount for _i, _t, amount in earned.by_journal[entry.journal_id]) == entry.amount
    d1 = earnings(db.session, two_licenses["d1"].id, start, end)
    by_title = {d.title: d for d in d1.by_dataset}
    assert set(by_title) == {"企业登记", "纳税信用"}
    assert by_title["企业登记"].licenses == {lic["id"] for lic in two_licenses["licenses"]}
    # Department 1 gets half of 纳税信用's part: about 60,000 : 20,000 of its first payment.
    first = d1.by_license[0]
    amounts = {title: amount for _d, title, amount in first.datasets}
    assert abs(amounts["企业登记"] - 3 * amounts["纳税信用"]) <= 3
    d2 = earnings(db.session, two_licenses["d2"].id, start, end)
    assert [d.title for d in d2.by_dataset] == ["纳税信用"]


def test_the_revenue_page_names_the_datasets(client, market, two_licenses):
    from market.extensions import db
    from tests.accounts.test_web import login

    user = market.party("department").user
    user.organization_id = two_licenses["d1"].id
    db.session.commit()
    login(client, user.email)
    client.get("/?lang=en")
    html = client.get(f"/revenue?period={two_licenses['period']}").get_data(as_text=True)
    assert 'data-testid="earnings-by-dataset"' in html and 'data-testid="earnings-by-license"' in html
    assert f'href="/datasets/{two_licenses["a"].id}">企业登记</a>' in html
    assert "纳税信用" in html
    # The reference stays in a tooltip; the text a person reads names the datasets.
    visible = re.sub(r'title="[^"]*"', "", html)
    assert "payment:" not in visible
    assert "企业登记 (¥" in visible
    # Chinese page too.
    client.get("/?lang=zh")
    html = client.get(f"/revenue?period={two_licenses['period']}").get_data(as_text=True)
    assert "企业登记" in html and "payment:" not in re.sub(r'title="[^"]*"', "", html)


def test_a_refund_is_taken_off_the_dataset_it_paid_back(app, client, market, two_licenses):
    from licenses import ledger
    from licenses.earnings import earnings
    from market.extensions import db

    second = two_licenses["licenses"][1]
    r = client.post(f"/api/v1/licenses/{second['id']}/revoke", json={"reason": "测试退款"},
                    headers=market.regulator.headers)
    if r.status_code != 200:
        r = client.post(f"/api/v1/licenses/{second['id']}/revoke", json={"reason": "测试退款"},
                        headers=market.operator.headers)
    assert r.status_code == 200, r.get_json()
    start, end = ledger.period_bounds(two_licenses["period"])
    statement = ledger.statement(db.session, two_licenses["d1"], two_licenses["period"])
    assert statement.refunds > 0
    earned = earnings(db.session, two_licenses["d1"].id, start, end)
    by_title = {d.title: d for d in earned.by_dataset}
    assert by_title["企业登记"].refunds == statement.refunds and by_title["纳税信用"].refunds == 0
    assert sum(d.net for d in earned.by_dataset) == statement.revenue - statement.refunds
