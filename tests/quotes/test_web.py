"""The pricing pages: calculator, quotes, parameters form and revenue caps, per role."""

from __future__ import annotations

import re

import pytest
from flask import render_template

from tests.accounts.test_web import csrf_from, login


def signed_in(client, make_user, role: str, **kw):
    user = make_user(role, **kw)
    assert login(client, user.email).status_code == 302
    return user


def test_buyer_pages_and_the_calculator(client, make_user, make_dataset):
    signed_in(client, make_user, "buyer")
    d = make_dataset(title="企业登记信息")
    hidden = make_dataset(status="pending_review", title="未上架数据")
    empty = client.get("/quotes")
    assert empty.status_code == 200
    assert 'data-testid="quotes-table"' not in empty.get_data(as_text=True)
    assert 'href="/quotes/new"' in empty.get_data(as_text=True)
    picker = client.get("/quotes/new").get_data(as_text=True)
    assert "企业登记信息" in picker and "未上架数据" not in picker
    page = client.get(f"/quotes/new?dataset_id={d.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-endpoint="/api/v1/quotes"' in html and f'data-dataset-id="{d.id}"' in html
    assert "js/quotes.js" in html and "chartjs/chart.umd.min.js" in html
    assert "<script>" not in html and " onclick=" not in html  # no inline script (CSP)
    # The entity key is checked and cannot be unticked; the suppressed column is not offered.
    assert re.search(r'value="enterprise_pseudonym" checked disabled', html)
    assert "legal_rep_name" not in html
    assert client.get(f"/quotes/new?dataset_id={hidden.id}").status_code == 404
    assert client.get("/quotes/new?dataset_id=987654").status_code == 404


def test_the_calculator_posts_with_the_session_and_csrf(client, make_user, make_dataset):
    signed_in(client, make_user, "buyer")
    d = make_dataset()
    html = client.get(f"/quotes/new?dataset_id={d.id}").get_data(as_text=True)
    body = {
        "items": [{"dataset_id": d.id, "columns": None}],
        "duration_months": 12,
        "purpose": "research",
        "query_quota": 1000,
    }
    # A cookie alone never authorizes a state change.
    assert client.post("/api/v1/quotes", json=body).status_code == 400
    r = client.post("/api/v1/quotes", json=body, headers={"X-CSRFToken": csrf_from(html)})
    assert r.status_code == 201, r.get_json()
    q = r.get_json()
    detail = client.get(f"/quotes/{q['id']}")
    text = detail.get_data(as_text=True)
    assert detail.status_code == 200
    assert re.search(r'data-testid="quote-total">¥[\d,]+\.\d\d<', text)
    assert q["signature"] in text and q["public_key_id"] in text
    assert "(Asia/Shanghai)" in text and 'class="factor-chart"' in text
    has_apply = "licenses.apply" in client.application.view_functions
    assert ('data-testid="apply-license"' in text) is has_apply
    listing = client.get("/quotes").get_data(as_text=True)
    assert f"/quotes/{q['id']}" in listing


def test_quote_page_is_private_to_the_buyer(client, make_user, make_dataset, as_role, quote_body):
    _, h = as_role("buyer")
    q = client.post("/api/v1/quotes", headers=h, json=quote_body(make_dataset())).get_json()
    signed_in(client, make_user, "buyer")
    assert client.get(f"/quotes/{q['id']}").status_code == 404


@pytest.mark.parametrize("role", ["operator", "regulator", "department", "subject"])
def test_buyer_pages_refuse_other_roles(client, make_user, role):
    signed_in(client, make_user, role)
    assert client.get("/quotes").status_code == 403
    assert client.get("/quotes/new").status_code == 403


def test_anonymous_is_sent_to_login(client):
    for path in (
        "/quotes",
        "/quotes/new",
        "/quotes/1",
        "/pricing/parameters",
        "/pricing/revenue-caps",
    ):
        r = client.get(path)
        assert r.status_code == 302 and "/login" in r.headers["Location"], path


def test_dashboards_show_the_pricing_panels(client, make_user):
    signed_in(client, make_user, "operator")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-panel="pricing"' in html and "/pricing/parameters" in html
    client.post("/logout", data={"csrf_token": csrf_from(html)})
    signed_in(client, make_user, "buyer")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-panel="my_quotes"' in html and "/quotes/new" in html


def _form_data(html: str) -> dict[str, str]:
    """The parameter form as a browser would submit it (inputs with their values)."""
    data = {
        name: value
        for name, value in re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', html)
    }
    data["csrf_token"] = csrf_from(html)
    return data


def test_operator_edits_parameters_in_the_form(app, client, make_user):
    signed_in(client, make_user, "operator")
    page = client.get("/pricing/parameters")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="parameters-form"' in html
    data = _form_data(html)
    assert data["reasonable_return"] == "0.08" and data["base_version"] == "1"
    data.update({"reasonable_return": "0.1", "cat-0-coefficient": "1.25", "note": "年度复核"})
    r = client.post("/pricing/parameters", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    after = client.get("/pricing/parameters").get_data(as_text=True)
    assert 'data-testid="current-version"' in after and "年度复核" in after
    body = client.get("/api/v1/pricing/parameters").get_json()
    assert body["version"] == 2 and body["parameters"]["reasonable_return"] == "0.1"
    first_category = sorted(body["parameters"]["category_coefficients"])[0]
    assert body["parameters"]["category_coefficients"][first_category] == "1.25"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reasonable_return": "2"}, "reasonable_return"),
        ({"horizon_months": "three"}, "horizon_months"),
        ({"duration_exponent": "1.2"}, "duration_exponent"),
        ({"purpose-research": "0"}, "purpose_coefficients.research"),
        ({"cat-0-ceiling": "lots"}, "categories[0]"),
        ({"cat-0-coefficient": "-1"}, "categories[0]"),
        ({"bracket-2-rate": "0.01"}, "bundle_discount_brackets[2]"),
    ],
)
def test_parameter_errors_appear_next_to_their_field(client, make_user, change, field):
    signed_in(client, make_user, "operator")
    data = _form_data(client.get("/pricing/parameters").get_data(as_text=True))
    data.update(change)
    r = client.post("/pricing/parameters", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert f'<p class="field-error" data-field="{field}">' in html, html[:3000]
    assert client.get("/api/v1/pricing/parameters").get_json()["version"] == 1
    # What was typed is kept.
    key, value = next(iter(change.items()))
    assert f'name="{key}" value="{value}"' in html


def test_regulator_reads_parameters_but_cannot_save(client, make_user):
    signed_in(client, make_user, "regulator")
    html = client.get("/pricing/parameters").get_data(as_text=True)
    assert "<fieldset disabled>" in html and "parameter-history" in html
    data = _form_data(html)
    assert client.post("/pricing/parameters", data=data).status_code == 403


@pytest.mark.parametrize("role", ["buyer", "department", "subject"])
def test_pricing_admin_pages_refuse_other_roles(client, make_user, role):
    signed_in(client, make_user, role)
    assert client.get("/pricing/parameters").status_code == 403
    assert client.get("/pricing/revenue-caps").status_code == 403


@pytest.mark.parametrize("role", ["operator", "regulator"])
def test_revenue_caps_page(client, make_user, role):
    signed_in(client, make_user, role)
    r = client.get("/pricing/revenue-caps?period=2026-11")
    assert r.status_code == 200 and "2026-11" in r.get_data(as_text=True)
    bad = client.get("/pricing/revenue-caps?period=nope")
    assert bad.status_code == 302


def test_revenue_caps_page_has_table_and_chart(
    client, make_user, make_dataset, as_role, quote_body, make_license
):
    import datetime as dt

    from market.extensions import db
    from market.quotes.models import Quote

    _, h = as_role("buyer")
    q = client.post("/api/v1/quotes", headers=h, json=quote_body(make_dataset())).get_json()
    from licenses.models import Payment

    starts = dt.datetime(2026, 11, 5, tzinfo=dt.UTC)
    lic = make_license(db.session.get(Quote, q["id"]), starts_at=starts)
    db.session.add(
        Payment(
            license_id=lic.id,
            provider="invoice",
            status="settled",
            currency="CNY",
            amount_fen=lic.price_total_fen,
            reference="pay_caps_page",
            refunded_fen=0,
            settled_at=starts,
        )
    )
    db.session.commit()
    signed_in(client, make_user, "operator")
    html = client.get("/pricing/revenue-caps?period=2026-11").get_data(as_text=True)
    assert 'data-testid="cap-table"' in html and 'id="cap-chart"' in html and "data-chart=" in html


def test_calculator_partial_for_non_buyers_and_unlisted(app, make_dataset, make_user):
    from flask import g

    d = make_dataset()
    with app.test_request_context("/"):
        g.user = None
        html = render_template("quotes/_calculator.html", dataset=d, current_user=None)
        assert "quote-form" not in html and 'data-testid="price-calculator"' in html
        department = make_user("department")
        html = render_template("quotes/_calculator.html", dataset=d, current_user=department)
        assert "quote-form" not in html
        buyer = make_user("buyer")
        assert "quote-form" in render_template(
            "quotes/_calculator.html", dataset=d, current_user=buyer
        )
        d.status = "pending_review"
        assert "quote-form" not in render_template(
            "quotes/_calculator.html", dataset=d, current_user=buyer
        )
