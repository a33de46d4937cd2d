"""Check characters for Chinese identifier codes.

Pure functions, no Flask, no database. Used to validate organizations' credit codes,
to detect PII in uploaded tables and to generate valid demo data.

- Unified Social Credit Code (统一社会信用代码), GB 32100-2015: 18 characters from a
  31-symbol alphabet (digits and upper-case letters without I, O, Z, S, V); the 18th is a
  check character computed with weights 3^(i) mod 31.
- Resident identity number (公民身份号码), GB 11643-1999: 17 digits plus a MOD 11-2 check
  character (0-9 or X).
"""

from __future__ import annotations

import datetime as dt

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK = "10X98765432"


def uscc_check_char(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters.

    Raises ValueError if a character is outside the code's alphabet.
    """
    if len(first17) != 17:
        raise ValueError("a credit code body has 17 characters")
    try:
        total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not allowed in a credit code") from None
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True if ``code`` is an 18-character USCC whose check character is right."""
    if not isinstance(code, str) or len(code) != 18:
        return False
    code = code.upper()
    try:
        return uscc_check_char(code[:17]) == code[17]
    except ValueError:
        return False


def resident_id_check_char(first17: str) -> str:
    """Return the GB 11643-1999 MOD 11-2 check character for 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("a resident ID body has 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def resident_id_birth_date(rid: str) -> dt.date | None:
    """The birth date embedded in an 18- or legacy 15-digit resident ID, or None."""
    try:
        if len(rid) == 18:
            return dt.date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
        if len(rid) == 15:
            return dt.date(1900 + int(rid[6:8]), int(rid[8:10]), int(rid[10:12]))
    except ValueError:
        return None
    return None


def is_valid_resident_id(rid: str, today: dt.date | None = None) -> bool:
    """True for an 18-digit ID with a right check character and a real, past birth date,
    or a legacy 15-digit all-numeric ID with a real birth date."""
    if not isinstance(rid, str):
        return False
    rid = rid.upper()
    if len(rid) == 18:
        if not (rid[:17].isascii() and rid[:17].isdigit()):
            return False
        if resident_id_check_char(rid[:17]) != rid[17]:
            return False
    elif len(rid) == 15:
        if not (rid.isascii() and rid.isdigit()):
            return False
    else:
        return False
    born = resident_id_birth_date(rid)
    if born is None:
        return False
    today = today or dt.date.today()
    return dt.date(1900, 1, 1) <= born <= today
