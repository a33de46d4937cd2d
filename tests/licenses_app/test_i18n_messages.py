"""Licence refusals reach a Chinese caller in Chinese, an English caller in English (#15)."""

from __future__ import annotations

import pytest

from tests.licenses_app.conftest import active_license, apply
from tests.zh_text import check_answer

LANGS = ["zh", "en"]


def _h(party, lang):
    return {**party.headers, "Accept-Language": lang}


@pytest.mark.parametrize("lang", LANGS)
def test_a_license_that_is_not_yours(client, market, lang):
    lic = active_license(client, market)
    other = market.party("buyer")
    r = client.get(f"/api/v1/licenses/{lic['id']}", headers=_h(other, lang))
    check_answer(r, 404, lang, "another buyer's license")


@pytest.mark.parametrize("lang", LANGS)
def test_a_blacklisted_buyer_applying(client, market, lang):
    quote = market.quote([(market.dataset(), 5_000)])
    r = client.post(
        "/api/v1/blacklist",
        json={"organization_id": market.buyer.org.id, "reason": "fraudulent use"},
        headers=market.regulator.headers,
    )
    assert r.status_code == 201
    r = client.post(
        "/api/v1/licenses",
        json={"quote_id": quote.id, "purpose_statement": "SME credit risk scoring"},
        headers=_h(market.buyer, lang),
    )
    check_answer(r, 403, lang, "blacklisted buyer applies")


@pytest.mark.parametrize("lang", LANGS)
def test_role_and_state_refusals(client, market, lang):
    lic = active_license(client, market)
    cases = [
        (
            "post",
            f"/api/v1/licenses/{lic['id']}/suspend",
            market.operator,
            {"reason": "audit"},
            403,
            "operator suspends",
        ),
        (
            "post",
            f"/api/v1/licenses/{lic['id']}/payments",
            market.buyer,
            {"provider": "invoice"},
            409,
            "pays an active license",
        ),
        (
            "post",
            "/api/v1/payments/999999/settle",
            market.operator,
            {"bank_reference": "B-1"},
            404,
            "unknown payment",
        ),
        ("get", "/api/v1/ledger", market.buyer, None, 403, "buyer reads the ledger"),
        (
            "post",
            "/api/v1/blacklist",
            market.regulator,
            {"organization_id": market.operator.org.id, "reason": "x"},
            422,
            "blacklists the operator",
        ),
        (
            "post",
            "/api/v1/blacklist",
            market.operator,
            {"organization_id": market.buyer.org.id, "reason": "x"},
            403,
            "operator changes the blacklist",
        ),
    ]
    for method, url, party, body, status, where in cases:
        kwargs = {"headers": _h(party, lang)}
        if body is not None:
            kwargs["json"] = body
        r = getattr(client, method)(url, **kwargs)
        check_answer(r, status, lang, where)


@pytest.mark.parametrize("lang", LANGS)
def test_an_application_by_a_non_buyer(client, market, lang):
    quote = market.quote([(market.dataset(), 5_000)])
    r = apply(client, market, quote, party=market.operator)
    assert r.status_code == 403
    r = client.post(
        "/api/v1/licenses",
        json={"quote_id": quote.id, "purpose_statement": "scoring"},
        headers=_h(market.operator, lang),
    )
    check_answer(r, 403, lang, "operator applies")
