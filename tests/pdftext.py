"""The text a reportlab PDF draws, for tests (no PDF library in the venv): each content stream
(ASCII85 then Flate, as reportlab writes them) is decoded and its string operands read, the
CID-font ones (UCS-2) decoded as UTF-16-BE."""

from __future__ import annotations

import base64
import re
import zlib

_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f",
            b"(": b"(", b")": b")", b"\\": b"\\"}


def _literal(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c != b"\\":
            out += c
            i += 1
            continue
        nxt = raw[i + 1:i + 2]
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif nxt.isdigit():
            m = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
            out.append(int(m.group(0), 8))
            i += 1 + len(m.group(0))
        else:
            i += 2
    return bytes(out)


def pdf_text(data: bytes) -> str:
    """Every drawn string, one per line."""
    lines = []
    for m in re.finditer(rb"/Filter \[([^\]]*)\][^>]*>>\s*stream\r?\n(.*?)endstream",
                         data, re.S):
        head, body = m.group(1), m.group(2).strip()
        if b"ASCII85Decode" in head:
            body = base64.a85decode(body.removesuffix(b"~>"))
        if b"FlateDecode" in head:
            body = zlib.decompress(body)
        for s in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", body, re.S):
            raw = _literal(s.group(1))
            # Every string is drawn in the CID font (UCS-2); reportlab's own Helvetica is unused.
            try:
                text = raw.decode("utf-16-be") if len(raw) % 2 == 0 else raw.decode("latin-1")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            lines.append(text)
    return "\n".join(lines)
