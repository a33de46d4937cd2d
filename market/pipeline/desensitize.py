"""The treatments: keyed pseudonyms, masks and generalizations.

Pseudonyms are HMAC-SHA256 under the platform key, never a plain hash: without the key, nobody
can test a guessed identity number against a pseudonym. The message is
``kind || 0x00 || normalize(kind, value)``, so the same enterprise or person gets the same
pseudonym in every dataset (the join key across departments) whatever the spelling (full-width
digits, spaces, lower-case x), and values of different kinds never collide. The result is a
short prefix naming the kind plus the first 24 hex digits (96 bits) of the MAC.

The column-wise version computes the MACs with polars-hash (RustCrypto's ``hmac`` and
``sha2``, which use the CPU's SHA extensions): about 0.45 µs of CPU a value against ~1.1 µs for
SHA-256 in DuckDB SQL or a ``hashlib`` loop, without holding the GIL, split over the cores.
Only the distinct values of a chunk are hashed, and a column whose values repeat (an entity
key) reuses the previous chunk's pseudonyms. ``tests/pipeline`` checks it against
:func:`pseudonym` (the standard library's ``hmac``) value for value.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the ``.chash`` expressions)
import pyarrow as pa
import pyarrow.compute as pc

from . import kinds
from . import vectorized as vz
from .validators import normalize

PREFIX = {
    kinds.CREDIT_CODE: "ent_",
    kinds.RESIDENT_ID: "rid_",
    kinds.MOBILE: "mob_",
    kinds.BANK_CARD: "card_",
    kinds.EMAIL: "mail_",
    kinds.PERSON_NAME: "name_",
    kinds.ADDRESS: "addr_",
    kinds.BIRTH_DATE: "dob_",
    kinds.GENDER: "sex_",
    kinds.AGE: "age_",
    None: "id_",
}
HEX_DIGITS = 24
#: Values per polars frame below which the MACs are not split over the cores.
_SPLIT_ABOVE = 20_000
#: Above this share of distinct values, de-duplicating before hashing costs more than it saves.
DISTINCT_SKIP = 0.9


def _message(kind: str | None, normalized: str) -> bytes:
    return (kind or "value").encode() + b"\x00" + normalized.encode()


def pseudonym(key: bytes, kind: str | None, value: str) -> str:
    """The pseudonym of one value, e.g. ``pseudonym(key, "credit_code", code)`` -> ``ent_…``.

    Equal to what the pipeline writes for that value in a column of that kind. Raises
    ValueError for an empty key or an empty value.
    """
    if not key:
        raise ValueError("the pseudonym key is empty")
    norm = normalize(kind, value)
    if norm is None:
        raise ValueError("cannot pseudonymize an empty value")
    mac = hmac.new(key, _message(kind, norm), hashlib.sha256).hexdigest()
    return PREFIX.get(kind, "id_") + mac[:HEX_DIGITS]


class Pseudonymizer:
    """Column-wise pseudonyms for one pipeline run."""

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("the pseudonym key is empty")
        try:
            # polars-hash takes the key as text; the platform key is text (see market.keys)
            self._key = key.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the pseudonym key must be UTF-8 text") from None
        #: Per column: the previous chunk's distinct values and their pseudonyms.
        self._memo: dict[str, tuple[pa.Array, pa.Array]] = {}
        #: Per column: distinct values / values in the previous chunk.
        self._distinct: dict[str, float] = {}

    def expect_distinct(self, column: str, share: float) -> None:
        """Say what share of ``column``'s values are distinct before its first chunk (the
        caller measured it already), so that a nearly all-distinct column is not
        de-duplicated even once. Only the work changes, never a pseudonym."""
        self._distinct.setdefault(column, share)

    def column(self, kind: str | None, normalized: pa.Array, column: str | None = None) -> pa.Array:
        """Pseudonyms of already-normalized values; nulls stay null.

        Only distinct values are hashed. With ``column`` named, the pseudonyms of the previous
        chunk's distinct values are reused (an entity key repeats across chunks), and a column
        whose values turn out to be nearly all distinct skips the de-duplication. Calls for one
        ``column`` must not run concurrently; different columns may.
        """
        if len(normalized) == 0 or normalized.null_count == len(normalized):
            return pa.nulls(len(normalized), pa.string())
        if column is not None and self._distinct.get(column, 0.0) > DISTINCT_SKIP:
            return self._hmac(kind, normalized)
        encoded = pc.dictionary_encode(normalized)
        uniques = encoded.dictionary
        previous = self._memo.get(column) if column is not None else None
        if previous is None:
            macs = self._hmac(kind, uniques)
        else:
            positions = pc.index_in(uniques, value_set=previous[0])
            missing = pc.is_null(positions)
            fresh = uniques.filter(missing)
            macs = pc.take(previous[1], positions)
            if len(fresh):
                macs = pc.replace_with_mask(macs, missing, self._hmac(kind, fresh))
        if column is not None:
            self._memo[column] = (uniques, macs)
            self._distinct[column] = len(uniques) / (len(normalized) - normalized.null_count)
            if self._distinct[column] > DISTINCT_SKIP:
                del self._memo[column]
        return pc.take(macs, encoded.indices)

    def _hmac(self, kind: str | None, values: pa.Array) -> pa.Array:
        message = pl.concat_str([pl.lit(f"{kind or 'value'}\x00"), pl.col("v")])
        mac = message.chash.hmac_sha256(key=self._key).str.slice(0, HEX_DIGITS)
        expr = (pl.lit(PREFIX.get(kind, "id_")) + mac).alias("p")
        frame = pl.from_arrow(pa.table({"v": values}))
        # polars runs one expression over one frame on one thread: split it for the cores
        parts = max(1, min(pl.thread_pool_size(), len(values) // _SPLIT_ABOVE))
        size = -(-len(values) // parts)
        done = pl.collect_all([frame.slice(i * size, size).lazy().select(expr) for i in range(parts)])
        out = pl.concat(done).to_series().to_arrow()
        return out.cast(pa.string())


def hash64(con: duckdb.DuckDBPyConnection, table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row of ``table`` (for duplicate counting, never persisted)."""
    if table.num_columns == 0 or table.num_rows == 0:
        return np.zeros(table.num_rows, dtype=np.uint64)
    names = [f"c{i}" for i in range(table.num_columns)]
    renamed = table.rename_columns(names)
    sql = f"SELECT hash({', '.join(names)}) AS h FROM tbl"
    cursor = con.cursor()
    try:
        out = cursor.from_arrow(renamed).query("tbl", sql).to_arrow_table().column("h")
    finally:
        cursor.close()
    return out.to_numpy().astype(np.uint64, copy=False)


