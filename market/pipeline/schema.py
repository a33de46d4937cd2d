"""Logical types: inferred from the first chunk, then parsed chunk by chunk.

A column gets a type other than ``string`` when at least :data:`TYPE_SHARE` of its first
:data:`INFER_SAMPLE` non-null values (in the first chunk) parse as that type. Later values that do not parse become null in
the output and count against the validity dimension of the quality score (type parse success).
Integers with leading zeros (postcodes, codes) stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import dates as vd
from . import kinds
from . import vectorized as vz

TYPE_SHARE = 0.95
#: Types are decided on the first this-many non-null values of the first chunk.
INFER_SAMPLE = 50_000
MAX_SCALE = 12
_TRUE = ["true", "t", "yes", "y", "是"]
_FALSE = ["false", "f", "no", "n", "否"]
_INT = r"^[+-]?[0-9]{1,18}$"
_LEADING_ZERO = r"^[+-]?0[0-9]"
_DECIMAL = r"^[+-]?[0-9]{1,26}(?:\.[0-9]*)?$|^[+-]?\.[0-9]+$"
_DATE_HINT = re.compile(r"日期|时间|年月|生日|出生|date|time|day|_at$|_on$|dt$", re.IGNORECASE)


@dataclass(frozen=True)
class TypeInfo:
    """A column's logical type and what parsing it needs."""

    type: str
    #: YYYYMMDD is accepted as a date (only when the header says it is a date).
    compact: bool = False
    #: Digits after the decimal point for ``decimal``.
    scale: int = 0
    #: The Arrow type of a typed Parquet input column, kept as it is.
    native: pa.DataType | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        if self.native is not None:
            return self.native
        return {
            kinds.INTEGER: pa.int64(),
            kinds.DECIMAL: pa.decimal128(38, self.scale),
            kinds.DATE: pa.date32(),
            kinds.DATETIME: pa.timestamp("us"),
            kinds.BOOLEAN: pa.bool_(),
        }.get(self.type, pa.string())


def native_type(dtype: pa.DataType) -> str | None:
    """The logical type of a typed (Parquet) column, or None for text."""
    if pa.types.is_integer(dtype):
        return kinds.INTEGER
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return kinds.DECIMAL
    if pa.types.is_date(dtype):
        return kinds.DATE
    if pa.types.is_timestamp(dtype):
        return kinds.DATETIME
    if pa.types.is_boolean(dtype):
        return kinds.BOOLEAN
    return None


def date_hinted(name: str) -> bool:
    return _DATE_HINT.search(name) is not None


def infer(name: str, text: pa.Array, dtype: pa.DataType | None = None) -> TypeInfo:
    """Infer the logical type of trimmed text values (nulls ignored)."""
    if dtype is not None and (logical := native_type(dtype)) is not None:
        return TypeInfo(logical, native=dtype)
    values = text.drop_null()
    if len(values) > INFER_SAMPLE:
        values = values.slice(0, INFER_SAMPLE)
    n = len(values)
    if n == 0:
        return TypeInfo(kinds.STRING)

    def share(mask: np.ndarray) -> float:
        return float(mask.sum()) / n

    compact = date_hinted(name)
    low = pc.utf8_lower(values)
    if share(vz.to_bool(pc.is_in(low, pa.array(_TRUE + _FALSE)))) >= TYPE_SHARE:
        return TypeInfo(kinds.BOOLEAN)
    if compact:
        ok, _ = vd.parse_dates(values, compact=True)
        if share(ok) >= TYPE_SHARE:
            return TypeInfo(kinds.DATE, compact=True)
    leading_zero = vz.matches(values, _LEADING_ZERO).any()
    if not leading_zero and share(vz.matches(values, _INT)) >= TYPE_SHARE:
        return TypeInfo(kinds.INTEGER)
    decimal = vz.matches(values, _DECIMAL)
    if not leading_zero and share(decimal) >= TYPE_SHARE:
        frac = pc.utf8_length(
            pc.extract_regex(values.filter(pa.array(decimal)), r"\.(?P<f>[0-9]*)$").field("f")
        )
        scale = min(int(pc.max(frac).as_py() or 0), MAX_SCALE)
        return TypeInfo(kinds.DECIMAL, scale=scale)
    date_ok, _ = vd.parse_dates(values)
    if share(date_ok) >= TYPE_SHARE:
        return TypeInfo(kinds.DATE)
    dt_ok, _ = vd.parse_datetimes(values)
    if share(dt_ok) >= TYPE_SHARE:
        return TypeInfo(kinds.DATETIME)
    return TypeInfo(kinds.STRING)


