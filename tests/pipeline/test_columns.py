"""Analysing a column on its distinct values gives exactly the row-by-row result."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from market.pipeline import runner
from market.pipeline import vectorized as vz
from market.pipeline.columns import ColumnChunk, Plan, analyse, repeats
from market.pipeline.readers import Chunk
from market.pipeline.treatments import validate_overrides
from tests.pipeline.factories import HEADER, rows

TODAY = dt.date(2025, 7, 1)


def _table() -> pa.Table:
    data = rows(40, seed=3)
    # repeats, blanks, padding and values that fail their validator
    data = data + data[:25]
    data[3] = ["", *data[3][1:]]
    data[4] = [data[4][0].lower() + " ", "  ", "X", "11010519491231002Y", "男", "1990-02-30",
               "1381234", "6222021234567890121", "not-an-email", "某地", *data[4][10:]]
    columns = list(zip(*data, strict=True))
    return pa.table({name: pa.array(list(col), pa.string()) for name, col in
                     zip(HEADER, columns, strict=True)})


def _plans(table: pa.Table) -> list[Plan]:
    detections = runner._detect(Chunk(2, table), TODAY)
    treatments = validate_overrides(detections, {}, None)
    return [Plan(d, treatments[d.name], False) for d in detections]


def _same(a: ColumnChunk, b: ColumnChunk) -> None:
    assert a.text.equals(b.text) and a.norm.equals(b.norm)
    assert np.array_equal(a.valid, b.valid) and a.checked == b.checked
    for name in ("dates", "ages", "sex"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:  # NaT compares unequal to itself: compare the raw int64 values
            assert np.array_equal(x.astype("int64"), y.astype("int64")), name
    for name in ("typed", "region"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.equals(y), name
    assert (a.failed, a.truncated) == (b.failed, b.truncated)


TABLE = _table()
PLANS = [p for p in _plans(TABLE) if p.kind is not None and not p.det.embedded]


@pytest.mark.parametrize("plan", PLANS, ids=[p.name for p in PLANS])
def test_distinct_analysis_equals_row_by_row(plan: Plan) -> None:
    column = TABLE.column(plan.name)
    _same(analyse(plan, column, TODAY, distinct=True), analyse(plan, column, TODAY))


def test_the_pii_kinds_are_all_covered_and_repeats_is_measured() -> None:
    assert {p.kind for p in PLANS} >= {
        "credit_code", "person_name", "resident_id", "gender", "birth_date", "mobile",
        "bank_card", "email", "address",
    }  # fmt: skip
    assert repeats(TABLE.column("统一社会信用代码").combine_chunks())
    assert not repeats(pa.array([f"v{i}" for i in range(10)]))
    assert not repeats(pa.array([None, None], pa.string()))


def test_sex_codes_equal_the_separate_functions() -> None:
    """The consistency check reads ``sex`` from the analysis instead of recomputing it."""
    by_kind = {p.kind: p for p in PLANS}
    for kind, reference in (("gender", vz.gender_codes), ("resident_id", vz.resident_id_gender)):
        plan = by_kind[kind]
        for distinct in (False, True):
            col = analyse(plan, TABLE.column(plan.name), TODAY, distinct=distinct)
            assert col.sex is not None
            assert np.array_equal(col.sex, reference(col.norm)), (kind, distinct)
    ids = pa.array(["11010519491231002X", "110105491231003", "1101051949123100A2", "", None,
                    "11010519491231002", "110105194912310０2X"])
    ok, born, sex = vz.resident_id_birth_sex(ids)
    assert np.array_equal(sex, vz.resident_id_gender(ids))
    ok2, born2 = vz.resident_id_birth(ids)
    assert np.array_equal(ok, ok2) and np.array_equal(born.astype("int64"), born2.astype("int64"))


def _treatments(plan: Plan) -> list[str]:
    from market.pipeline.treatments import allowed_treatments

    return [t for t in allowed_treatments(plan.det) if t != "suppressed"]


@pytest.mark.parametrize(
    ("plan", "treatment"),
    [(p, t) for p in PLANS for t in _treatments(p)],
    ids=[f"{p.name}-{t}" for p in PLANS for t in _treatments(p)],
)
def test_treating_distinct_values_equals_treating_rows(plan: Plan, treatment: str) -> None:
    """Masks and generalizations computed on the distinct values and spread back to the rows
    are the row-by-row treatment (and the analysis is the row-by-row analysis)."""
    from market.pipeline.columns import analyse_and_treat, treat
    from market.pipeline.desensitize import Pseudonymizer

    plan = Plan(plan.det, treatment, False)
    column = TABLE.column(plan.name)
    for chunk in (column, column.slice(0, 0), pa.chunked_array([pa.nulls(3, pa.string())])):
        rows_col = analyse(plan, chunk, TODAY)
        expected = treat(plan, rows_col, Pseudonymizer(b"k"))
        col, got = analyse_and_treat(plan, chunk, TODAY, Pseudonymizer(b"k"), distinct=True)
        _same(col, analyse(plan, chunk, TODAY, distinct=True))
        assert got.type == expected.type
        assert got.equals(expected), (plan.name, treatment)
