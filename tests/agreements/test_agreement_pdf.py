"""The authorization agreement as a PDF: who may download it (its department, the operator,
the regulator; 404 for another department or a buyer, 401 anonymous), and what it carries:
the parties, the terms, both signatures' key ids and the SHA-256 of the signed document."""

from __future__ import annotations

import pytest

from market.agreements.pdf import document_digest
from tests.agreements.test_agreements import _terms
from tests.catalog.conftest import login  # noqa: F401  (fixture)
from tests.pdftext import pdf_text


@pytest.fixture
def active(client, department, operator):
    r = client.post("/api/v1/agreements", json=_terms(revenue_share_bps=8800),
                    headers=department[1])
    assert r.status_code == 201, r.get_json()
    agreement_id = r.get_json()["id"]
    r = client.post(f"/api/v1/agreements/{agreement_id}/countersign", headers=operator[1])
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_pdf_carries_the_terms_key_ids_and_digest(client, department, active, as_role):
    _, regulator = as_role("regulator")
    bundle = client.get(f"/api/v1/agreements/{active['id']}/document",
                        headers=regulator).get_json()
    r = client.get(f"/api/v1/agreements/{active['id']}/document.pdf", headers=regulator)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF-")
    assert f'filename="{active["number"]}.pdf"' in r.headers["Content-Disposition"]
    text = pdf_text(r.data)
    assert "公共数据授权运营协议" in text and active["number"] in text
    assert department[0].organization.name in text
    assert bundle["document"]["operator"]["name"] in text
    assert "8800 bp / 1200 bp" in text
    for who in ("department_signature", "operator_signature"):
        assert f"key_id {bundle[who]['key_id']}" in text
        assert bundle[who]["signature"][:60] in text
    digest = document_digest(bundle["document"])
    assert digest in text
    assert "Active" in text  # the status, translated (English: the test client's language)


def test_who_may_download_it(client, department, operator, active, as_role, make_org, make_user,
                             auth_header):
    url = f"/api/v1/agreements/{active['id']}/document.pdf"
    assert client.get(url).status_code == 401
    for headers in (department[1], operator[1], as_role("regulator")[1]):
        assert client.get(url, headers=headers).status_code == 200
    other = make_user("department", org=make_org("department"))
    for headers in (auth_header(other), as_role("buyer")[1], as_role("subject")[1]):
        r = client.get(url, headers=headers)
        assert r.status_code == 404, r.get_data(as_text=True)[:200]
    assert client.get("/api/v1/agreements/999999/document.pdf",
                      headers=operator[1]).status_code == 404


def test_the_page_links_to_the_pdf(client, department, active, login):  # noqa: F811
    login(department[0])
    page = client.get(f"/agreements/{active['id']}")
    assert page.status_code == 200
    link = f"/agreements/{active['id']}/document.pdf"
    assert link.encode() in page.data
    r = client.get(link)
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")
