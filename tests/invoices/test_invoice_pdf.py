"""The invoice PDF: what it prints (payee, bank account, tax number, amount in figures and in
capitals, license, due date), and who may download it from the license page."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from licenses.invoice_pdf import InvoiceDocument, InvoiceLine, invoice_pdf
from tests.invoices.pdftext import shown_text
from tests.licenses_app.conftest import active_license, apply
from tests.licenses_app.test_web import login

PAYEE = {
    "MARKET_INVOICE_PAYEE_NAME": "上海数据交易运营有限公司",
    "MARKET_INVOICE_BANK_NAME": "中国工商银行上海分行",
    "MARKET_INVOICE_BANK_ACCOUNT": "1001 2345 6789 0123 456",
    "MARKET_INVOICE_TAX_NUMBER": "91310000MA1FL5LX3R",
    "MARKET_INVOICE_DUE_DAYS": 15,
}


def _doc(**kw) -> InvoiceDocument:
    base = dict(
        number="INV-202612-000042",
        issued_at=dt.datetime(2026, 12, 6, 17, 30, tzinfo=dt.UTC),  # 7 Dec in Shanghai
        due_date=dt.date(2026, 12, 22),
        amount_fen=1_234_567,
        license_id=9,
        license_purpose="research",
        payee_name=PAYEE["MARKET_INVOICE_PAYEE_NAME"],
        payee_bank=PAYEE["MARKET_INVOICE_BANK_NAME"],
        payee_account=PAYEE["MARKET_INVOICE_BANK_ACCOUNT"],
        payee_tax_number=PAYEE["MARKET_INVOICE_TAX_NUMBER"],
        buyer_name="某商业银行",
        buyer_credit_code="91310000132200821H",
        lines=[InvoiceLine("企业纳税信用 (v1)", 1_234_567)],
    )
    base.update(kw)
    return InvoiceDocument(**base)


def test_the_pdf_prints_every_fact():
    pdf = invoice_pdf(_doc(), compress=False)
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page\n") == 1
    text = shown_text(pdf)
    for expected in (
        "INV-202612-000042", "2026-12-07", "2026-12-22", "上海数据交易运营有限公司",
        "中国工商银行上海分行", "1001 2345 6789 0123 456", "91310000MA1FL5LX3R", "某商业银行",
        "#9 (research)", "¥12,345.67", "壹万贰仟叁佰肆拾伍元陆角柒分", "企业纳税信用 (v1)",
    ):
        assert expected in text, expected
    assert "STSong-Light" in pdf.decode("latin-1")


def test_unconfigured_payee_fields_say_so():
    text = shown_text(invoice_pdf(_doc(payee_account="", payee_tax_number=""), compress=False))
    assert text.count("（未配置 not configured）") == 2


def test_compressed_by_default():
    assert len(invoice_pdf(_doc())) < len(invoice_pdf(_doc(), compress=False))


# ------------------------------------------------------------------- the download, by role


@pytest.fixture
def payee(app):
    saved = {k: app.config.get(k) for k in PAYEE}
    app.config.update(PAYEE)
    yield
    app.config.update(saved)


def _invoice_url(client, market, lic_id):
    payments = client.get(f"/api/v1/licenses/{lic_id}/payments",
                          headers=market.buyer.headers).get_json()
    items = payments["items"] if isinstance(payments, dict) else payments
    pay = next(p for p in items if p["provider"] == "invoice")
    return f"/licenses/{lic_id}/invoices/{pay['id']}.pdf", pay


def test_buyer_downloads_from_the_license_page(client, market, payee):
    lic = active_license(client, market, amount=100_050)
    url, pay = _invoice_url(client, market, lic["id"])
    login(client, market.buyer)
    page = client.get(f"/licenses/{lic['id']}").get_data(as_text=True)
    assert f'href="{url}"' in page
    assert f'href="/sandbox/{lic["id"]}"' in page  # the license page links to its sandbox
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="{pay["invoice_number"]}.pdf"'
    )
    assert r.data.startswith(b"%PDF-")


@pytest.mark.parametrize("role", ["operator", "regulator"])
def test_operator_and_regulator_may_download(client, market, payee, role):
    lic = active_license(client, market)
    url, _pay = _invoice_url(client, market, lic["id"])
    login(client, getattr(market, role))
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("kind", ["buyer", "department", "subject"])
def test_anyone_else_gets_404(client, market, kind):
    lic = active_license(client, market)
    url, _pay = _invoice_url(client, market, lic["id"])
    login(client, market.party(kind))
    assert client.get(url).status_code == 404


def test_anonymous_is_sent_to_login(client, market):
    lic = active_license(client, market)
    url, _pay = _invoice_url(client, market, lic["id"])
    r = client.get(url)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_a_payment_of_another_license_is_not_found(client, market):
    """The object check covers the payment too: its own license's URL, never another's."""
    mine = active_license(client, market)
    other = active_license(client, market)
    _url, other_pay = _invoice_url(client, market, other["id"])
    login(client, market.buyer)
    assert client.get(f"/licenses/{mine['id']}/invoices/{other_pay['id']}.pdf").status_code == 404


def test_the_sandbox_link_only_for_an_active_license_of_the_buyer(client, market):
    quote = market.quote([(market.dataset(), 10_000)])
    lic = apply(client, market, quote).get_json()
    login(client, market.buyer)
    page = client.get(f"/licenses/{lic['id']}").get_data(as_text=True)
    assert "license-sandbox" not in page
    assert re.search(r'data-testid="license-price"', page)


# ---------------------------------------------------------------- the API route, by role


def test_the_api_serves_the_invoice_pdf_to_the_buyer(client, market, payee):
    lic = active_license(client, market, amount=100_050)
    _url, pay = _invoice_url(client, market, lic["id"])
    url = f"/api/v1/licenses/{lic['id']}/invoice.pdf"
    for target in (url, f"{url}?payment_id={pay['id']}"):
        r = client.get(target, headers=market.buyer.headers)
        assert r.status_code == 200 and r.mimetype == "application/pdf"
        assert r.headers["Content-Disposition"] == (
            f'attachment; filename="{pay["invoice_number"]}.pdf"'
        )
        assert r.headers["Cache-Control"] == "private, no-store"
        assert r.data.startswith(b"%PDF-")


@pytest.mark.parametrize("role", ["operator", "regulator"])
def test_the_api_serves_operator_and_regulator(client, market, payee, role):
    lic = active_license(client, market)
    r = client.get(f"/api/v1/licenses/{lic['id']}/invoice.pdf",
                   headers=getattr(market, role).headers)
    assert r.status_code == 200 and r.data.startswith(b"%PDF-")


@pytest.mark.parametrize("kind", ["buyer", "department", "subject"])
def test_the_api_answers_404_to_anyone_else(client, market, kind):
    lic = active_license(client, market)
    r = client.get(f"/api/v1/licenses/{lic['id']}/invoice.pdf",
                   headers=market.party(kind).headers)
    assert r.status_code == 404 and r.mimetype == "application/json"
    assert client.get(f"/api/v1/licenses/{lic['id']}/invoice.pdf").status_code == 401


def test_the_api_refuses_a_payment_of_another_license(client, market):
    mine = active_license(client, market)
    other = active_license(client, market)
    _url, other_pay = _invoice_url(client, market, other["id"])
    r = client.get(f"/api/v1/licenses/{mine['id']}/invoice.pdf?payment_id={other_pay['id']}",
                   headers=market.buyer.headers)
    assert r.status_code == 404
    r = client.get(f"/api/v1/licenses/{mine['id']}/invoice.pdf?payment_id=0",
                   headers=market.buyer.headers)
    assert r.status_code == 422


def test_a_license_without_invoice_has_no_pdf(client, market):
    quote = market.quote([(market.dataset(), 10_000)])
    lic = apply(client, market, quote).get_json()
    r = client.get(f"/api/v1/licenses/{lic['id']}/invoice.pdf", headers=market.buyer.headers)
    assert r.status_code == 404
