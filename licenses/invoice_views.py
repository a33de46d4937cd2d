"""The invoice PDF of a payment, downloaded from the license page.

Who may download: the buyer of that license, the operator and the regulator (the license's
own visibility, ``services.get_license``); anybody else gets 404, as for the license. The
payee's details come from the operator's settings (``MARKET_INVOICE_*``, see the README).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, g
from flask_babel import gettext as _

from licenses import services
from licenses.invoice_pdf import InvoiceDocument, InvoiceLine, invoice_pdf
from licenses.models import License, Payment
from market.auth import login_required
from market.errors import NotFound
from market.extensions import db

bp = Blueprint("invoices", __name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def due_date(issued_at: dt.datetime, days: int) -> dt.date:
    """The last day to pay: ``days`` after the (Shanghai) day the invoice was issued."""
    return issued_at.astimezone(SHANGHAI).date() + dt.timedelta(days=days)


def invoice_document(lic: License, payment: Payment, config) -> InvoiceDocument:
    issued_at = payment.created_at
    return InvoiceDocument(
        number=payment.invoice_number or "",
        issued_at=issued_at,
        due_date=due_date(issued_at, int(config["MARKET_INVOICE_DUE_DAYS"])),
        amount_fen=payment.amount_fen,
        license_id=lic.id,
        license_purpose=lic.purpose,
        payee_name=config.get("MARKET_INVOICE_PAYEE_NAME") or "",
        payee_bank=config.get("MARKET_INVOICE_BANK_NAME") or "",
        payee_account=config.get("MARKET_INVOICE_BANK_ACCOUNT") or "",
        payee_tax_number=config.get("MARKET_INVOICE_TAX_NUMBER") or "",
        buyer_name=lic.buyer.name,
        buyer_credit_code=lic.buyer.credit_code,
        lines=[
            InvoiceLine(f"{item.dataset.title} (v{item.dataset_version})", item.amount_fen)
            for item in lic.items
        ],
    )


def find_invoice(session, lic: License, payment_id: int | None = None) -> Payment:
    """The invoice payment ``payment_id`` of ``lic`` (None: its latest invoice).

    Raises NotFound if the license has no such invoice (another license's payment included).
    """
    import sqlalchemy as sa

    stmt = sa.select(Payment).where(
        Payment.license_id == lic.id,
        Payment.provider == "invoice",
        Payment.invoice_number.is_not(None),
        Payment.invoice_number != "",
    )
    if payment_id is not None:
        stmt = stmt.where(Payment.id == payment_id)
    payment = session.scalar(stmt.order_by(Payment.id.desc()).limit(1))
    if payment is None:
        raise NotFound(_("License %(id)s has no such invoice.", id=lic.id))
    return payment


def invoice_response(lic: License, payment: Payment) -> Response:
    """The PDF of ``payment``'s invoice, as a download that no cache keeps."""
    body = invoice_pdf(invoice_document(lic, payment, current_app.config))
    return Response(
        body,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{payment.invoice_number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/licenses/<int:license_id>/invoices/<int:payment_id>.pdf")
@login_required
def invoice(license_id: int, payment_id: int):
    lic = services.get_license(db.session, g.actor, license_id)
    return invoice_response(lic, find_invoice(db.session, lic, payment_id))
