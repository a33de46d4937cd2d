"""The per-entity rollup path gives exactly the raw bounded path's pre-noise aggregates.

The engine answers an eligible aggregate question (one table, group keys and WHERE terms over
rollup dimensions, COUNT/SUM/AVG of bare rollup measures) from a per-entity rollup built once
per prepared file. Post-processing (threshold, noise) reads only the engine's rows, so equal
engine rows (noise off) mean the same released distribution. Here both paths run on the same
engine and data: `engine.run(q)` (the rollup when it covers q) and `engine.run(q without its
rollup plan)` (the raw bounded SQL), on fixed and hypothesis-generated questions, under
several contribution bounds; and the questions the rollup cannot answer keep the raw path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox_testdata import pseudonym

from sandbox import ColumnSpec, PolicyContext, PolicyViolation, TablePrivacy, TableSpec, check

DISTRICTS = ["east", "west", "north", "south", "centre", None]


def _frame(seed: int) -> pd.DataFrame:
    """Entities with a fixed district, flag and start date and rows over kinds and years;
    NULL keys and measures, negative values, heavy entities, a column too large for exact
    double sums (`big`)."""
    rng = np.random.default_rng(seed)
    rows = []
    for entity in range(400):
        district = DISTRICTS[entity % len(DISTRICTS)]
        flag = bool(entity % 3)
        start = dt.date(2020, 1 + entity % 4, 1)
        n = int(rng.integers(30, 90)) if entity % 23 == 0 else int(rng.integers(4, 24))
        for _ in range(n):
            kind = ["a", "b", None][int(rng.integers(0, 3))]
            year = int(rng.integers(2022, 2025))
            v = None if rng.random() < 0.1 else int(rng.integers(-50, 400))
            w = int(rng.integers(0, 10))
            big = int(rng.integers(0, 10)) * 2**52
            rows.append((pseudonym(entity), district, flag, start, kind, year, v, w, big))
    df = pd.DataFrame(
        rows, columns=["ek", "district", "flag", "start", "kind", "year", "v", "w", "big"]
    )
    df["v"] = df["v"].astype("Int64")
    df["year"] = df["year"].astype("int32")
    return df


def _ctx(g: int, r: int, lower: int, upper: int) -> PolicyContext:
    privacy = TablePrivacy(
        Decimal(1), Decimal("1e-6"), max_groups_per_entity=g, max_rows_per_entity=r
    )
    lo, hi = Decimal(lower), Decimal(upper)
    t = TableSpec(
        slug="t",
        grade="conditional",
        columns={
            "district": ColumnSpec("district", "dimension"),
            "flag": ColumnSpec("flag", "dimension"),
            "start": ColumnSpec("start", "dimension"),
            "kind": ColumnSpec("kind", "dimension"),
            "year": ColumnSpec("year", "dimension"),
            "v": ColumnSpec("v", "measure", lo, hi),
            "w": ColumnSpec("w", "measure", Decimal(0), Decimal(50)),
            "big": ColumnSpec("big", "measure", Decimal(0), Decimal(2**60)),
        },
        entity_key="ek",
        privacy=privacy,
    )
    f = TableSpec(
        slug="f",
        grade="open",
        columns={"sector": ColumnSpec("sector", "dimension")},
        entity_key="fk",
    )
    return PolicyContext({"t": t, "f": f}, row_cap=1000)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollup")
    t = _frame(20261207)
    t.to_parquet(root / "t.parquet", index=False)
    f = pd.DataFrame({"fk": [pseudonym(i) for i in range(0, 400, 2)], "sector": ["s1", "s2"] * 100})
    f.to_parquet(root / "f.parquet", index=False)
    return t, {"t": str(root / "t.parquet"), "f": str(root / "f.parquet")}


COLUMNS = ["district", "flag", "start", "kind", "year", "v", "w", "big"]


def _both(q, engine, tables):
    with_rollup = engine.run(q, tables, timeout_s=60)
    raw = engine.run(dataclasses.replace(q, rollup=None), tables, timeout_s=60)
    assert not raw.rollup
    assert with_rollup.columns == raw.columns
    assert not with_rollup.truncated and not raw.truncated
    # The final ORDER BY breaks ties by hash of the keys only; compare as multisets.
    assert sorted(map(repr, with_rollup.rows)) == sorted(map(repr, raw.rows))
    return with_rollup


def test_the_rollup_is_built_with_the_expected_dimensions_and_exact_measures(data, engine):
    _, tables = data
    prepared = engine.prepare(tables["t"], COLUMNS, "ek")
    rollup = prepared.rollup
    assert rollup is not None
    # the low-cardinality columns, fewest values first, while the cells stay under half the
    # rows: `w` and `big` (ten values per entity) would make a cell of almost every row
    assert set(rollup.dimensions) == {"district", "flag", "start", "kind", "year"}
    # `big` sums beyond 2^53 per entity: not exact in DOUBLE, so not a measure
    assert set(rollup.measures) == {"year", "v", "w"}
    # one value per entity (NULL counts as a value; `district` is NULL for whole entities)
    assert set(rollup.constant) == {"district", "flag", "start"}
    con = duckdb.connect()
    try:
        (cells,) = con.execute(f"SELECT COUNT(*) FROM read_parquet('{rollup.path}')").fetchone()
        (rows,) = con.execute(f"SELECT SUM(__sbx_n) FROM read_parquet('{rollup.path}')").fetchone()
        hashes = [
            h
            for (h,) in con.execute(
                f"SELECT __sbx_eh FROM read_parquet('{rollup.path}')"
            ).fetchall()
        ]
    finally:
        con.close()
    assert rows == len(data[0]) and cells <= rows / 2
    assert hashes == sorted(hashes)
    assert rollup.path.startswith(str(engine._projection_dir))


FIXED = [
    "SELECT district, COUNT(*), SUM(v), AVG(v), COUNT(v) FROM t GROUP BY district",
    "SELECT district, kind, COUNT(*), SUM(v) FROM t GROUP BY district, kind",
    "SELECT year, COUNT(*) FROM t WHERE kind = 'a' AND district <> 'east' GROUP BY year",
    "SELECT kind, SUM(v) FROM t WHERE year >= 2023 AND flag = TRUE GROUP BY kind",
    "SELECT COUNT(*), SUM(v), AVG(w) FROM t WHERE district IN ('east', 'west')",
    "SELECT COUNT(*), SUM(v) FROM t",
    "SELECT COUNT(DISTINCT ek) FROM t WHERE kind = 'b'",
    "SELECT start, COUNT(DISTINCT ek), SUM(w) FROM t GROUP BY start",
    "SELECT CASE WHEN year >= 2023 THEN 'new' ELSE 'old' END AS age, COUNT(*), SUM(v) "
    "FROM t GROUP BY age",
    "SELECT district, COUNT(*) FROM t WHERE kind IS NULL GROUP BY district",
    "SELECT district, SUM(w) FROM t WHERE start < DATE '2020-03-01' GROUP BY district",
]

BOUNDS = [(1, 12, 0, 300), (1, 2, -20, 30), (2, 3, 0, 1000), (3, 100, -1000, 1000)]


@pytest.mark.parametrize(("g", "r", "lower", "upper"), BOUNDS)
@pytest.mark.parametrize("sql", FIXED)
def test_fixed_questions_give_the_same_rows_from_the_rollup(data, engine, sql, g, r, lower, upper):
    _, tables = data
    q = check(sql, _ctx(g, r, lower, upper))
    assert q.rollup is not None
    assert _both(q, engine, tables).rollup


@pytest.mark.parametrize(
    "sql",
    [
        # a join: the rollup has one table
        "SELECT f.sector, COUNT(*) FROM t JOIN f ON t.ek = f.fk GROUP BY f.sector",
        # SUM of a column whose sums are not exact in DOUBLE
        "SELECT district, SUM(big) FROM t GROUP BY district",
        # COUNT of a dimension (the rollup counts measures only)
        "SELECT kind, COUNT(district) FROM t GROUP BY kind",
    ],
)
def test_questions_the_rollup_cannot_answer_keep_the_raw_path(data, engine, sql):
    _, tables = data
    q = check(sql, _ctx(1, 12, 0, 300))
    res = _both(q, engine, tables)
    assert not res.rollup


def test_an_engine_without_rollups_never_uses_one(data, tmp_path):
    from sandbox import DuckDBEngine

    _, tables = data
    q = check(FIXED[0], _ctx(1, 12, 0, 300))
    with DuckDBEngine(
        threads=1, temp_dir=tmp_path, projection_dir=tmp_path / "p", rollups=False
    ) as eng:
        assert eng.prepare(tables["t"], COLUMNS, "ek").rollup is None
        assert not eng.run(q, tables, timeout_s=60).rollup


_DIM_TERMS = {
    "district": ["'east'", "'west'", "'centre'"],
    "kind": ["'a'", "'b'"],
    "year": ["2022", "2023", "2024"],
    "start": ["DATE '2020-02-01'", "DATE '2020-03-01'"],
}


@st.composite
def questions(draw):
    keys = draw(
        st.lists(
            st.sampled_from(["district", "kind", "year", "flag", "start"]), max_size=2, unique=True
        )
    )
    aggs = draw(
        st.lists(
            st.sampled_from(
                [
                    "COUNT(*)",
                    "SUM(v)",
                    "AVG(v)",
                    "COUNT(v)",
                    "SUM(w)",
                    "COUNT(w)",
                    "COUNT(DISTINCT ek)",
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    where = []
    for col in draw(st.lists(st.sampled_from(sorted(_DIM_TERMS)), max_size=2, unique=True)):
        op = draw(st.sampled_from(["=", "<>", ">=", "<", "IN", "IS NULL", "IS NOT NULL"]))
        lits = _DIM_TERMS[col]
        if op == "IN":
            picked = draw(st.lists(st.sampled_from(lits), min_size=1, max_size=3, unique=True))
            where.append(f"{col} IN ({', '.join(picked)})")
        elif op.startswith("IS"):
            where.append(f"{col} {op}")
        else:
            where.append(f"{col} {op} {draw(st.sampled_from(lits))}")
    if draw(st.booleans()):
        where.append("flag = TRUE")
    sql = f"SELECT {', '.join([*keys, *aggs])} FROM t"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if keys:
        sql += " GROUP BY " + ", ".join(keys)
    bounds = draw(st.sampled_from(BOUNDS))
    return sql, bounds


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(questions())
def test_generated_questions_give_the_same_rows_from_the_rollup(data, engine, question):
    sql, (g, r, lower, upper) = question
    _, tables = data
    try:
        q = check(sql, _ctx(g, r, lower, upper))
    except PolicyViolation:
        return  # e.g. a WHERE form the policy refuses: nothing to compare
    assert q.rollup is not None, sql
    res = _both(q, engine, tables)
    assert res.rollup, sql
    # keys over the constant dimensions only: the pivot answered (WHERE conditions each read
    # one column, so none mixes constant and varying dimensions)
    assert res.pivot == (set(q.rollup.key_dimensions) <= {"district", "flag", "start"}), sql


@pytest.mark.parametrize(("g", "r", "lower", "upper"), BOUNDS)
def test_keys_constant_per_entity_skip_the_group_choice_with_the_same_rows(
    data, engine, g, r, lower, upper
):
    """Keys over entity-constant columns take the form without the group choice; keys over a
    column that varies within an entity keep the choice. Both equal the raw path."""
    _, tables = data
    rollup = engine.prepare(tables["t"], COLUMNS, "ek").rollup
    ctx = _ctx(g, r, lower, upper)
    constant = check(
        "SELECT district, flag, COUNT(*), SUM(v) FROM t WHERE kind = 'a' GROUP BY district, flag",
        ctx,
    )
    varying = check("SELECT district, kind, COUNT(*), SUM(v) FROM t GROUP BY district, kind", ctx)
    assert rollup.sql_for(constant.rollup) == constant.rollup.constant_sql
    assert constant.rollup.constant_sql != constant.rollup.sql
    assert rollup.sql_for(varying.rollup) == varying.rollup.sql
    assert _both(constant, engine, tables).rollup
    assert _both(varying, engine, tables).rollup


def test_the_files_derived_from_a_data_file_are_deleted_with_it(data, tmp_path):
    """`drop_prepared`: every projection and rollup of one source (any column set) and their
    sidecars go; another source's files and anything else in the folder stay."""
    import shutil

    from sandbox import DuckDBEngine
    from sandbox.engine import drop_prepared

    _, tables = data
    gone, kept = tmp_path / "gone.parquet", tmp_path / "kept.parquet"
    shutil.copy(tables["t"], gone)
    shutil.copy(tables["t"], kept)
    folder = tmp_path / "projections"
    with DuckDBEngine(projection_dir=folder, temp_dir=tmp_path) as eng:
        a = eng.prepare(str(gone), COLUMNS, "ek")
        b = eng.prepare(str(gone), ["district", "v"], "ek")
        c = eng.prepare(str(kept), COLUMNS, "ek")
    assert a.rollup is not None and c.rollup is not None
    other = folder / "unrelated.json"
    other.write_text("not json")
    before = set(folder.iterdir())
    removed = drop_prepared(folder, gone)
    after = set(folder.iterdir())
    assert a.rollup.pivot is not None  # the pivot and its combinations file go too
    mine = {a.path, *a.rollup.files(), b.path} | (set(b.rollup.files()) if b.rollup else set())
    assert {str(p) for p in before - after} >= mine
    assert removed == len(before - after) and len(before - after) == len(mine) + 2  # sidecars
    assert {c.path, *c.rollup.files()} <= {str(p) for p in after} and other in after
    assert drop_prepared(folder, gone) == 0
    assert drop_prepared(tmp_path / "nowhere", gone) == 0


