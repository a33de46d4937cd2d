"""Column-at-a-time versions of :mod:`market.pipeline.validators`.

The same rules, over Arrow string arrays, with no Python loop per cell: regular expressions
run in Arrow's RE2 kernels, and the check characters (GB 11643 MOD 11-2, GB 32100 mod 31,
Luhn) are computed with numpy on the fixed-width byte matrix of the values that have the right
length. Every function returns a numpy bool array aligned with its input; nulls are False.

RE2 has no lookarounds, so the patterns here are anchored (whole-value) or capture the
neighbouring character instead.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from market.idcodes import USCC_ALPHABET

from . import kinds
from .surnames import COMPOUND_SURNAMES, SINGLE_SURNAMES
from .validators import BANK_CARD_PREFIXES, TRIM_CHARS

_RID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RID_WEIGHTS_32 = _RID_WEIGHTS.astype(np.int32)
_RID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_USCC_WEIGHTS = np.array(
    [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64
)
_USCC_LUT = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_LUT[ord(_c)] = _i
    _USCC_LUT[ord(_c.lower())] = _i
_CARD_PREFIX = np.zeros(256, dtype=bool)
for _c in BANK_CARD_PREFIXES:
    _CARD_PREFIX[ord(_c)] = True

_SINGLE = pa.array(sorted(SINGLE_SURNAMES))
_COMPOUND = pa.array(sorted(COMPOUND_SURNAMES))
_CJK = r"\x{4e00}-\x{9fff}"


# ---------------------------------------------------------------------------- basics


def as_string(arr: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """A single-chunk ``string`` array (32-bit offsets), whatever came in."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    return arr


def null_empty(arr: pa.Array) -> pa.Array:
    """'' becomes null."""
    empty = pc.equal(arr, "")
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr)


def trim(arr: pa.Array) -> pa.Array:
    """Trim whitespace (the same set as the scalar rules) and null the empty strings."""
    return null_empty(pc.utf8_trim(arr, characters=TRIM_CHARS))


#: Characters that NFKC leaves alone on their own and that never combine: values made only of
#: these are already normalized, and are skipped (CJK text is most of the non-ASCII data).
_NFKC_STABLE = r"\x00-\x7f\x{4e00}-\x{9fff}\x{00b7}\x{3001}\x{3002}"


def nfkc(arr: pa.Array) -> pa.Array:
    """NFKC-normalize, touching only the values that may change."""
    todo = ~to_bool(pc.string_is_ascii(arr))
    if not todo.any():
        return arr
    todo[todo] = matches(arr.filter(pa.array(todo)), rf"[^{_NFKC_STABLE}]")
    if not todo.any():
        return arr
    mask = pa.array(todo)
    return pc.replace_with_mask(arr, mask, pc.utf8_normalize(arr.filter(mask), form="NFKC"))


def _strip_chars(arr: pa.Array, chars: str) -> pa.Array:
    """Remove ``chars`` (a few ASCII punctuation characters) from the values that have any."""
    escaped = "".join("\\" + ch for ch in chars)
    # Identifiers are mostly plain letters and digits already: look only at the others.
    has = ~to_bool(pc.fill_null(pc.ascii_is_alnum(arr), True))
    if not has.any():
        return arr
    has[has] = matches(arr.filter(pa.array(has)), f"[{escaped}]")
    if not has.any():
        return arr
    mask = pa.array(has)
    return pc.replace_with_mask(
        arr, mask, pc.replace_substring_regex(arr.filter(mask), f"[{escaped}]", "")
    )


def normalize(kind: str | None, arr: pa.Array) -> pa.Array:
    """Vectorized :func:`market.pipeline.validators.normalize`."""
    arr = trim(nfkc(as_string(arr)))
    if kind in (kinds.RESIDENT_ID, kinds.CREDIT_CODE):
        arr = pc.ascii_upper(_strip_chars(arr, " -"))
    elif kind == kinds.MOBILE:
        arr = _strip_chars(arr, " -()")
        longer = to_bool(pc.greater(pc.utf8_length(arr), 11))
        if longer.any():
            mask = pa.array(longer)
            fixed = pc.replace_substring_regex(
                arr.filter(mask), r"^(?:\+?86|0086)(1[0-9]{10})$", r"\1"
            )
            arr = pc.replace_with_mask(arr, mask, fixed)
    elif kind == kinds.BANK_CARD:
        arr = _strip_chars(arr, " -")
    elif kind == kinds.EMAIL:
        arr = pc.ascii_lower(arr)
    elif kind == kinds.PERSON_NAME:
        spaced = matches(arr, r"[\t\n\f\r]|  ")
        if spaced.any():
            mask = pa.array(spaced)
            fixed = pc.replace_substring_regex(arr.filter(mask), r"[\t\n\f\r ]+", " ")
            arr = pc.replace_with_mask(arr, mask, fixed)
    return null_empty(arr)


def to_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def matches(arr: pa.Array, pattern: str) -> np.ndarray:
    return to_bool(pc.match_substring_regex(arr, pattern))


