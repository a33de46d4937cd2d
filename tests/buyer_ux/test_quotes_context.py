"""Quotes: the live estimate (nothing stored), the list and the apply page name the datasets
and keep the quote's context, and the catalogue cards show "from ¥…" and a sample size."""

from __future__ import annotations

import sqlalchemy as sa

from market.extensions import db
from market.quotes.from_price import sample_size_hint
from tests.accounts.test_web import login


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_estimate_prices_like_a_quote_and_stores_nothing(client, as_role, make_dataset,
                                                         quote_body):
    from market.audit.models import AuditEvent
    from market.quotes.models import Quote

    _, h = as_role("buyer")
    d = make_dataset()
    body = quote_body(d, duration=6, quota=200, columns=["enterprise_pseudonym", "industry"])
    # The first price seeds the parameter set (audited once); price once before counting.
    assert client.post("/api/v1/quotes/estimate", headers=h, json=body).status_code == 200
    quotes, events = _count(Quote), _count(AuditEvent)
    r = client.post("/api/v1/quotes/estimate", headers=h, json=body)
    assert r.status_code == 200, r.get_json()
    estimate = r.get_json()
    assert (_count(Quote), _count(AuditEvent)) == (quotes, events)
    assert "signature" not in estimate and "id" not in estimate
    signed = client.post("/api/v1/quotes", headers=h, json=body).get_json()
    assert estimate["total"] == signed["total"]
    assert [i["amount"] for i in estimate["items"]] == [i["amount"] for i in signed["items"]]


def test_estimate_validates_like_a_quote(client, as_role, make_dataset, quote_body):
    _, h = as_role("buyer")
    d = make_dataset()
    r = client.post("/api/v1/quotes/estimate", headers=h,
                    json=quote_body(d, columns=["no_such_column"]))
    assert r.status_code == 422
    assert "items.0.columns" in str(r.get_json()["errors"]) or r.get_json()["errors"]
    _, operator = as_role("operator")
    assert client.post("/api/v1/quotes/estimate", headers=operator,
                       json=quote_body(d)).status_code == 403


def test_the_calculator_wires_the_live_estimate(client, make_user, make_dataset):
    user = make_user("buyer")
    assert login(client, user.email).status_code == 302
    d = make_dataset()
    html = client.get(f"/datasets/{d.id}").get_data(as_text=True)
    assert 'data-estimate="/api/v1/quotes/estimate"' in html
    assert 'data-testid="quote-live-total"' in html


def test_quote_list_and_apply_page_name_the_datasets(client, make_user, make_dataset,
                                                     quote_body):
    user = make_user("buyer")
    assert login(client, user.email).status_code == 302
    from tests.accounts.test_web import csrf_from

    a = make_dataset(title="企业纳税信用")
    b = make_dataset(title="社保缴纳人数")
    token = csrf_from(client.get("/quotes").get_data(as_text=True))
    r = client.post("/api/v1/quotes", json=quote_body(a, b), headers={"X-CSRFToken": token})
    assert r.status_code == 201, r.get_json()
    quote_id = r.get_json()["id"]
    listing = client.get("/quotes").get_data(as_text=True)
    assert f'href="/datasets/{a.id}">企业纳税信用</a>' in listing
    assert f'href="/datasets/{b.id}">社保缴纳人数</a>' in listing
    assert f'href="/licenses/apply/{quote_id}"' in listing
    licenses = client.get("/licenses").get_data(as_text=True)
    assert "企业纳税信用, 社保缴纳人数" in licenses
    apply = client.get(f"/licenses/apply/{quote_id}?lang=en").get_data(as_text=True)
    assert f'href="/quotes/{quote_id}"' in apply
    assert (f"You are applying with quote #{quote_id} for: 企业纳税信用, 社保缴纳人数."
            in apply)


def test_catalogue_cards_show_from_price_and_sample_size(client, make_dataset, as_role,
                                                         quote_body):
    d = make_dataset(title="市场主体登记")
    html = client.get("/catalog?lang=en").get_data(as_text=True)
    card = html[html.index(f'data-dataset-id="{d.id}"'):]
    card = card[: card.index("</article>")]
    assert 'data-testid="from-price"' in card
    price = card.split('data-testid="from-price"', 1)[1].split("from ", 1)[1].split("<", 1)[0]
    # The smallest license, priced like a quote: one month, one query, the entity key.
    _, h = as_role("buyer")
    cheapest = min(
        client.post("/api/v1/quotes/estimate", headers=h, json=quote_body(
            d, duration=1, quota=1, purpose=purpose, columns=["enterprise_pseudonym"]
        )).get_json()["total"]
        for purpose in ("research", "internal_risk_control", "commercial_product")
    )
    from market.web import fen

    assert price == fen(cheapest)
    assert "Sample size: about 1,000 records" in card


def test_unpriceable_datasets_have_no_from_price(client, make_dataset):
    d = make_dataset(quality=None, title="未评分")
    html = client.get("/catalog").get_data(as_text=True)
    if f'data-dataset-id="{d.id}"' in html:
        card = html[html.index(f'data-dataset-id="{d.id}"'):]
        assert 'data-testid="from-price"' not in card[: card.index("</article>")]


def test_sample_size_hint_rounds_to_two_figures():
    assert [sample_size_hint(n) for n in (None, 0, 7, 99, 1000, 12_345, 987_654)] == [
        None, 0, 7, 99, 1000, 12_000, 990_000
    ]