@dataclass
class Parsed:
    """A chunk of one column parsed to its type."""

    #: Typed Arrow values for the output (unparseable values are null).
    values: pa.Array
    #: Which rows parsed (False for nulls).
    ok: np.ndarray
    #: For date and datetime columns: the values as datetime64[D] (NaT where not parsed).
    dates: np.ndarray | None = None
    #: Decimal values that had more digits than the column's scale and were truncated.
    truncated: int = 0


def parse(info: TypeInfo, text: pa.Array, raw: pa.Array | None = None) -> Parsed:
    """Parse trimmed text (or pass a typed Parquet column through)."""
    present = ~vz.to_bool(pc.is_null(text))
    if info.native is not None and raw is not None:
        ok = ~vz.to_bool(pc.is_null(raw))
        dates = None
        if info.type in (kinds.DATE, kinds.DATETIME):
            dates = (
                raw.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False).astype("datetime64[D]")
            )
        return Parsed(raw, ok, dates)
    if info.type == kinds.INTEGER:
        ok = vz.matches(text, _INT)
        values = pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string())).cast(pa.int64())
        return Parsed(values, ok)
    if info.type == kinds.DECIMAL:
        return _parse_decimal(text, info.scale)
    if info.type == kinds.BOOLEAN:
        low = pc.utf8_lower(text)
        true = vz.to_bool(pc.is_in(low, pa.array(_TRUE)))
        false = vz.to_bool(pc.is_in(low, pa.array(_FALSE)))
        ok = true | false
        return Parsed(pa.array(true, mask=~ok), ok)
    if info.type == kinds.DATE:
        ok, dates = vd.parse_dates(text, compact=info.compact)
        return Parsed(vd.date_array(ok, dates), ok, dates)
    if info.type == kinds.DATETIME:
        ok, stamps = vd.parse_datetimes(text)
        return Parsed(vd.timestamp_array(ok, stamps), ok, stamps.astype("datetime64[D]"))
    return Parsed(text, present)


def _parse_decimal(text: pa.Array, scale: int) -> Parsed:
    """Values that fit the scale are cast directly; the others (more decimals, '.5', '5.')
    take the slower path that pads or truncates the digits as text."""
    frac = rf"(?:\.[0-9]{{0,{scale}}})?" if scale else ""
    fast = vz.matches(text, rf"^[+-]?[0-9]{{1,{38 - scale}}}{frac}$")
    values = pc.if_else(pa.array(fast), text, pa.scalar(None, pa.string())).cast(
        pa.decimal128(38, scale)
    )
    rest = ~fast & vz.to_bool(pc.is_valid(text))
    if not rest.any():
        return Parsed(values, fast)
    mask = pa.array(rest)
    slow = _parse_decimal_slow(text.filter(mask), scale)
    ok = fast.copy()
    ok[rest] = slow.ok
    return Parsed(pc.replace_with_mask(values, mask, slow.values), ok, truncated=slow.truncated)


def _parse_decimal_slow(text: pa.Array, scale: int) -> Parsed:
    pattern = rf"^(?P<s>[+-]?)(?P<i>[0-9]{{1,{38 - scale}}})?(?:\.(?P<f>[0-9]*))?$"
    ok = vz.matches(text, pattern) & vz.matches(text, r"[0-9]")
    if not ok.any():
        return Parsed(pa.nulls(len(text), pa.decimal128(38, scale)), ok)
    good = pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string()))
    parts = pc.extract_regex(pc.fill_null(good, "0"), pattern)
    whole = pc.if_else(pc.equal(parts.field("i"), ""), pa.scalar("0"), parts.field("i"))
    sign = pc.if_else(pc.equal(parts.field("s"), "-"), pa.scalar("-"), pa.scalar(""))
    frac = parts.field("f")
    truncated = int(pc.sum(pc.greater(pc.utf8_length(frac), scale)).as_py() or 0)
    if scale:
        frac = pc.utf8_slice_codeunits(pc.utf8_rpad(frac, scale, "0"), 0, scale)
        joined = pc.binary_join_element_wise(sign, whole, ".", frac, "")
    else:
        joined = pc.binary_join_element_wise(sign, whole, "")
    values = pc.if_else(pa.array(ok), joined, pa.scalar(None, pa.string()))
    return Parsed(values.cast(pa.decimal128(38, scale)), ok, truncated=truncated)
