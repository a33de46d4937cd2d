"""Assertions that a Chinese answer contains no English sentence (issue #15, language).

An *English sentence* is three or more English words in a row ("the license is", "Only the
operator"). Codes stay allowed: one token such as ``sandbox.query``, ``d2_tax``,
``STRIPE_WEBHOOK_SECRET``, ``PaymentIntent``, an e-mail address or a number is not a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CJK = re.compile(r"[\u4e00-\u9fff]")
# A word: letters only, not part of a code (no `_`, `.`, `@`, digits glued to it).
_WORD = r"(?<![\w@/-])(?<!\w\.)[A-Za-z][a-z']*(?![\w@/-]|\.\w)"
ENGLISH_SENTENCE = re.compile(rf"{_WORD}(?:[ ,;:]+{_WORD}){{2,}}")


def english_sentences(text: str) -> list[str]:
    return [m.group(0) for m in ENGLISH_SENTENCE.finditer(text)]


def assert_chinese(text: str, where: str = "") -> None:
    """``text`` has Chinese characters and no English sentence."""
    assert CJK.search(text), f"{where}: no Chinese in {text!r}"
    found = english_sentences(text)
    assert not found, f"{where}: English in a zh answer: {found} (in {text!r})"


def assert_english(text: str, where: str = "") -> None:
    """``text`` is an English sentence (names inside it may be Chinese)."""
    assert english_sentences(text), f"{where}: no English sentence in {text!r}"


def check_answer(response, status: int, lang: str, where: str = "") -> dict:
    """The API envelope of ``response`` has ``status`` and its message (and field errors) in
    ``lang``."""
    body = response.get_json()
    assert response.status_code == status, (where, response.status_code, body)
    check = assert_chinese if lang == "zh" else assert_english
    check(body["message"], where)
    if lang == "zh":
        for text in _field_messages(body.get("errors")):
            # Field errors: no English sentence (short ones may be a code or a number only).
            assert not english_sentences(text), f"{where}: English field error {text!r}"
    return body


def _field_messages(errors) -> Iterable[str]:
    if isinstance(errors, str):
        yield errors
    elif isinstance(errors, dict):
        for key, value in errors.items():
            if key == "rule":  # a code, never translated
                continue
            yield from _field_messages(value)
    elif isinstance(errors, list):
        for value in errors:
            yield from _field_messages(value)


def visible_text(html: str) -> str:
    """The text a reader sees: no tags, scripts, styles, attribute values (tooltips), code or
    preformatted blocks (SQL, JSON), monospaced codes, nor the English half of a bilingual
    document (``lang="en"``)."""
    html = re.sub(r"(?is)<(script|style|code|pre|textarea)\b.*?</\1>", " ", html)
    html = re.sub(r"(?s)<!--.*?-->", " ", html)
    # Deliberately bilingual documents mark their English half; codes are set in `.mono`.
    html = re.sub(r"""(?is)<(\w+)\b[^>]*\blang=["']en["'][^>]*>.*?</\1>""", " ", html)
    html = re.sub(
        r"""(?is)<(\w+)\b[^>]*\bclass=["'][^"']*\bmono\b[^"']*["'][^>]*>.*?</\1>""", " ", html
    )
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    import html as _html

    # A command quoted in backticks (`market audit verify …`) is code, not prose.
    return re.sub(r"`[^`]*`", " ", _html.unescape(html))