# -- the per-entity pivot of the rollup ------------------------------------------------------

PIVOTED = [
    # keys over constant dimensions; WHERE conjuncts each over constant or over varying ones
    "SELECT district, COUNT(*), SUM(v), AVG(v), COUNT(v) FROM t GROUP BY district",
    "SELECT district, flag, COUNT(*), SUM(v) FROM t WHERE kind = 'a' GROUP BY district, flag",
    "SELECT start, COUNT(DISTINCT ek), SUM(w) FROM t WHERE year >= 2023 GROUP BY start",
    "SELECT district, SUM(v) FROM t WHERE kind IS NULL AND flag = TRUE GROUP BY district",
    "SELECT district, COUNT(*) FROM t WHERE kind = 'a' AND year = 2022 AND kind = 'b' "
    "GROUP BY district",  # no combination passes
    "SELECT CASE WHEN start < DATE '2020-03-01' THEN 'early' ELSE 'late' END AS s, COUNT(*), "
    "AVG(w) FROM t WHERE kind IN ('a', 'b') AND year <> 2023 AND district <> 'east' GROUP BY s",
    "SELECT COUNT(*), SUM(v), AVG(w) FROM t WHERE kind IN ('a', 'b')",  # ungrouped
    "SELECT COUNT(DISTINCT ek) FROM t WHERE kind = 'b'",
]

