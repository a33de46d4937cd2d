"""Dates and datetimes parsed column-wise.

The common fixed-width forms (YYYY-MM-DD, YYYYMMDD, YYYY-MM-DD HH:MM[:SS]) are read straight
from the bytes with numpy; the others (YYYY/M/D, YYYY年M月D日, fractions of seconds) go
through Arrow's regular expressions. Impossible dates (2023-02-30) never parse: the calendar
check is :func:`market.pipeline.vectorized.valid_ymd`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import vectorized as vz

_EPOCH = np.datetime64("1970-01-01", "D")
_SEPARATORS = np.frombuffer(b"-/.", dtype=np.uint8)


def _fixed_digits(mat: np.ndarray, positions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    digits = mat[:, positions].astype(np.int64) - 48
    return digits, ((digits >= 0) & (digits <= 9)).all(axis=1)


def _number(digits: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.zeros(len(digits), dtype=np.int64)
    for j in range(start, stop):
        out = out * 10 + digits[:, j]
    return out


def _fast_dates(arr: pa.Array, compact: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The common fixed-width forms, YYYY-MM-DD (any of - / .) and YYYYMMDD, straight from
    the bytes. Returns (tried, parsed, dates): values tried here need no regex pass."""
    n = len(arr)
    tried = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    dates = np.full(n, np.datetime64("NaT", "D"))
    forms = [(10, [0, 1, 2, 3, 5, 6, 8, 9], (4, 7))] + (
        [(8, list(range(8)), ())] if compact else []
    )
    for width, positions, seps in forms:
        idx, mat = vz.fixed_width(arr, width)
        if not len(idx):
            continue
        digits, good = _fixed_digits(mat, positions)
        for pos in seps:
            good &= np.isin(mat[:, pos], _SEPARATORS)
        real, parsed = vz.valid_ymd(
            _number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8)
        )
        sel = idx[good]
        tried[sel] = True
        ok[sel] = real[good]
        dates[sel] = parsed[good]
    return tried, ok, dates


