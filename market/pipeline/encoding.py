"""Which text encoding a CSV file uses: UTF-8 (with or without BOM), GBK or GB18030.

Strict UTF-8 is tried first on a sample (GBK text practically never decodes as UTF-8, the
reverse often does), then GBK, then GB18030. GBK files are read with the GB18030 codec, a
superset that decodes GBK bytes the same. When the first megabyte is pure ASCII, the sample is
taken where the first non-ASCII byte is.
"""

from __future__ import annotations

import codecs
import io

from market.i18n import N_

from .errors import EncodingError
from .sealed import InputFile, open_input

SAMPLE_BYTES = 1 << 20


def _decodes(data: bytes, codec: str) -> bool:
    try:
        codecs.getincrementaldecoder(codec)("strict").decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _non_ascii_window(f: io.BufferedReader) -> bytes | None:
    """The first stretch of the file that holds a non-ASCII byte, from a line start."""
    f.seek(0)
    carry = b""
    while block := f.read(SAMPLE_BYTES):
        data = carry + block
        if not data.isascii():
            pos = next(i for i, b in enumerate(data) if b >= 0x80)
            start = data.rfind(b"\n", 0, pos) + 1
            return data[start:] + f.read(SAMPLE_BYTES)
        carry = data[-4096:]
    return None


def detect_encoding(path: InputFile) -> tuple[str, str]:
    """(reported encoding, codec to read with). Raises EncodingError."""
    with open_input(path) as f:
        head = f.read(SAMPLE_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            if _decodes(head[3:], "utf-8"):
                return "utf-8-sig", "utf-8"
            raise EncodingError(N_("the file starts with a UTF-8 mark but is not valid UTF-8"))
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise EncodingError(
                N_("UTF-16 files are not supported: save the file as UTF-8 or GBK")
            )
        window = head if not head.isascii() else _non_ascii_window(f)
    if window is None:
        return "utf-8", "utf-8"
    for name in ("utf-8", "gbk", "gb18030"):
        if _decodes(window, name):
            return name, "gb18030" if name == "gbk" else name
    if window is head:
        line = _first_bad_line(head)
        if line is not None and line > 1:
            raise EncodingError(
                N_("line %(line)s is not valid UTF-8 text"), row=line, line=line
            )
    guess = _charset_guess(window)
    if guess:
        raise EncodingError(
            N_("the file is neither UTF-8 nor GBK/GB18030 (it looks like %(guess)s): save it "
               "as UTF-8"),
            guess=str(guess),
        )
    raise EncodingError(N_("the file is neither UTF-8 nor GBK/GB18030: save it as UTF-8"))


def _first_bad_line(data: bytes) -> int | None:
    """The line of the first byte that breaks UTF-8, if the text before it is UTF-8 with some
    non-ASCII characters (so the file is UTF-8 with a damaged line, not another encoding)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
    else:
        return None
    before = data[:start]
    if before.isascii():
        return None
    return before.count(b"\n") + 1


def _charset_guess(data: bytes) -> str | None:
    import charset_normalizer

    best = charset_normalizer.from_bytes(data[:65536]).best()
    return best.encoding if best is not None else None
