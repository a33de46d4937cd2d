"""Quote and pricing refusals reach a Chinese caller in Chinese, an English one in English;
the pricing model's errors (``N_`` + params) are translated at the boundary (#15)."""

from __future__ import annotations

import pytest

from tests.zh_text import CJK, assert_chinese, check_answer

LANGS = ["zh", "en"]


@pytest.mark.parametrize("lang", LANGS)
def test_quote_refusals(client, as_role, make_dataset, quote_body, lang):
    _, h = as_role("buyer")
    h = {**h, "Accept-Language": lang}
    d = make_dataset()
    cases = [
        (
            {**quote_body(d), "items": [{"dataset_id": d.id}, {"dataset_id": d.id}]},
            422,
            "a dataset listed twice",
        ),
        (quote_body(d, columns=["no_such_column"]), 422, "an unknown column"),
        ({**quote_body(d), "items": [{"dataset_id": 999_999}]}, 422, "an unknown dataset"),
    ]
    for body, status, where in cases:
        check_answer(client.post("/api/v1/quotes", json=body, headers=h), status, lang, where)


SCHEMA_CASES = [
    ({"exclusive": True}, "exclusive", "exclusivity"),
    ({"duration_months": 0}, "duration_months", "a duration out of range"),
    ({"purpose": "resale"}, "purpose", "an unknown purpose"),
    ({"items": []}, "items", "no items"),
]


@pytest.mark.parametrize("lang", LANGS)
def test_schema_field_errors_are_in_the_callers_language(
    client, as_role, make_dataset, quote_body, lang
):
    """The validators of the quote schema (Length, Range, OneOf, the exclusivity rule)."""
    _, h = as_role("buyer")
    h = {**h, "Accept-Language": lang}
    d = make_dataset()
    for change, field, where in SCHEMA_CASES:
        r = client.post("/api/v1/quotes", json={**quote_body(d), **change}, headers=h)
        assert r.status_code == 422, (where, r.get_json())
        (text,) = r.get_json()["errors"][field]
        if lang == "zh":
            assert_chinese(text, where)
        else:
            assert not CJK.search(text), (where, text)


def test_schema_error_envelope_is_chinese(client, as_role, make_dataset, quote_body):
    _, h = as_role("buyer")
    d = make_dataset()
    r = client.post(
        "/api/v1/quotes",
        json={**quote_body(d), "duration_months": 0, "foo": 1},
        headers={**h, "Accept-Language": "zh"},
    )
    check_answer(r, 422, "zh", "schema error envelope")


@pytest.mark.parametrize("lang", LANGS)
def test_pricing_refusals(client, as_role, lang):
    _, op = as_role("operator")
    _, buyer = as_role("buyer")
    op = {**op, "Accept-Language": lang}
    buyer = {**buyer, "Accept-Language": lang}
    cases = [
        (
            "put",
            "/api/v1/pricing/parameters",
            op,
            {"parameters": {"category_coefficients": {"ecology_environment": "2"}}},
            422,
            "an unknown category in the pricing parameters",
        ),
        (
            "put",
            "/api/v1/pricing/parameters",
            op,
            {"parameters": {"reasonable_return": "-1"}},
            422,
            "a negative return",
        ),
        (
            "put",
            "/api/v1/pricing/parameters",
            buyer,
            {"parameters": {"reasonable_return": "0.1"}},
            403,
            "a buyer sets parameters",
        ),
        (
            "post",
            "/api/v1/pricing/proposals",
            buyer,
            {"changes": {"default_revenue_cap_fen": 1}},
            403,
            "a pricing proposal by a buyer",
        ),
        (
            "post",
            "/api/v1/pricing/proposals",
            op,
            {"changes": {"reasonable_return": "0.2"}},
            422,
            "a proposal of a non-cap field",
        ),
    ]
    for method, url, h, body, status, where in cases:
        r = getattr(client, method)(url, json=body, headers=h)
        check_answer(r, status, lang, where)