NOT_PIVOTED = [
    # a key over a dimension that varies within an entity
    "SELECT kind, COUNT(*), SUM(v) FROM t GROUP BY kind",
    "SELECT district, year, COUNT(*) FROM t WHERE kind = 'a' GROUP BY district, year",
]


@pytest.mark.parametrize(("g", "r", "lower", "upper"), BOUNDS)
@pytest.mark.parametrize("sql", PIVOTED)
def test_questions_over_constant_keys_are_answered_from_the_pivot_with_the_same_rows(
    data, engine, sql, g, r, lower, upper
):
    """The pivot (one row per entity, its cells side by side per combination of the varying
    dimensions) gives exactly the raw bounded path's rows, under every contribution bound,
    with NULL keys, NULL and negative measures, and a WHERE that no combination passes."""
    _, tables = data
    q = check(sql, _ctx(g, r, lower, upper))
    res = _both(q, engine, tables)
    assert res.rollup and res.pivot, sql


@pytest.mark.parametrize("sql", NOT_PIVOTED)
def test_questions_the_pivot_cannot_answer_keep_the_rollup(data, engine, sql):
    _, tables = data
    q = check(sql, _ctx(1, 12, 0, 300))
    res = _both(q, engine, tables)
    assert res.rollup and not res.pivot, sql


