"""The regulator's dashboards: figures from the audit chain and the ledger."""

from __future__ import annotations

from market.accounts.actor import Actor
from tests.accounts.test_web import login


def _query_event(license_id: int, decision: str, rule: str | None = None):
    from market.audit import services
    from market.extensions import db

    services.record(db.session, "sandbox.query", Actor(1, 1, "buyer", "active"), ("license", license_id),
                    {"decision": decision, "rule": rule})


def test_queries_and_rules_per_license(app):
    from market.audit.insights import queries_by_license, transactions_by_day
    from market.extensions import db

    for _ in range(3):
        _query_event(7, "ok")
    _query_event(7, "refused", "not_aggregated")
    _query_event(8, "refused", "not_aggregated")
    _query_event(8, "refused", "forbidden_function")
    db.session.commit()
    q = queries_by_license(db.session)
    assert dict(zip(q["licenses"], q["ok"], strict=True)) == {"7": 3, "8": 0}
    assert dict(zip(q["licenses"], q["refused"], strict=True)) == {"7": 1, "8": 2}
    assert q["rules"][0] == ("not_aggregated", 2)
    t = transactions_by_day(db.session, days=7)
    assert len(t["labels"]) == 7 and t["series"]["sandbox"][-1] == 6


def test_revenue_per_department_from_the_ledger(app, make_org):
    from licenses.models import LedgerJournal, LedgerLine
    from market.audit.insights import revenue_by_department
    from market.extensions import db

    dept = make_org("department", name="税务局")
    j = LedgerJournal(kind="payment_settled", reference="t-1")
    j.lines = [LedgerLine(account="cash", debit_fen=10000),
               LedgerLine(account=f"payable:department:{dept.id}", credit_fen=9000, department_id=dept.id),
               LedgerLine(account="revenue:platform_fee", credit_fen=1000)]
    db.session.add(j)
    db.session.commit()
    rows = {r["name"]: r["amount"] for r in revenue_by_department(db.session)}
    assert rows["税务局"] == 9000


def test_insights_page_for_regulator_only(app, client, make_user):
    from market.extensions import db

    _query_event(3, "refused", "identifier_output")
    db.session.commit()
    reg = make_user("regulator")
    login(client, reg.email)
    html = client.get("/insights").get_data(as_text=True)
    assert 'data-testid="chart-transactions"' in html and 'data-testid="chart-rules"' in html
    assert 'id="insights-data"' in html and "identifier_output" in html
    client.post("/logout")
    buyer = make_user("buyer")
    login(client, buyer.email)
    assert client.get("/insights").status_code == 403
