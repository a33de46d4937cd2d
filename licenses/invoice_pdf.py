"""An invoice as a PDF document (reportlab, the built-in CID font STSong-Light for Chinese).

Pure: the caller gathers the invoice's facts into :class:`InvoiceDocument` (from the payment,
its license and the operator's settings) and gets bytes back. The document is bilingual
(Chinese first), whatever the reader's language, like the signed license document.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from licenses.capitals import amount_in_capitals

FONT = "STSong-Light"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def yuan(fen: int) -> str:
    """``¥1,234.56`` from integer fen."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    amount_fen: int


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issued_at: dt.datetime
    due_date: dt.date
    amount_fen: int
    license_id: int
    license_purpose: str
    payee_name: str
    payee_bank: str
    payee_account: str
    payee_tax_number: str
    buyer_name: str
    buyer_credit_code: str
    lines: list[InvoiceLine] = field(default_factory=list)


def fields(doc: InvoiceDocument) -> list[tuple[str, str]]:
    """The labelled facts the PDF prints, in order (what a reader must find on it)."""
    missing = "（未配置 not configured）"
    issued = doc.issued_at.astimezone(SHANGHAI).strftime("%Y-%m-%d")
    return [
        ("发票号码 Invoice number", doc.number),
        ("开票日期 Issued", issued),
        ("付款期限 Due date", doc.due_date.isoformat()),
        ("收款方 Payee", doc.payee_name or missing),
        ("开户银行 Bank", doc.payee_bank or missing),
        ("银行账号 Bank account", doc.payee_account or missing),
        ("纳税人识别号 Tax number", doc.payee_tax_number or missing),
        ("付款方 Buyer", doc.buyer_name),
        ("统一社会信用代码 Credit code", doc.buyer_credit_code),
        ("许可 License", f"#{doc.license_id} ({doc.license_purpose})"),
        ("金额（小写）Amount", yuan(doc.amount_fen)),
        ("金额（大写）Amount in words", amount_in_capitals(doc.amount_fen)),
    ]


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def invoice_pdf(doc: InvoiceDocument, *, compress: bool = True) -> bytes:
    """The invoice as a one-page A4 PDF. Raises ValueError/TypeError for a bad amount (see
    ``amount_in_capitals``)."""
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1 if compress else 0)
    pdf.setTitle(f"Invoice {doc.number}")
    pdf.setAuthor(doc.payee_name or "公共数据授权运营平台")
    width, height = A4
    y = height - 28 * mm
    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, y, "发票 INVOICE")
    y -= 8 * mm
    pdf.setFont(font, 10)
    pdf.drawCentredString(width / 2, y, "公共数据授权运营 · 数据使用许可费")
    y -= 14 * mm
    pdf.setFont(font, 11)
    for label, value in fields(doc):
        pdf.drawString(22 * mm, y, label)
        for line in _wrap(value, 40):
            pdf.drawString(85 * mm, y, line)
            y -= 7 * mm
    y -= 6 * mm
    pdf.setFont(font, 12)
    pdf.drawString(22 * mm, y, "明细 Items")
    y -= 8 * mm
    pdf.setFont(font, 10)
    for item in doc.lines:
        for i, line in enumerate(_wrap(item.description, 50)):
            pdf.drawString(22 * mm, y, line)
            if i == 0:
                pdf.drawRightString(width - 22 * mm, y, yuan(item.amount_fen))
            y -= 6 * mm
    pdf.line(22 * mm, y + 3 * mm, width - 22 * mm, y + 3 * mm)
    pdf.setFont(font, 11)
    pdf.drawString(22 * mm, y - 3 * mm, "合计 Total")
    pdf.drawRightString(width - 22 * mm, y - 3 * mm, yuan(doc.amount_fen))
    y -= 16 * mm
    pdf.setFont(font, 9)
    for note in (
        "请在付款期限前通过银行转账支付，并在附言中注明发票号码。",
        "Pay by bank transfer before the due date, quoting the invoice number.",
    ):
        pdf.drawString(22 * mm, y, note)
        y -= 5 * mm
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
