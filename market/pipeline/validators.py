"""Scalar validators and normalizers, one value at a time.

These are the reference definitions: :mod:`market.pipeline.vectorized` implements the same
rules over whole Arrow columns for speed, and the tests check that both agree. The scalar forms
serve :func:`market.pipeline.desensitize.pseudonym` (lookups compute the pseudonym of a single
credit code) and the detection of identifiers embedded in free text.

Python's ``\\b`` does not separate CJK characters from digits (both are ``\\w``), so
``电话13812345678号`` has no word boundary around the number: patterns use explicit
lookarounds on ASCII digits instead. ``[0-9]`` is used rather than ``\\d``, which would also
accept full-width and other Unicode digits (values are NFKC-normalized first).
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pyarrow.compute as pc

from market.idcodes import is_valid_resident_id, is_valid_uscc, resident_id_birth_date

from . import kinds
from .surnames import starts_with_surname

#: Whitespace trimmed from every value; the vectorized trim uses the same set.
TRIM_CHARS = " \t\r\n\f\v\u3000\u00a0"

MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
BANK_CARD_PREFIXES = frozenset("2345689")

_MOBILE_STRIP_RE = re.compile(r"[ \-()]")
_MOBILE_CC_RE = re.compile(r"^(?:\+?86|0086)(1[0-9]{10})$")
_CODE_STRIP_RE = re.compile(r"[ \-]")
_SPACES_RE = re.compile(r"[\t\n\f\r ]+")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")



def nfkc(value: str) -> str:
    """NFKC with the same library and Unicode version as the column-wise pipeline (Arrow's
    utf8proc), so that a value normalizes the same way here and in a published column.
    Python's ``unicodedata`` follows the interpreter's Unicode version (14.0 in 3.11) and
    leaves characters assigned since then unchanged, where Arrow may map them."""
    if value.isascii():
        return value
    return pc.utf8_normalize(pa.scalar(value, pa.string()), form="NFKC").as_py()


# Identifiers inside free text. Lookarounds, not \b (see the module docstring).
MOBILE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
RESIDENT_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
BANK_CARD_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{16,19}(?![0-9])")
CREDIT_CODE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")
#: Bounded repetitions (RFC 5321 limits): an unbounded ``[...]+@`` backtracks quadratically on a
#: long run of address characters with no "@", so one huge cell could stall a publication.
EMAIL_IN_TEXT = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
)

_CJK_NAME_RE = re.compile(r"[\u4e00-\u9fff]{2,4}")
_MINORITY_NAME_RE = re.compile(r"[\u4e00-\u9fff]{1,8}·[\u4e00-\u9fff·]{1,16}")
_LATIN_NAME_RE = re.compile(r"[A-Z][A-Za-z'\-]+(?: [A-Z][A-Za-z'\-.]+){1,3}")
NOT_A_NAME_SUFFIX_RE = re.compile(
    r"(?:公司|集团|局|委|厅|部|院|所|中心|银行|学校|大学|医院|区|县|市|省|镇|乡|村|路|街|店|厂|站|"
    r"馆|会|社|队|处|科|室|组)$"
)
DETAILED_ADDRESS_RE = re.compile(
    r"[\u4e00-\u9fff](?:路|街|道|巷|弄|胡同|大道|里|村|镇|乡|小区|公寓|花园).*?[0-9]+ *"
    r"(?:号|弄|室|栋|幢|楼|单元|组|层)"
)
#: Province / city / district prefix of a Chinese address. Digits and street words are
#: excluded from every part so a street ("长宁路100号小区") is never mistaken for a district.
REGION_RE = re.compile(
    r"^(?P<prov>[^省0-9路街道号]{2,7}?(?:省|自治区|特别行政区)|北京市|天津市|上海市|重庆市)?"
    r"(?P<city>[^市0-9路街道号弄巷]{1,10}?(?:市|自治州|地区|盟))?"
    r"(?P<dist>[^0-9区县旗路街道号弄巷村镇乡]{1,8}?(?:区|县|旗|市))?"
)

_DATE_RES = (
    re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"),
    re.compile(r"([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日?"),
)
_COMPACT_DATE_RE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")

GENDER_VALUES = {
    "男": "M", "男性": "M", "m": "M", "male": "M",
    "女": "F", "女性": "F", "f": "F", "female": "F",
    "未知": None, "未说明": None, "unknown": None,
}  # fmt: skip


def trim(value: str) -> str:
    return value.strip(TRIM_CHARS)


def normalize(kind: str | None, value: str | None) -> str | None:
    """The canonical form of a value of ``kind``: the form that is validated and pseudonymized.

    NFKC first (full-width digits and letters become ASCII), then trimming, then rules per
    kind: identifiers and codes lose spaces and dashes and are upper-cased, mobiles lose the
    +86 prefix, emails are lower-cased. Returns None for an empty value.
    """
    if value is None:
        return None
    value = trim(nfkc(value))
    if not value:
        return None
    if kind in (kinds.RESIDENT_ID, kinds.CREDIT_CODE):
        # ASCII only: codes are ASCII, and Unicode case rules differ between libraries.
        value = _CODE_STRIP_RE.sub("", value).translate(_ASCII_UPPER)
    elif kind == kinds.MOBILE:
        value = _MOBILE_CC_RE.sub(r"\1", _MOBILE_STRIP_RE.sub("", value))
    elif kind == kinds.BANK_CARD:
        value = _CODE_STRIP_RE.sub("", value)
    elif kind == kinds.EMAIL:
        value = value.translate(_ASCII_LOWER)
    elif kind == kinds.PERSON_NAME:
        value = _SPACES_RE.sub(" ", value)
    return value or None


def is_mobile(value: str) -> bool:
    """A mainland mobile number (11 digits, 1[3-9]...), after normalization."""
    norm = normalize(kinds.MOBILE, value)
    return norm is not None and MOBILE_RE.fullmatch(norm) is not None


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of ASCII digits."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_bank_card(value: str) -> bool:
    """16-19 digits, a card-network prefix (2-6, 8, 9) and a valid Luhn check digit."""
    norm = normalize(kinds.BANK_CARD, value)
    return (
        norm is not None
        and 16 <= len(norm) <= 19
        and norm[0] in BANK_CARD_PREFIXES
        and luhn_ok(norm)
    )


def is_resident_id(value: str, today: dt.date | None = None) -> bool:
    """GB 11643-1999 (check character and a real, past birth date) or a legacy 15-digit ID."""
    norm = normalize(kinds.RESIDENT_ID, value)
    return norm is not None and is_valid_resident_id(norm, today)


def is_credit_code(value: str) -> bool:
    """GB 32100-2015 Unified Social Credit Code with a right check character."""
    norm = normalize(kinds.CREDIT_CODE, value)
    return norm is not None and is_valid_uscc(norm)


def is_email(value: str) -> bool:
    norm = normalize(kinds.EMAIL, value)
    return norm is not None and EMAIL_RE.fullmatch(norm) is not None


def is_chinese_name(value: str) -> bool:
    """2-4 CJK characters starting with a known surname, or a name with the middle dot."""
    norm = normalize(kinds.PERSON_NAME, value)
    if norm is None:
        return False
    if _MINORITY_NAME_RE.fullmatch(norm):
        return True
    return (
        _CJK_NAME_RE.fullmatch(norm) is not None
        and starts_with_surname(norm)
        and NOT_A_NAME_SUFFIX_RE.search(norm) is None
    )


def is_latin_name(value: str) -> bool:
    norm = normalize(kinds.PERSON_NAME, value)
    return norm is not None and _LATIN_NAME_RE.fullmatch(norm) is not None


def is_detailed_address(value: str) -> bool:
    """A street-level address: a street word followed by a number (号, 弄, 室...)."""
    norm = normalize(kinds.ADDRESS, value)
    return norm is not None and DETAILED_ADDRESS_RE.search(norm) is not None


def region_of(value: str) -> str | None:
    """The province + city + district prefix of an address, e.g. 上海市浦东新区, or None."""
    norm = normalize(kinds.ADDRESS, value)
    if norm is None:
        return None
    m = REGION_RE.match(norm)
    region = "".join(g or "" for g in m.groups()) if m else ""
    return region or None


def parse_date(value: str, *, compact: bool = False) -> dt.date | None:
    """YYYY-MM-DD, YYYY/M/D, YYYY.M.D, YYYY年M月D日 and, if ``compact``, YYYYMMDD."""
    norm = normalize(None, value)
    if norm is None:
        return None
    patterns = _DATE_RES + ((_COMPACT_DATE_RE,) if compact else ())
    for pattern in patterns:
        m = pattern.fullmatch(norm)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def is_birth_date(value: str, today: dt.date, *, compact: bool = True) -> bool:
    born = parse_date(value, compact=compact)
    return born is not None and dt.date(1900, 1, 1) <= born <= today


def gender_of(value: str) -> str | None:
    """'M', 'F' or None for a recognised gender word (男/女/male/F...)."""
    norm = normalize(None, value)
    return GENDER_VALUES.get(norm.lower()) if norm else None


def resident_id_gender(rid: str) -> str | None:
    """'M' or 'F' from the sequence digit of a resident ID (odd = male)."""
    norm = normalize(kinds.RESIDENT_ID, rid)
    if norm is None or len(norm) not in (15, 18):
        return None
    ch = norm[16] if len(norm) == 18 else norm[14]
    return None if not ch.isdigit() else ("M" if int(ch) % 2 else "F")


def resident_id_birth(rid: str) -> dt.date | None:
    norm = normalize(kinds.RESIDENT_ID, rid)
    return resident_id_birth_date(norm) if norm else None


def find_embedded(text: str, today: dt.date | None = None) -> set[str]:
    """PII kinds found *inside* free text; each candidate must pass its checksum."""
    text = nfkc(text)
    found: set[str] = set()
    for m in RESIDENT_ID_IN_TEXT.finditer(text):
        if is_valid_resident_id(m.group().upper(), today):
            found.add(kinds.RESIDENT_ID)
    if MOBILE_IN_TEXT.search(text):
        found.add(kinds.MOBILE)
    for m in BANK_CARD_IN_TEXT.finditer(text):
        if is_bank_card(m.group()):
            found.add(kinds.BANK_CARD)
    for m in CREDIT_CODE_IN_TEXT.finditer(text):
        if is_valid_uscc(m.group().upper()):
            found.add(kinds.CREDIT_CODE)
    if EMAIL_IN_TEXT.search(text):
        found.add(kinds.EMAIL)
    return found