def test_the_pivot_has_one_row_per_entity_and_each_cell_once(data, engine):
    """Its combinations are the varying dimensions' distinct value tuples of the rollup (NULL
    included), and summing the pivot's columns gives back the rollup's totals."""
    frame, tables = data
    rollup = engine.prepare(tables["t"], COLUMNS, "ek").rollup
    pivot = rollup.pivot
    assert pivot is not None and set(pivot.varying) == {"kind", "year"}
    con = duckdb.connect()
    try:
        combos = con.execute(
            f"SELECT __sbx_j, kind, year FROM read_parquet('{pivot.combinations}') ORDER BY 1"
        ).fetchall()
        assert [j for j, *_ in combos] == list(range(pivot.count))
        distinct = con.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT kind, year FROM read_parquet('{rollup.path}'))"
        ).fetchone()[0]
        assert len(combos) == distinct == pivot.count
        (entities,) = con.execute(
            f"SELECT COUNT(*) FROM read_parquet('{pivot.path}')"
        ).fetchone()
        assert entities == frame["ek"].nunique()
        n_cols = " + ".join(f'COALESCE("__sbx_n@{j}", 0)' for j in range(pivot.count))
        s_cols = " + ".join(f'COALESCE("__sbx_s:v@{j}", 0)' for j in range(pivot.count))
        got = con.execute(
            f"SELECT SUM({n_cols}), SUM({s_cols}) FROM read_parquet('{pivot.path}')"
        ).fetchone()
    finally:
        con.close()
    assert got == (len(frame), int(frame["v"].sum()))