def fixed_width(arr: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the values that are exactly ``width`` bytes, and their (n, width) bytes."""
    sel = pc.fill_null(pc.equal(pc.binary_length(arr), width), False)
    idx = np.flatnonzero(to_bool(sel))
    if len(idx) == 0:
        return idx, np.empty((0, width), dtype=np.uint8)
    sub = arr.filter(sel)
    offsets = np.frombuffer(sub.buffers()[1], dtype=np.int32)[
        sub.offset : sub.offset + len(sub) + 1
    ]
    data = np.frombuffer(sub.buffers()[2], dtype=np.uint8)
    # Offsets are monotonic and every value has the same length, so the bytes are contiguous.
    return idx, data[offsets[0] : offsets[0] + len(sub) * width].reshape(-1, width)


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_NAT = np.iinfo(np.int64).min


def valid_ymd(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which (year, month, day) triples are real dates, and those dates as datetime64[D]."""
    y = y.astype(np.int64)
    m = m.astype(np.int64)
    d = d.astype(np.int64)
    ok = (y >= 1) & (y <= 9999) & (m >= 1) & (m <= 12) & (d >= 1)
    m = np.where(ok, m, 1)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    ok &= d <= _DAYS_IN_MONTH[m] + ((m == 2) & leap)
    # Days since 1970-01-01 from the civil date (H. Hinnant's days_from_civil).
    yy = y - (m <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ok, np.where(ok, days, _NAT).view("datetime64[D]")


def _digits(mat: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.zeros(len(mat), dtype=np.int64)
    for j in range(start, stop):
        out = out * 10 + (mat[:, j].astype(np.int64) - 48)
    return out


# ---------------------------------------------------------------------------- identifiers


def resident_id_birth(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(well-formed, birth date) for normalized resident IDs: check character for 18 digits,
    all digits for 15, and a real calendar date in both cases (the range is not checked)."""
    ok, born, _ = resident_id_birth_sex(arr)
    return ok, born


def resident_id_birth_sex(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`resident_id_birth` and :func:`resident_id_gender` in one pass over the IDs."""
    n = len(arr)
    ok = np.zeros(n, dtype=bool)
    born = np.full(n, np.datetime64("NaT", "D"))
    sex = np.zeros(n, dtype=np.int8)
    for width in (18, 15):
        idx, mat = fixed_width(arr, width)
        if not len(idx):
            continue
        sex[idx] = _sex_digit(mat[:, 16 if width == 18 else 14])
        body_w = 17 if width == 18 else 15
        body = mat[:, :body_w] - np.uint8(48)  # uint8 wrap-around makes non-digits > 9
        good = (body <= 9).all(axis=1)
        if width == 18:
            expected = _RID_CHECK[(body.astype(np.int32) @ _RID_WEIGHTS_32) % 11]
            good &= mat[:, 17] == expected
            y, m, d = _digits(mat, 6, 10), _digits(mat, 10, 12), _digits(mat, 12, 14)
        else:
            y, m, d = 1900 + _digits(mat, 6, 8), _digits(mat, 8, 10), _digits(mat, 10, 12)
        real, dates = valid_ymd(y, m, d)
        good &= real
        ok[idx] = good
        born[idx] = np.where(good, dates, np.datetime64("NaT", "D"))
    return ok, born, sex


def _sex_digit(column: np.ndarray) -> np.ndarray:
    """1 (odd digit), 2 (even digit) or 0 (not a digit) for a column of byte values."""
    digit = column.astype(np.int64) - 48
    return np.where((digit >= 0) & (digit <= 9), np.where(digit % 2 == 1, 1, 2), 0)


def resident_id_valid(arr: pa.Array, today: dt.date) -> np.ndarray:
    ok, born = resident_id_birth(arr)
    return ok & (born >= np.datetime64("1900-01-01")) & (born <= np.datetime64(today, "D"))


def resident_id_gender(arr: pa.Array) -> np.ndarray:
    """1 for male, 2 for female (odd/even sequence digit), 0 when unknown."""
    out = np.zeros(len(arr), dtype=np.int8)
    for width, pos in ((18, 16), (15, 14)):
        idx, mat = fixed_width(arr, width)
        if len(idx):
            out[idx] = _sex_digit(mat[:, pos])
    return out


def credit_code_valid(arr: pa.Array) -> np.ndarray:
    ok = np.zeros(len(arr), dtype=bool)
    idx, mat = fixed_width(arr, 18)
    if len(idx):
        vals = _USCC_LUT[mat]
        good = (vals >= 0).all(axis=1)
        expected = (31 - (vals[:, :17] @ _USCC_WEIGHTS) % 31) % 31
        ok[idx] = good & (vals[:, 17] == expected)
    return ok


#: Luhn's doubled digit (2d, minus 9 above 9), indexed by the digit's byte value minus 48.
_LUHN_DOUBLE = np.zeros(256, dtype=np.uint8)
_LUHN_DOUBLE[:10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]


def luhn_valid(arr: pa.Array, widths: range = range(16, 20)) -> np.ndarray:
    ok = np.zeros(len(arr), dtype=bool)
    for width in widths:
        idx, mat = fixed_width(arr, width)
        if not len(idx):
            continue
        digits = mat - np.uint8(48)  # wraps non-digits above 9
        good = (digits <= 9).all(axis=1)
        doubled = np.arange(width)[::-1] % 2 == 1
        total = digits[:, ~doubled].sum(axis=1, dtype=np.int32) + _LUHN_DOUBLE[
            digits[:, doubled]
        ].sum(axis=1, dtype=np.int32)
        ok[idx] = good & (total % 10 == 0)
    return ok


def bank_card_valid(arr: pa.Array) -> np.ndarray:
    first = pc.utf8_slice_codeunits(arr, 0, 1)
    prefix_ok = to_bool(pc.is_in(first, pa.array(sorted(BANK_CARD_PREFIXES))))
    return luhn_valid(arr) & prefix_ok


def mobile_valid(arr: pa.Array) -> np.ndarray:
    return matches(arr, r"^1[3-9][0-9]{9}$")


def email_valid(arr: pa.Array) -> np.ndarray:
    return matches(arr, r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")


# ---------------------------------------------------------------------------- people


def chinese_name_like(arr: pa.Array) -> np.ndarray:
    shape = matches(arr, rf"^[{_CJK}]{{2,4}}$")
    surname = to_bool(pc.is_in(pc.utf8_slice_codeunits(arr, 0, 1), _SINGLE)) | to_bool(
        pc.is_in(pc.utf8_slice_codeunits(arr, 0, 2), _COMPOUND)
    )
    not_a_thing = ~matches(
        arr,
        r"(?:公司|集团|局|委|厅|部|院|所|中心|银行|学校|大学|医院|区|县|市|省|镇|乡|村|路|街|店|厂|"
        r"站|馆|会|社|队|处|科|室|组)$",
    )
    minority = matches(arr, rf"^[{_CJK}]{{1,8}}·[{_CJK}·]{{1,16}}$")
    return (shape & surname & not_a_thing) | minority


def latin_name_like(arr: pa.Array) -> np.ndarray:
    return matches(arr, r"^[A-Z][A-Za-z'\-]+(?: [A-Z][A-Za-z'\-.]+){1,3}$")


def detailed_address_like(arr: pa.Array) -> np.ndarray:
    return matches(
        arr,
        rf"[{_CJK}](?:路|街|道|巷|弄|胡同|大道|里|村|镇|乡|小区|公寓|花园).*?[0-9]+ *"
        r"(?:号|弄|室|栋|幢|楼|单元|组|层)",
    )


_REGION = (
    r"^(?P<prov>[^省0-9路街道号]{2,7}?(?:省|自治区|特别行政区)|北京市|天津市|上海市|重庆市)?"
    r"(?P<city>[^市0-9路街道号弄巷]{1,10}?(?:市|自治州|地区|盟))?"
    r"(?P<dist>[^0-9区县旗路街道号弄巷村镇乡]{1,8}?(?:区|县|旗|市))?"
)


def _regions(arr: pa.Array, level: int) -> pa.Array:
    """Regions computed on the distinct address prefixes, then spread back to the rows.

    No part of the pattern can match a digit and the longest match is 34 characters, so it
    runs on the text before the first digit, cut at 40 characters: the same result, but those
    prefixes repeat (street level), and the slow capturing match runs once per distinct one.
    """
    prefix = pc.extract_regex(pc.fill_null(arr, ""), r"^(?P<p>[^0-9]*)").field("p")
    encoded = pc.dictionary_encode(pc.utf8_slice_codeunits(prefix, 0, 40))
    parts = pc.extract_regex(encoded.dictionary, _REGION)
    prov, city, dist = (parts.field(f) for f in ("prov", "city", "dist"))
    if level == 0:
        joined = pc.binary_join_element_wise(prov, city, dist, "")
    elif level == 1:
        joined = pc.binary_join_element_wise(prov, city, "")
    else:
        joined = prov
    return pc.take(null_empty(joined), encoded.indices)


def region(arr: pa.Array, level: int = 0) -> pa.Array:
    """The address generalized to district (level 0), city (1) or province (2); null when the
    address has no recognisable part at that level."""
    out = _regions(arr, level)
    if arr.null_count:
        out = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.string()), out)
    return out


def gender_codes(arr: pa.Array) -> np.ndarray:
    """1 male, 2 female, 0 unknown or not a gender word."""
    low = pc.utf8_lower(arr)
    male = to_bool(pc.is_in(low, pa.array(["男", "男性", "m", "male"])))
    female = to_bool(pc.is_in(low, pa.array(["女", "女性", "f", "female"])))
    return np.where(male, 1, np.where(female, 2, 0)).astype(np.int8)


def gender_word(arr: pa.Array) -> np.ndarray:
    low = pc.utf8_lower(arr)
    words = ["男", "男性", "m", "male", "女", "女性", "f", "female", "未知", "未说明", "unknown"]
    return to_bool(pc.is_in(low, pa.array(words)))
