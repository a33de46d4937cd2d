"""The monthly report as a PDF (reportlab; the built-in CID font STSong-Light for Chinese).

A human-readable rendering: what verifies is the signed JSON, whose SHA-256, signature and key
id the last page prints, and which the document's Subject carries in full (base64 after
``market-signed-report:``).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from market.crypto import canonical_json, sha256_hex
from market.governance.pdf import _font, _wrap


class _Writer:
    def __init__(self, pdf: canvas.Canvas, font: str):
        self.pdf, self.font = pdf, font
        self.width, self.height = A4
        self.y = self.height - 25 * mm

    def _room(self, needed: float) -> None:
        if self.y - needed < 20 * mm:
            self.pdf.showPage()
            self.y = self.height - 25 * mm

    def heading(self, text: str) -> None:
        self._room(16 * mm)
        self.y -= 4 * mm
        self.pdf.setFont(self.font, 13)
        self.pdf.drawString(20 * mm, self.y, text)
        self.y -= 8 * mm

    def line(self, text: str, size: int = 9, indent: float = 0) -> None:
        for part in _wrap(text, 90 if size <= 9 else 70):
            self._room(6 * mm)
            self.pdf.setFont(self.font, size)
            self.pdf.drawString((22 + indent) * mm, self.y, part)
            self.y -= 5 * mm

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        widths = 170 / max(len(header), 1)
        for i, row in enumerate([header, *rows]):
            self._room(6 * mm)
            self.pdf.setFont(self.font, 8 if i else 8.5)
            for j, cell in enumerate(row):
                text = "—" if cell is None else str(cell)
                self.pdf.drawString((22 + j * widths) * mm, self.y, text[: int(widths / 1.9)])
            self.y -= 5 * mm


def report_pdf(signed: Mapping[str, Any], labels: Mapping[str, str]) -> bytes:
    """Render ``signed`` (``{report, signature, public_key_id}``). ``labels`` holds the
    (translated) headings, keyed by section."""
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    report = signed["report"]
    pdf.setTitle(f"{labels['title']} {report['period']}")
    pdf.setAuthor("公共数据授权运营平台")
    # The signed JSON in the document's Subject (base64), so that the PDF verifies offline on
    # its own: what its pages print is that JSON's SHA-256, signature and key id.
    pdf.setSubject("market-signed-report:"
                   + base64.b64encode(canonical_json(dict(signed))).decode("ascii"))
    w = _Writer(pdf, font)
    pdf.setFont(font, 18)
    pdf.drawCentredString(w.width / 2, w.y, f"{labels['title']} {report['period']}")
    w.y -= 10 * mm
    w.line(f"{report['from']} — {report['until']}   {labels['generated_at']}: "
           f"{report['generated_at']}")
    head = report.get("audit_head") or {}
    w.line(f"{labels['audit_head']}: seq {head.get('seq')} {head.get('hash')}")

    lic = report["licenses"]
    w.heading(labels["licenses"])
    w.line(f"{labels['granted']}: {lic['granted']}")
    w.table([labels["category"], labels["licenses"], labels["amount_fen"]],
            [(r["category"], r["licenses"], r["amount_fen"]) for r in lic["by_category"]])
    w.table([labels["department"], labels["licenses"], labels["items"]],
            [(r["department"], r["licenses"], r["items"]) for r in lic["by_department"]])
    for key, label in (("by_scenario", "scenario"), ("by_product", "product")):
        w.table([labels[label], labels["licenses"], labels["amount_fen"]],
                [(r[label] or labels["none"], r["licenses"], r["amount_fen"])
                 for r in lic.get(key, [])])

    money = report["revenue"]
    w.heading(labels["revenue"])
    w.table([labels["party"], labels["category"], labels["revenue_fen"], labels["cap_fen"],
             labels["excess_fen"]],
            [(r["department"] or r["party"], r["category"], r["revenue_fen"], r["cap_fen"],
              r["excess_fen"]) for r in money["rows"]])
    for key, label in (("by_scenario", "scenario"), ("by_product", "product")):
        w.table([labels[label], labels["licenses"], labels["revenue_fen"], labels["operator_fen"],
                 labels["departments_fen"]],
                [(r[label] or labels["none"], r["licenses"], r["total_fen"], r["operator_fen"],
                  r["departments_fen"]) for r in money.get(key, [])])

    q = report["queries"]
    w.heading(labels["queries"])
    w.line(", ".join(f"{k}: {v}" for k, v in q["by_status"].items()) or "—")
    w.table([labels["rule"], labels["count"]], list(q["refusals_by_rule"].items()))
    w.table([labels["buyer"], labels["epsilon"], labels["count"]],
            [(r["buyer"], r["epsilon_spent"], r["queries"]) for r in q["privacy_budget_by_buyer"]])

    c = report["consents"]
    w.heading(labels["consents"])
    w.line(", ".join(f"{k}: {v}" for k, v in c["events"].items()))
    w.line(f"{labels['lookups']}: {c['lookups']}  ({labels['refused']}: {c['lookups_refused']})")

    g = report["governance"]
    w.heading(labels["governance"])
    w.table([labels["event"], labels["count"]], [(k, v) for k, v in g["counts"].items() if v])

    k = report["kpis"]
    w.heading(labels["kpis"])
    for key, value in k.items():
        if not isinstance(value, list):
            w.line(f"{labels.get(key, key)}: {'—' if value is None else value}")
    w.table([labels["http_latency_by_route_group"], labels["count"], "p95 (ms)"],
            [(g["route_group"], g["requests"], g["p95_ms"])
             for g in k.get("http_latency_by_route_group", [])])

    w.heading(labels["signature"])
    w.line(f"SHA-256 (canonical JSON): {sha256_hex(canonical_json(report))}", size=8)
    w.line(f"Ed25519: {signed['signature']}", size=8)
    w.line(f"public_key_id: {signed['public_key_id']}", size=8)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
