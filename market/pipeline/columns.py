"""One column of one chunk: analysed (normalized, validated, parsed), then treated.

These functions touch one column each and only call Arrow, numpy and DuckDB kernels, which
release the GIL, so the runner processes the columns of a chunk on several threads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import dates as vd
from . import kinds
from . import vectorized as vz
from .desensitize import Pseudonymizer, generalize_ages, generalize_dates, mask, mask_embedded
from .detect import Detection
from .schema import TypeInfo, parse

_BIRTH_TYPE = TypeInfo(kinds.DATE, compact=True)
_EARLIEST = np.datetime64("1900-01-01", "D")


@dataclass
class Plan:
    """What happens to one column: its detection and the treatment chosen for it."""

    det: Detection
    treatment: str
    is_key: bool

    @property
    def name(self) -> str:
        return self.det.name

    @property
    def kind(self) -> str | None:
        return self.det.pii_kind

    @property
    def published(self) -> bool:
        return self.treatment != kinds.SUPPRESSED

    @property
    def quasi_identifier(self) -> bool:
        return (
            self.kind in kinds.QUASI_IDENTIFIER_KINDS and not self.det.embedded and self.published
        )

    @property
    def coarsenable(self) -> bool:
        return self.quasi_identifier and self.treatment == kinds.GENERALIZED

    @property
    def out_type(self) -> TypeInfo:
        """The logical type of the published values."""
        if self.treatment != kinds.NONE:
            return TypeInfo(kinds.STRING)
        if self.kind == kinds.BIRTH_DATE:
            return _BIRTH_TYPE
        if self.kind == kinds.AGE:
            return TypeInfo(kinds.INTEGER)
        if self.kind is not None:
            return TypeInfo(kinds.STRING)
        return self.det.type_info


@dataclass
class ColumnChunk:
    """One column of one chunk, analysed. Lives only while its chunk is processed."""

    #: Trimmed text ('' is null).
    text: pa.Array
    #: The kind's normal form (what is validated and pseudonymized).
    norm: pa.Array
    #: Which rows passed the kind's validator or parsed as the column's type.
    valid: np.ndarray
    #: Whether ``valid`` is a real check (False for free text).
    checked: bool
    dates: np.ndarray | None = None
    ages: np.ndarray | None = None
    typed: pa.Array | None = None
    region: pa.Array | None = None
    #: Resident-ID and gender columns: 1 male, 2 female, 0 unknown (for consistency checks).
    sex: np.ndarray | None = None
    #: Non-null values that did not parse as the column's type.
    failed: int = 0
    truncated: int = 0

    @property
    def present(self) -> int:
        return len(self.text) - self.text.null_count


#: A PII column is analysed once per distinct value when at most this share of its values
#: are distinct (credit codes, genders, birth dates repeat); otherwise row by row.
DISTINCT_SHARE = 0.5


def distinct_counts(text: pa.Array) -> tuple[int, int]:
    """(distinct values, a null counting as one; non-null values) of ``text``."""
    return len(pc.unique(text)), len(text) - text.null_count


def repeats(text: pa.Array) -> bool:
    """Whether analysing the distinct values of ``text`` pays (see :data:`DISTINCT_SHARE`)."""
    return counts_repeat(*distinct_counts(text))


def counts_repeat(distinct: int, present: int) -> bool:
    """:func:`repeats` from :func:`distinct_counts`."""
    return present > 0 and distinct <= DISTINCT_SHARE * present


def analyse(
    plan: Plan, raw: pa.Array | pa.ChunkedArray, today: dt.date, *, distinct: bool = False
) -> ColumnChunk:
    """Analyse one column of a chunk. With ``distinct``, a PII column is analysed on its
    distinct values and the results are spread back to the rows (the same result)."""
    kind = plan.kind
    raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    text = vz.trim(vz.as_string(raw))
    if distinct and kind is not None and not plan.det.embedded:
        encoded = pc.dictionary_encode(text)
        return _spread(_analyse_kind(kind, encoded.dictionary, today), text, encoded.indices)
    if plan.det.embedded:
        return ColumnChunk(text, text, np.zeros(len(text), dtype=bool), checked=False)
    if kind is None:
        parsed = parse(plan.det.type_info, text, raw)
        checked = plan.det.type != kinds.STRING
        present = vz.to_bool(pc.is_valid(text))
        norm = vz.normalize(None, text) if plan.treatment == kinds.PSEUDONYMIZED else text
        return ColumnChunk(
            text,
            norm,
            parsed.ok,
            checked,
            dates=parsed.dates,
            typed=parsed.values,
            failed=int((present & ~parsed.ok).sum()) if checked else 0,
            truncated=parsed.truncated,
        )
    return _analyse_kind(kind, text, today)


def analyse_and_treat(
    plan: Plan,
    raw: pa.Array | pa.ChunkedArray,
    today: dt.date,
    pseudonyms: Pseudonymizer,
    *,
    distinct: bool = False,
) -> tuple[ColumnChunk, pa.Array | None]:
    """:func:`analyse` and, for a published column, :func:`treat`.

    A column analysed on its distinct values is also masked or generalized on them, and the
    result spread back to the rows: every treatment but the pseudonym is a function of the
    value alone, so this is the row-by-row result. Pseudonyms stay row by row, where the
    pseudonymizer keeps its own per-column memo of distinct values across chunks.
    """
    kind = plan.kind
    if not (
        distinct
        and kind is not None
        and not plan.det.embedded
        and plan.published
        and plan.treatment != kinds.PSEUDONYMIZED
    ):
        col = analyse(plan, raw, today, distinct=distinct)
        return col, treat(plan, col, pseudonyms) if plan.published else None
    raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    text = vz.trim(vz.as_string(raw))
    encoded = pc.dictionary_encode(text)
    values = _analyse_kind(kind, encoded.dictionary, today)
    treated = treat(plan, values, pseudonyms)
    return _spread(values, text, encoded.indices), pc.take(treated, encoded.indices)


def _spread(col: ColumnChunk, text: pa.Array, indices: pa.Array) -> ColumnChunk:
    """The analysis of distinct values (``col``) for the rows whose values are ``indices``
    into them; null rows stay null and invalid."""
    missing = vz.to_bool(pc.is_null(indices))
    at = pc.fill_null(indices, 0).to_numpy(zero_copy_only=False)

    def rows(values: np.ndarray | None, empty) -> np.ndarray | None:  # noqa: ANN001
        if values is None:
            return None
        if len(values) == 0:
            return np.full(len(at), empty, dtype=values.dtype)
        return np.where(missing, empty, values[at])

    return ColumnChunk(
        text,
        pc.take(col.norm, indices),
        rows(col.valid, False),
        col.checked,
        dates=rows(col.dates, np.datetime64("NaT")),
        ages=rows(col.ages, 0),
        typed=None if col.typed is None else pc.take(col.typed, indices),
        region=None if col.region is None else pc.take(col.region, indices),
        sex=rows(col.sex, 0),
    )


def _analyse_kind(kind: str, text: pa.Array, today: dt.date) -> ColumnChunk:
    norm = vz.normalize(kind, text)
    latest = np.datetime64(today, "D")
    if kind == kinds.RESIDENT_ID:
        ok, born, sex = vz.resident_id_birth_sex(norm)
        return ColumnChunk(
            text, norm, ok & (born >= _EARLIEST) & (born <= latest), True, dates=born, sex=sex
        )
    if kind == kinds.CREDIT_CODE:
        return ColumnChunk(text, norm, vz.credit_code_valid(norm), True)
    if kind == kinds.BANK_CARD:
        return ColumnChunk(text, norm, vz.bank_card_valid(norm), True)
    if kind == kinds.MOBILE:
        return ColumnChunk(text, norm, vz.mobile_valid(norm), True)
    if kind == kinds.EMAIL:
        return ColumnChunk(text, norm, vz.email_valid(norm), True)
    if kind == kinds.PERSON_NAME:
        return ColumnChunk(text, norm, vz.chinese_name_like(norm) | vz.latin_name_like(norm), True)
    if kind == kinds.ADDRESS:
        region = vz.region(norm)
        valid = vz.detailed_address_like(norm) | vz.to_bool(pc.is_valid(region))
        return ColumnChunk(text, norm, valid, True, region=region)
    if kind == kinds.BIRTH_DATE:
        ok, dates = vd.parse_dates(norm, compact=True)
        valid = ok & (dates >= _EARLIEST) & (dates <= latest)
        return ColumnChunk(text, norm, valid, True, dates=dates)
    if kind == kinds.GENDER:
        # gender_codes on the (usually two or three) distinct values when analysed that way
        return ColumnChunk(text, norm, vz.gender_word(norm), True, sex=vz.gender_codes(norm))
    # AGE
    shaped = vz.matches(norm, r"^[0-9]{1,3}$")
    ages = pc.fill_null(
        pc.if_else(pa.array(shaped), norm, pa.scalar("0")).cast(pa.int64()), 0
    ).to_numpy(zero_copy_only=False)
    return ColumnChunk(text, norm, shaped & (ages <= 150), True, ages=ages)


def treat(plan: Plan, col: ColumnChunk, pseudonyms: Pseudonymizer) -> pa.Array:
    """The published values of an analysed column (not called for suppressed columns)."""
    t = plan.treatment
    if t == kinds.PSEUDONYMIZED:
        return pseudonyms.column(plan.kind, col.norm, plan.name)
    if t == kinds.MASKED:
        if plan.det.embedded:
            return mask_embedded(col.text)
        if plan.kind is None:
            return mask(None, col.text, np.zeros(len(col.text), dtype=bool))
        return mask(plan.kind, col.norm, col.valid, col.dates)
    if t == kinds.GENERALIZED:
        if plan.kind == kinds.ADDRESS:
            return col.region
        if plan.kind == kinds.AGE:
            return generalize_ages(col.valid, col.ages, 0)
        return generalize_dates(col.valid, col.dates, 0)
    if plan.kind is None:
        return col.typed
    if plan.kind == kinds.BIRTH_DATE:
        return vd.date_array(col.valid, col.dates)
    if plan.kind == kinds.AGE:
        return pa.array(col.ages, type=pa.int64(), mask=~col.valid)
    return col.text


def consistency_checks(
    plans: list[Plan], cols: dict[str, ColumnChunk]
) -> dict[str, tuple[int, int]]:
    """Row-wise agreement between a resident-ID column and the birth-date and gender columns:
    {rule: (checks made, checks passed)}."""
    rid = next((p for p in plans if p.kind == kinds.RESIDENT_ID and not p.det.embedded), None)
    if rid is None:
        return {}
    r = cols[rid.name]
    out: dict[str, tuple[int, int]] = {}
    birth = next((p for p in plans if p.kind == kinds.BIRTH_DATE), None)
    if birth is not None:
        b = cols[birth.name]
        both = r.valid & b.valid
        out["resident_id_birth_date"] = (int(both.sum()), int((both & (r.dates == b.dates)).sum()))
    gender = next((p for p in plans if p.kind == kinds.GENDER), None)
    if gender is not None:
        g = cols[gender.name]
        codes = g.sex if g.sex is not None else vz.gender_codes(g.norm)
        from_id = r.sex if r.sex is not None else vz.resident_id_gender(r.norm)
        both = r.valid & (codes > 0) & (from_id > 0)
        out["resident_id_gender"] = (int(both.sum()), int((both & (codes == from_id)).sum()))
    return out