def parse_dates(arr: pa.Array, *, compact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(parsed, dates) for YYYY-MM-DD, YYYY/M/D, YYYY.M.D, YYYY年M月D日 (and YYYYMMDD if
    ``compact``). Impossible dates such as 2023-02-30 are not parsed."""
    tried, ok, dates = _fast_dates(arr, compact)
    rest = ~tried & vz.to_bool(pc.is_valid(arr))
    if rest.any():
        rest[rest] = vz.matches(arr.filter(pa.array(rest)), r"^[0-9]{4}[-/.年]")
    if rest.any():
        idx = np.flatnonzero(rest)
        sub = arr.filter(pa.array(rest))
        iso = pc.replace_substring_regex(
            sub,
            r"^([0-9]{4})(?:[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})|年([0-9]{1,2})月([0-9]{1,2})日?)$",
            r"\1-\2\4-\3\5",
        )
        if compact:
            iso = pc.replace_substring_regex(iso, r"^([0-9]{4})([0-9]{2})([0-9]{2})$", r"\1-\2-\3")
        sub_ok, sub_dates = _ymd(iso, r"^(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})$")
        ok[idx] = sub_ok
        dates[idx] = sub_dates
    return ok, dates


def _ymd(iso: pa.Array, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(iso)
    shaped = vz.matches(iso, pattern)
    dates = np.full(n, np.datetime64("NaT", "D"))
    if not shaped.any():
        return shaped, dates
    sel = pa.array(shaped)
    parts = pc.extract_regex(iso.filter(sel), pattern)
    y, m, d = (
        parts.field(f).cast(pa.int64()).to_numpy(zero_copy_only=False) for f in ("y", "m", "d")
    )
    ok, parsed = vz.valid_ymd(y, m, d)
    idx = np.flatnonzero(shaped)
    shaped[idx] = ok
    dates[idx] = parsed
    return shaped, dates


_DATETIME = (
    r"^(?P<y>[0-9]{4})[-/](?P<m>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})[T ]"
    r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,6})[0-9]*)?)?Z?$"
)


def _fast_datetimes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """'YYYY-MM-DD HH:MM:SS' and 'YYYY-MM-DD HH:MM' (- or /, space or T) from the bytes."""
    n = len(arr)
    tried = np.zeros(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    out = np.full(n, np.datetime64("NaT", "us"))
    for width in (19, 16):
        idx, mat = vz.fixed_width(arr, width)
        if not len(idx):
            continue
        positions = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15] + ([17, 18] if width == 19 else [])
        digits, good = _fixed_digits(mat, positions)
        good &= np.isin(mat[:, 4], _SEPARATORS[:2]) & np.isin(mat[:, 7], _SEPARATORS[:2])
        good &= np.isin(mat[:, 10], np.frombuffer(b" T", dtype=np.uint8)) & (mat[:, 13] == 58)
        if width == 19:
            good &= mat[:, 16] == 58
        hh, mm = _number(digits, 8, 10), _number(digits, 10, 12)
        ss = _number(digits, 12, 14) if width == 19 else np.zeros(len(idx), dtype=np.int64)
        real, days = vz.valid_ymd(
            _number(digits, 0, 4), _number(digits, 4, 6), _number(digits, 6, 8)
        )
        real &= (hh <= 23) & (mm <= 59) & (ss <= 59)
        stamps = days.astype("datetime64[us]") + ((hh * 3600 + mm * 60 + ss) * 1_000_000).astype(
            "timedelta64[us]"
        )
        sel = idx[good]
        tried[sel] = True
        ok[sel] = real[good]
        out[sel] = np.where(real, stamps, np.datetime64("NaT", "us"))[good]
    return tried, ok, out


def parse_datetimes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(parsed, datetime64[us]) for 'YYYY-MM-DD HH:MM[:SS[.ffffff]]' (T or space, optional Z).
    A bare date also parses, at midnight."""
    tried, ok, out = _fast_datetimes(arr)
    rest = ~tried & vz.to_bool(pc.is_valid(arr))
    if rest.any():
        rest[rest] = vz.matches(arr.filter(pa.array(rest)), r"^[0-9]{4}[-/.年]")
    if rest.any():
        idx = np.flatnonzero(rest)
        sub_ok, sub_out = _slow_datetimes(arr.filter(pa.array(rest)))
        ok[idx] = sub_ok
        out[idx] = sub_out
    return ok, out


def _slow_datetimes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    out = np.full(n, np.datetime64("NaT", "us"))
    shaped = vz.matches(arr, _DATETIME)
    if shaped.any():
        sel = pa.array(shaped)
        parts = pc.extract_regex(arr.filter(sel), _DATETIME)

        def num(field: str) -> np.ndarray:
            col = vz.null_empty(parts.field(field))
            return pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)

        ok, days = vz.valid_ymd(num("y"), num("m"), num("d"))
        hh, mm, ss = num("H"), num("M"), num("S")
        frac = pc.utf8_rpad(pc.fill_null(parts.field("f"), ""), 6, "0")
        micro = frac.cast(pa.int64()).to_numpy(zero_copy_only=False)
        ok &= (hh <= 23) & (mm <= 59) & (ss <= 59)
        stamp = days.astype("datetime64[us]") + (
            (hh * 3600 + mm * 60 + ss) * 1_000_000 + micro
        ).astype("timedelta64[us]")
        idx = np.flatnonzero(shaped)
        shaped[idx] = ok
        out[idx] = np.where(ok, stamp, np.datetime64("NaT", "us"))
    date_ok, dates = parse_dates(arr)
    only_date = date_ok & ~shaped
    out[only_date] = dates[only_date].astype("datetime64[us]")
    return shaped | only_date, out


def date_array(ok: np.ndarray, dates: np.ndarray) -> pa.Array:
    days = (dates - _EPOCH).astype(np.int64)
    return pa.array(np.where(ok, days, 0).astype(np.int32), type=pa.date32(), mask=~ok)


def timestamp_array(ok: np.ndarray, stamps: np.ndarray) -> pa.Array:
    micros = stamps.astype("datetime64[us]").astype(np.int64)
    return pa.array(np.where(ok, micros, 0), type=pa.timestamp("us"), mask=~ok)
