"""The report's licenses and revenue by scenario and by data product: the rows partition the
month, so they sum exactly (in fen) to the report's totals — over the wire on a real month,
and as a Hypothesis property of the split itself (payments, refunds, several departments at
different agreed shares, any grouping)."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

import pricing
from market.quotes import revenue
from market.quotes.revenue import current_period
from market.reports.services import revenue_by_group
from tests.licenses_app.conftest import active_license
from tests.scenarios.conftest import (  # noqa: F401  (fixtures)
    approved_scenario,
    login,
    make_dataset,
    published_product,
    world,
)


def _settle(client, world, lic: dict) -> None:  # noqa: F811
    pay = client.post(f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"},
                      headers=world.buyer)
    assert pay.status_code in (200, 201), pay.get_json()
    r = client.post(f"/api/v1/payments/{pay.get_json()['payment_id']}/settle",
                    json={"bank_reference": "BANK-1"}, headers=world.operator)
    assert r.status_code == 200, r.get_json()


def _sums(rows: list[dict], *keys: str) -> dict[str, int]:
    return {k: sum(r[k] for r in rows) for k in keys}


def test_licenses_and_revenue_by_scenario_and_product_sum_to_the_totals(
    client, market, world  # noqa: F811
):
    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    lic = client.post(f"/api/v1/products/{product['id']}/apply",
                      json={"scenario_id": scenario["id"], "purpose_statement": "授信审批"},
                      headers=world.buyer)
    assert lic.status_code == 201, lic.get_json()
    _settle(client, world, lic.get_json())
    plain = active_license(client, market, amount=123_457)  # no scenario, no product
    # A refund in the same month: the operator revokes the plain license at once.
    r = client.post(f"/api/v1/licenses/{plain['id']}/revoke",
                    json={"reason": "report test", "refund": True},
                    headers=market.operator.headers)
    assert r.status_code == 200, r.get_json()

    r = client.get(f"/api/v1/reports/{current_period()}", headers=world.regulator)
    assert r.status_code == 200, r.get_json()
    report = r.get_json()["report"]

    lic_part = report["licenses"]
    assert lic_part["granted"] == 2
    assert lic_part["amount_fen"] == sum(c["amount_fen"] for c in lic_part["by_category"])
    for key, name in (("by_scenario", "scenario"), ("by_product", "product")):
        rows = lic_part[key]
        assert _sums(rows, "licenses", "amount_fen") == {
            "licenses": lic_part["granted"], "amount_fen": lic_part["amount_fen"]}
        assert [r[f"{name}_id"] for r in rows] == [
            scenario["id"] if name == "scenario" else product["id"], None]
        assert rows[0][name] == (scenario["code"] if name == "scenario" else product["code"])
        assert rows[1]["amount_fen"] == 123_457 and rows[1][name] is None

    money = report["revenue"]
    assert money["total_fen"] == sum(r["revenue_fen"] for r in money["rows"])
    assert money["total_fen"] < product["price"] + 123_457  # the refund counts, negatively
    for key, name in (("by_scenario", "scenario"), ("by_product", "product")):
        rows = money[key]
        assert _sums(rows, "total_fen", "operator_fen", "departments_fen") == {
            "total_fen": money["total_fen"], "operator_fen": money["operator_fen"],
            "departments_fen": money["departments_fen"]}
        assert [r[f"{name}_id"] for r in rows][-1] is None
        assert all(r["total_fen"] == r["operator_fen"] + r["departments_fen"] for r in rows)
        (grouped,) = [r for r in rows if r[f"{name}_id"] is not None]
        assert grouped["total_fen"] == product["price"] and grouped["licenses"] == 1

    r = client.get(f"/api/v1/reports/{current_period()}?format=csv", headers=world.operator)
    text = r.get_data(as_text=True)
    assert f"revenue,by_scenario[0].total_fen,{product['price']}" in text
    assert f"licenses,by_product[0].product,{product['code']}" in text


# ---------------------------------------------------------------- the split, as a property

AT = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)

_items = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 5_000_000), st.sampled_from(["tax", "social"])),
    min_size=1, max_size=3,
)


@st.composite
def _months(draw):
    n = draw(st.integers(1, 6))
    items = {
        lic: [revenue._Item(ds, amount, cat) for ds, amount, cat in draw(_items)]
        for lic in range(1, n + 1)
    }
    providers = {
        ds: draw(st.dictionaries(st.integers(100, 103), st.integers(1, 5), min_size=1,
                                 max_size=3))
        for ds in range(1, 5)
    }
    shares = {d: Fraction(draw(st.integers(0, 10_000)), 10_000) for d in range(100, 104)}
    money = [
        revenue._Money(lic, AT + dt.timedelta(minutes=i), amount)
        for i, (lic, amount) in enumerate(draw(st.lists(
            st.tuples(st.integers(1, n), st.integers(-3_000_000, 9_000_000).filter(bool)),
            max_size=8)))
    ]
    group_of = {lic: draw(st.one_of(st.none(), st.integers(1, 3))) for lic in range(1, n + 1)}
    return money, items, providers, shares, group_of


@settings(max_examples=150, deadline=None)
@given(_months())
def test_groups_sum_exactly_to_the_months_split(case):
    money, items, providers, shares, group_of = case

    def share_of(_ds, _cat, dept, _at):
        return shares[dept]

    entries = revenue._entries(money, items, providers, share_of)
    operator = sum(e.amount_fen for e in entries if e.party == pricing.OPERATOR)
    departments = sum(e.amount_fen for e in entries if e.party != pricing.OPERATOR)
    groups = revenue_by_group(money, items, providers, share_of, group_of)
    assert sum(g.operator_fen for g in groups) == operator
    assert sum(g.departments_fen for g in groups) == departments
    assert sum(g.total_fen for g in groups) == sum(m.amount_fen for m in money)
    assert len({g.key for g in groups}) == len(groups)
    assert sum(g.licenses for g in groups) == len({m.license_id for m in money})