# ---------------------------------------------------------------------------- masks

_STRING_NULL = pa.scalar(None, pa.string())


def _keep(arr: pa.Array, head: int, stars: str, tail: int = 0) -> pa.Array:
    parts = [pc.utf8_slice_codeunits(arr, 0, head), pa.scalar(stars)]
    if tail:
        parts.append(pc.utf8_slice_codeunits(arr, -tail))
    return pc.binary_join_element_wise(*parts, "")


def generic_mask(arr: pa.Array) -> pa.Array:
    """First character and three stars; a single character becomes one star."""
    short = pc.less_equal(pc.utf8_length(arr), 1)
    return pc.if_else(short, pa.scalar("*"), _keep(arr, 1, "***"))


def mask(
    kind: str | None, arr: pa.Array, valid: np.ndarray, dates: np.ndarray | None = None
) -> pa.Array:
    """Masked values of normalized ``arr``. ``valid`` marks values that passed the kind's
    validator; the others get the generic mask, which shows only their first character."""
    if kind == kinds.MOBILE:
        special = _keep(arr, 3, "****", 4)
    elif kind == kinds.RESIDENT_ID:
        # at least 0: a value too short for an ID (invalid, so generically masked below) or a
        # null slot must not make the repeat count negative and fail the whole chunk
        stars = pc.binary_repeat("*", pc.max_element_wise(pc.subtract(pc.utf8_length(arr), 10), 0))
        special = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(arr, 0, 6), stars, pc.utf8_slice_codeunits(arr, -4), ""
        )
    elif kind == kinds.BANK_CARD:
        special = _keep(arr, 6, "******", 4)
    elif kind == kinds.CREDIT_CODE:
        special = _keep(arr, 8, "**********")
    elif kind == kinds.EMAIL:
        special = pc.replace_substring_regex(arr, r"^(.)[^@]*@(.*)$", r"\1***@\2")
    elif kind == kinds.PERSON_NAME:
        special = _keep(arr, 1, "*")
        valid = np.ones(len(arr), dtype=bool)
    elif kind == kinds.ADDRESS:
        special = pc.binary_join_element_wise(
            pc.fill_null(vz.region(arr, 0), ""), pa.scalar("****"), ""
        )
        valid = np.ones(len(arr), dtype=bool)
    elif kind == kinds.BIRTH_DATE and dates is not None:
        special = pc.binary_join_element_wise(generalize_dates(valid, dates, 1), "-**-**", "")
    else:
        return generic_mask(arr)
    out = pc.if_else(pa.array(valid), special, generic_mask(arr))
    return pc.if_else(pc.is_null(arr), _STRING_NULL, out)


