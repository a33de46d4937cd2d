"""The authorization agreement (授权运营协议) as a PDF (reportlab, the CID font STSong-Light, as
the registration certificate and the regulator report are made).

A human-readable rendering of the bundle (``services.bundle``): the terms, each signature's
key id and value, and the SHA-256 of the canonical signed document. What a verifier checks is
the JSON bundle (``market.agreements.document.verify_bundle``); the PDF prints it in full.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from market.crypto import canonical_json, sha256_hex
from market.governance.pdf import _font, _wrap


def document_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the document both parties signed."""
    return sha256_hex(canonical_json(dict(document)))


def agreement_pdf(bundle: Mapping[str, Any], status: str, labels: Mapping[str, str]) -> bytes:
    """Render ``bundle`` (``{document, department_signature, operator_signature, key_origin}``)
    with its (translated) ``status``; ``labels`` holds the translated field names. Raises
    nothing for a well-formed bundle."""
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    doc = bundle["document"]
    pdf.setTitle(f"{labels['title']} {doc.get('number', '')}")
    pdf.setAuthor("公共数据授权运营平台")
    width, height = A4
    state = {"y": height - 28 * mm}

    def room(needed: float) -> None:
        if state["y"] - needed < 18 * mm:
            pdf.showPage()
            state["y"] = height - 22 * mm

    def row(label: str, value: Any, size: int = 10, width_chars: int = 50) -> None:
        shown = "—" if value in (None, "", []) else str(value)
        for i, part in enumerate(_wrap(shown, width_chars)):
            room(6 * mm)
            pdf.setFont(font, size)
            if i == 0:
                pdf.drawString(22 * mm, state["y"], label)
            pdf.drawString(72 * mm, state["y"], part)
            state["y"] -= 6 * mm

    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, state["y"], "公共数据授权运营协议")
    state["y"] -= 9 * mm
    pdf.setFont(font, 12)
    pdf.drawCentredString(width / 2, state["y"], f"{labels['title']} {doc.get('number', '')}")
    state["y"] -= 14 * mm

    def org(ref: Mapping[str, Any] | None) -> str | None:
        if not ref:
            return None
        return " ".join(str(ref[k]) for k in ("name", "credit_code") if ref.get(k))

    scope = doc.get("scope") or {}
    term = doc.get("term") or {}
    share = doc.get("revenue_share") or {}
    row(labels["number"], doc.get("number"))
    row(labels["status"], status)
    row(labels["department"], org(doc.get("department")))
    row(labels["operator"], org(doc.get("operator")))
    row(labels["categories"], ", ".join(scope.get("categories") or []))
    row(labels["datasets"], ", ".join(str(i) for i in scope.get("dataset_ids") or []))
    row(labels["term"], f"{term.get('starts_at')} — {term.get('ends_at')}")
    if share:
        row(labels["share"], f"{share.get('department_bps')} bp / {share.get('operator_bps')} bp")
    row(labels["key_origin"], bundle.get("key_origin"))
    state["y"] -= 4 * mm

    row(labels["digest"], document_digest(doc), size=8, width_chars=70)
    for key, label in (("department_signature", labels["department_signature"]),
                       ("operator_signature", labels["operator_signature"])):
        sig = bundle.get(key)
        if not sig:
            row(label, labels["not_signed"])
            continue
        row(label, f"Ed25519 key_id {sig.get('key_id')}", size=9)
        if sig.get("public_key"):
            row("public_key", sig["public_key"], size=8, width_chars=70)
        row("signature", sig.get("signature"), size=8, width_chars=70)
    state["y"] -= 4 * mm

    room(10 * mm)
    pdf.setFont(font, 9)
    pdf.drawString(22 * mm, state["y"], labels["signed_json"])
    state["y"] -= 5 * mm
    payload = json.dumps(dict(bundle), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for part in _wrap(payload, 95):
        room(4.5 * mm)
        pdf.setFont(font, 7)
        pdf.drawString(22 * mm, state["y"], part)
        state["y"] -= 4 * mm
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
