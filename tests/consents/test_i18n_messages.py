"""Consent and lookup refusals reach a Chinese caller in Chinese, an English one in English
(#15)."""

from __future__ import annotations

import pytest

from tests.consents import data
from tests.consents.conftest import future
from tests.zh_text import check_answer

LANGS = ["zh", "en"]


def _h(party, lang):
    return {**party.headers, "Accept-Language": lang}


def _ask(client, buyer, lic, lang="en", **over):
    body = {
        "license_id": lic.id,
        "subject_credit_code": data.CODES[0],
        "purpose": "Working-capital loan credit check",
        "valid_until": future(),
        **over,
    }
    return client.post("/api/v1/consents", json=body, headers=_h(buyer, lang))


@pytest.mark.parametrize("lang", LANGS)
def test_consent_refusals(world, client, lang):
    buyer, operator = world.party(), world.party("operator")
    lic = world.license(buyer)
    cid = _ask(client, buyer, lic).get_json()["id"]
    decision = f"/api/v1/consents/{cid}/decision"
    other = world.subject(1)
    cases = [
        (decision, other, {"decision": "grant"}, 404, "decision by another enterprise"),
        (decision, buyer, {"decision": "grant"}, 403, "decision by the bank"),
        (decision, operator, {"decision": "grant"}, 403, "decision by the operator"),
        (
            "/api/v1/consents",
            operator,
            {
                "license_id": lic.id,
                "subject_credit_code": data.CODES[0],
                "purpose": "x",
                "valid_until": future(),
            },
            403,
            "operator requests a consent",
        ),
    ]
    for url, party, body, status, where in cases:
        check_answer(client.post(url, json=body, headers=_h(party, lang)), status, lang, where)
    # A second open request for the same license and enterprise.
    check_answer(_ask(client, buyer, lic, lang), 409, lang, "consent already open")
    # A consent that would outlast the license.
    check_answer(
        _ask(
            client,
            buyer,
            lic,
            lang,
            valid_until=future(days=4000),
            subject_credit_code=data.CODES[1],
        ),
        422,
        lang,
        "consent outlasts the license",
    )


@pytest.mark.parametrize("lang", LANGS)
def test_a_lookup_without_consent(world, client, lang):
    buyer = world.party()
    lic = world.license(buyer, quota=5)
    r = client.post(
        "/api/v1/lookups",
        json={"license_id": lic.id, "subject_credit_code": data.CODES[0]},
        headers=_h(buyer, lang),
    )
    check_answer(r, 403, lang, "lookup without consent")