#: (pattern, replacement) pairs masking identifiers inside free text. RE2 has no lookarounds,
#: so the neighbouring character is captured and put back; each pass is applied twice so that
#: two identifiers separated by a single character are both caught.
EMBEDDED_MASKS = (
    (r"(^|[^0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])([^0-9A-Za-z]|$)", r"\1\2********\3\4"),
    (r"(^|[^0-9A-Za-z])([0-9]{6})[0-9]{5}([0-9]{4})([^0-9A-Za-z]|$)", r"\1\2*****\3\4"),
    (r"(^|[^0-9])([0-9]{6})[0-9]{6,9}([0-9]{4})([^0-9]|$)", r"\1\2******\3\4"),
    (r"(^|[^0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})([^0-9]|$)", r"\1\2****\3\4"),
    (
        r"(^|[^0-9A-Za-z])([0-9A-Za-z]{8})[0-9A-Za-z]{10}([^0-9A-Za-z]|$)",
        r"\1\2**********\3",
    ),
    (
        r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
        r"\1***@\2",
    ),
)


def mask_embedded(arr: pa.Array) -> pa.Array:
    """Mask resident IDs, bank cards, mobiles, credit codes and emails inside free text."""
    out = vz.nfkc(arr)
    for pattern, repl in EMBEDDED_MASKS:
        for _ in range(2):
            out = pc.replace_substring_regex(out, pattern, repl)
    return out


# ---------------------------------------------------------------------------- generalization

DATE_LEVELS = ("month", "year", "5-year band", "decade")
ADDRESS_LEVELS = ("district", "city", "province")
AGE_LEVELS = ("5-year band", "10-year band", "20-year band")
#: Ages from this value up share one band at every level: the very old are few.
AGE_TOP = 90


def levels_for(kind: str | None) -> tuple[str, ...]:
    if kind == kinds.ADDRESS:
        return ADDRESS_LEVELS
    if kind == kinds.AGE:
        return AGE_LEVELS
    return DATE_LEVELS


def _ints(values: np.ndarray, ok: np.ndarray) -> pa.Array:
    return pa.array(values, mask=~ok).cast(pa.string())


def _band(lower: np.ndarray, width: int, ok: np.ndarray) -> pa.Array:
    start = lower - lower % width
    return pc.binary_join_element_wise(_ints(start, ok), _ints(start + width - 1, ok), "-")


def generalize_dates(ok: np.ndarray, dates: np.ndarray, level: int = 0) -> pa.Array:
    """Dates as 'YYYY-MM' (level 0), 'YYYY' (1), '1990-1994' (2) or '1990-1999' (3)."""
    safe = np.where(ok, dates.astype("datetime64[D]"), np.datetime64("1970-01-01", "D"))
    months = safe.astype("datetime64[M]").astype(np.int64)
    years = months // 12 + 1970
    if level == 0:
        month = pc.utf8_lpad(_ints(months % 12 + 1, ok), 2, "0")
        return pc.binary_join_element_wise(_ints(years, ok), month, "-")
    if level == 1:
        return _ints(years, ok)
    return _band(years, 5 if level == 2 else 10, ok)


def generalize_ages(ok: np.ndarray, ages: np.ndarray, level: int = 0) -> pa.Array:
    width = (5, 10, 20)[min(level, 2)]
    top = ages >= AGE_TOP
    banded = _band(np.minimum(ages, AGE_TOP), width, ok & ~top)
    return pc.if_else(pa.array(ok & top), pa.scalar(f"{AGE_TOP}+"), banded)


def coarsen(kind: str | None, level0: pa.Array, level: int) -> pa.Array:
    """Re-generalize level-0 output values (as written) to a coarser ``level``.

    The levels nest, so the coarser value is computed from the finer one: '1990-05' -> '1990'
    -> '1990-1994'; 上海市浦东新区 -> 上海市; '30-34' -> '30-39'.
    """
    level0 = vz.as_string(level0)
    if level == 0:
        return level0
    if kind == kinds.ADDRESS:
        return vz.region(level0, min(level, len(ADDRESS_LEVELS) - 1))
    if kind == kinds.AGE:
        top = vz.to_bool(pc.equal(level0, f"{AGE_TOP}+"))
        lower = pc.fill_null(pc.utf8_slice_codeunits(level0, 0, 2), "0")
        lower = pc.replace_substring_regex(lower, r"[^0-9]", "")
        lows = pc.fill_null(vz.null_empty(lower).cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        ok = ~vz.to_bool(pc.is_null(level0))
        ages = np.where(top, AGE_TOP, lows)
        return generalize_ages(ok, ages, min(level, len(AGE_LEVELS) - 1))
    ok = vz.matches(level0, r"^[0-9]{4}")
    years = pc.fill_null(pc.utf8_slice_codeunits(level0, 0, 4), "1970")
    years = pc.if_else(pa.array(ok), years, pa.scalar("1970")).cast(pa.int64())
    dates = (
        (years.to_numpy(zero_copy_only=False) - 1970)
        .astype("datetime64[Y]")
        .astype("datetime64[D]")
    )
    return generalize_dates(ok, dates, min(level, len(DATE_LEVELS) - 1))