def test_a_condition_reading_constant_and_varying_dimensions_is_not_pivoted():
    """The policy lets each WHERE condition on conditional data read one column; should that
    change, a conjunct over both kinds of dimension must leave the question to the rollup."""
    from sandbox import sqlgen
    from sandbox.query import PivotPlan

    plan = PivotPlan(
        keys=(('"t"."district"', "__sbx_g0"),),
        terms=(('"t"."flag"', ("flag",)), ("x", ("district", "kind")), ("y", ("kind",))),
        columns=(),
    )
    assert sqlgen.pivot_terms(plan, ("district",), ("district", "flag")) is None
    ok = PivotPlan(keys=plan.keys, terms=(plan.terms[0], plan.terms[2]), columns=())
    assert sqlgen.pivot_terms(ok, ("district",), ("district", "flag")) == (['"t"."flag"'], ["y"])
    assert sqlgen.pivot_terms(ok, ("district", "kind"), ("district", "flag")) is None


@pytest.mark.parametrize(
    "literal",
    ["a' OR TRUE OR 'x", "TRUE", "FALSE", "a@0", "__sbx_j", "'; SELECT 1; --", "黄浦\\'"],
)
def test_a_literal_cannot_reach_the_pivots_holes_or_views(data, engine, literal):
    """Attack: the worker fills the pivot template after the mask query. Its holes are list
    items (ints), not tokens in the text, so a WHERE literal that looks like SQL, a hole's
    value or a hidden column is only ever a string value: the pivot answers as the raw path
    does (here: no combination has that kind)."""
    _, tables = data
    escaped = literal.replace("'", "''")
    for sql in (
        f"SELECT district, COUNT(*), SUM(v) FROM t WHERE kind = '{escaped}' GROUP BY district",
        f"SELECT district, COUNT(*), SUM(v) FROM t WHERE kind <> '{escaped}' GROUP BY district",
    ):
        q = check(sql, _ctx(1, 12, 0, 300))
        res = _both(q, engine, tables)
        assert res.rollup and res.pivot, sql


def test_the_pivots_internal_views_are_not_tables_a_buyer_can_name():
    """The combinations view exists only inside the engine job; the policy refuses it (and
    every other internal name) like any unlicensed table."""
    ctx = _ctx(1, 12, 0, 300)
    for sql in (
        "SELECT COUNT(*) FROM __sbx_combinations",
        "SELECT district, COUNT(*) FROM t JOIN __sbx_combinations ON TRUE GROUP BY district",
        "SELECT COUNT(*) FROM t WHERE __sbx_j = 0",
    ):
        with pytest.raises(PolicyViolation):
            check(sql, ctx)
