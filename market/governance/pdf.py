"""The registration certificate as a PDF (reportlab, built-in CID font STSong-Light for Chinese).

The PDF is a human-readable rendering; what a verifier checks is the signed JSON, which the PDF
prints in full together with its signature and key id.
"""

from __future__ import annotations

import io
import json
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def certificate_pdf(signed: dict[str, Any], labels: dict[str, str], title: str) -> bytes:
    """Render ``signed`` (``{certificate, signature, public_key_id}``) as a one-page PDF.

    ``labels`` maps certificate keys to the (translated) field names shown; ``title`` is the
    (translated) heading. Raises nothing for well-formed input.
    """
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    cert = signed["certificate"]
    pdf.setTitle(f"{title} {cert.get('number', '')}")
    pdf.setAuthor("公共数据授权运营平台")
    width, height = A4
    y = height - 30 * mm
    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, y, "数据资产登记证书")
    y -= 9 * mm
    pdf.setFont(font, 12)
    pdf.drawCentredString(width / 2, y, title)
    y -= 14 * mm
    pdf.setFont(font, 11)
    for key, label in labels.items():
        value = cert.get(key)
        shown = "—" if value is None else str(value)
        lines = _wrap(shown, 48)
        pdf.drawString(25 * mm, y, label)
        for line in lines:
            pdf.drawString(75 * mm, y, line)
            y -= 7 * mm
    y -= 6 * mm
    pdf.setFont(font, 8)
    payload = json.dumps(cert, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for label, value in (
        ("signed JSON", payload),
        ("signature (Ed25519)", signed["signature"]),
        ("public_key_id", signed["public_key_id"]),
    ):
        pdf.drawString(25 * mm, y, label)
        y -= 4.5 * mm
        for line in _wrap(value, 95):
            pdf.drawString(25 * mm, y, line)
            y -= 4.5 * mm
        y -= 2 * mm
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
