"""The text a reportlab PDF shows (uncompressed content, UTF-16BE CID strings or Latin-1)."""

from __future__ import annotations

import re

_SHOWN = re.compile(rb"\(((?:\\.|[^\\)])*)\) Tj", re.S)


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x5C:  # backslash
            nxt = raw[i + 1 : i + 2]
            if nxt.isdigit():
                digits = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4]).group(0)
                out.append(int(digits, 8))
                i += 1 + len(digits)
                continue
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(nxt, nxt)
            i += 2
            continue
        out.append(byte)
        i += 1
    return bytes(out)


def shown_text(pdf: bytes) -> list[str]:
    """Each string the page draws, decoded."""
    texts = []
    for match in _SHOWN.finditer(pdf):
        raw = _unescape(match.group(1))
        texts.append(raw.decode("utf-16-be") if len(raw) % 2 == 0 and b"\x00" in raw or
                     any(b > 0x7F for b in raw) else raw.decode("latin-1"))
    return texts
