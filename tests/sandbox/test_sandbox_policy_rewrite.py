"""What the policy produces for accepted queries: rewrites, canonical text, metadata."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import PolicyContext, PolicyViolation, check

BASE = "SELECT district, COUNT(*) FROM loans WHERE industry = 'tech' GROUP BY district"

SAME = [
    (
        "whitespace and case",
        "select   DISTRICT,count( * )\n from LOANS\twhere Industry='tech' group by District",
    ),
    (
        "output alias",
        "SELECT district AS d, COUNT(*) AS n FROM loans WHERE industry = 'tech' GROUP BY d",
    ),
    (
        "table alias",
        "SELECT l.district, COUNT(*) FROM loans AS l WHERE l.industry = 'tech' GROUP BY l.district",
    ),
    (
        "literal first",
        "SELECT district, COUNT(*) FROM loans WHERE 'tech' = industry GROUP BY district",
    ),
    (
        "group by position",
        "SELECT district, COUNT(*) FROM loans WHERE industry = 'tech' GROUP BY 1",
    ),
    ("group by all", "SELECT district, COUNT(*) FROM loans WHERE industry = 'tech' GROUP BY ALL"),
    (
        "from first",
        "FROM loans SELECT district, COUNT(*) WHERE industry = 'tech' GROUP BY district",
    ),
    ("trailing semicolon and comment", BASE + " ; -- done"),
    (
        "CTE as a named filter",
        "WITH t AS (SELECT district AS d, ek FROM loans WHERE industry = 'tech') "
        "SELECT d, COUNT(*) FROM t GROUP BY d",
    ),
    (
        "subquery as a named filter",
        "SELECT s.district, COUNT(*) FROM (SELECT district FROM loans WHERE industry = 'tech') s "
        "GROUP BY s.district",
    ),
]

DIFFERENT = [
    (
        "other literal",
        "SELECT district, COUNT(*) FROM loans WHERE industry = 'farm' GROUP BY district",
    ),
    (
        "other aggregate",
        "SELECT district, SUM(amount) FROM loans WHERE industry = 'tech' GROUP BY district",
    ),
    ("no filter", "SELECT district, COUNT(*) FROM loans GROUP BY district"),
    (
        "other group",
        "SELECT industry, COUNT(*) FROM loans WHERE industry = 'tech' GROUP BY industry",
    ),
    ("with limit", BASE + " LIMIT 3"),
]


@pytest.mark.parametrize(("case", "sql"), SAME, ids=[c for c, _ in SAME])
def test_trivial_rewrites_share_the_canonical_text(ctx, case, sql):
    assert check(sql, ctx).canonical == check(BASE, ctx).canonical


@pytest.mark.parametrize(("case", "sql"), DIFFERENT, ids=[c for c, _ in DIFFERENT])
def test_real_changes_change_the_canonical_text(ctx, case, sql):
    assert check(sql, ctx).canonical != check(BASE, ctx).canonical


CONJUNCTS = [
    "industry = 'tech'",
    "district IN ('Xuhui', 'Jingan', 'Pudong')",
    "district <> 'Rare'",
    "industry BETWEEN 'a' AND 'z'",
    "district IS NOT NULL",
]


@settings(max_examples=40, deadline=None)
@given(
    st.permutations(CONJUNCTS),
    st.permutations(["'Xuhui'", "'Jingan'", "'Pudong'"]),
    st.booleans(),
)
def test_canonical_ignores_and_order_in_list_order_and_case(ctx, conjuncts, in_list, upper):
    terms = [c.replace("'Xuhui', 'Jingan', 'Pudong'", ", ".join(in_list)) for c in conjuncts]
    sql = "SELECT district, SUM(amount) FROM loans WHERE " + " AND ".join(terms)
    sql += " GROUP BY district"
    if upper:
        sql = sql.replace("SELECT", "select").replace("district,", "DISTRICT,")
    reference = "SELECT district, SUM(amount) FROM loans WHERE " + " AND ".join(CONJUNCTS)
    reference += " GROUP BY district"
    assert check(sql, ctx).canonical == check(reference, ctx).canonical


def test_sum_and_avg_inputs_are_clamped_null_safely(ctx):
    q = check("SELECT district, SUM(amount), AVG(amount) FROM loans GROUP BY district", ctx)
    clamp = (
        'CASE WHEN "loans"."amount" < 0 THEN 0 WHEN "loans"."amount" > 100000 THEN 100000 '
        'ELSE "loans"."amount" END'
    )
    assert f"SUM({clamp})" in q.engine_sql
    assert f"AVG({clamp})" in q.engine_sql
    # Never LEAST/GREATEST: DuckDB's GREATEST(NULL, 0) is 0, which would change AVG.
    assert "GREATEST" not in q.engine_sql.upper()
    assert [o.kind for o in q.outputs] == ["dimension", "sum", "avg"]
    assert q.outputs[1].sensitivity == Decimal(100000)


def test_negative_bounds_render_as_numbers():
    from sandbox import ColumnSpec, TableSpec

    t = TableSpec(
        "t",
        "conditional",
        {"d": ColumnSpec("d", "dimension"), "x": ColumnSpec("x", "measure", Decimal("-2.5"), 7)},
        entity_key="e",
    )
    q = check("SELECT d, SUM(x) FROM t GROUP BY d", PolicyContext({"t": t}))
    assert 'WHEN "t"."x" < -2.5 THEN -2.5' in q.engine_sql
    assert q.outputs[1].sensitivity == Decimal("7")


def test_aggregate_query_metadata(ctx):
    q = check("SELECT district, COUNT(DISTINCT ek) AS people FROM loans GROUP BY district", ctx)
    assert q.mode == "aggregate"
    assert q.k_min == 10
    assert q.output_columns == ("district", "people")
    assert q.tables_used == ("loans",)
    assert q.views[0].columns == ("district", "industry", "amount", "id_no", "note", "ek")
    assert q.engine_columns[-2:] == (q.k_column, q.suppressed_column)
    assert q.epsilon_cost == 0 and q.dp is None
    sqlglot.parse_one(q.engine_sql, read="duckdb")  # valid SQL


def test_epsilon_cost_is_known_before_running(dp_ctx):
    q = check("SELECT district, COUNT(*), SUM(amount), AVG(amount) FROM loans GROUP BY 1", dp_ctx)
    assert q.epsilon_cost == Decimal("0.5")
    assert q.dp is not None
    # COUNT(*), SUM(amount), and AVG = SUM(amount) (shared) / COUNT(amount): three releases.
    kinds = {m.kind: m for m in q.dp.measurements}
    assert kinds["count"].scale == Decimal(1) / (Decimal("0.5") / 3)
    assert kinds["sum"].scale == Decimal(100000) / (Decimal("0.5") / 3)
    assert kinds["avg"].count_scale == kinds["count"].scale
    assert q.dp.group_columns and set(q.dp.group_columns) <= set(q.engine_columns)


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("SELECT COUNT(*) FROM loans JOIN firms ON loans.ek = firms.fk", "forbidden_join"),
        (
            "SELECT district FROM loans GROUP BY district HAVING COUNT(*) > 20",
            "forbidden_construct",
        ),
        (
            "SELECT district, COUNT(*) AS n FROM loans GROUP BY 1 ORDER BY n DESC",
            "forbidden_construct",
        ),
        ("SELECT district FROM loans GROUP BY 1 ORDER BY SUM(amount)", "forbidden_construct"),
    ],
)
def test_privacy_budget_tables_refuse_constructs_that_leak_exact_values(dp_ctx, sql, rule):
    from sandbox_testdata import firms_spec

    ctx = PolicyContext({**dp_ctx.tables, "firms": firms_spec()})
    with pytest.raises(PolicyViolation) as caught:
        check(sql, ctx)
    assert caught.value.rule == rule


def test_dp_order_by_dimension_is_allowed(dp_ctx):
    q = check("SELECT district, COUNT(*) FROM loans GROUP BY 1 ORDER BY district", dp_ctx)
    assert q.epsilon_cost == Decimal("0.5")


def test_open_star_expands_to_non_identifier_columns(ctx):
    q = check("SELECT * FROM firms", ctx)
    assert q.mode == "rows"
    assert q.output_columns == ("district", "name", "capital")  # no uscc, no fk
    assert q.k_min is None and q.suppressed_column is None


@pytest.mark.parametrize(("limit", "expected"), [(None, 1001), (5, 5), (50_000, 1001)])
def test_row_cap_becomes_the_engine_limit(ctx, limit, expected):
    sql = "SELECT name FROM firms" + (f" LIMIT {limit}" if limit else "")
    assert check(sql, ctx).engine_sql.endswith(f"LIMIT {expected}")


def test_engine_sql_is_regenerated_not_copied(ctx):
    q = check("SELECT COUNT(*) FROM loans /* '); DROP TABLE x; -- */ WHERE district = 'a'", ctx)
    assert "DROP" not in q.engine_sql
    assert "/*" not in q.engine_sql


def test_join_on_entity_keys_is_accepted_and_mixed_grades_aggregate(ctx):
    q = check(
        "SELECT f.district, COUNT(DISTINCT l.ek), AVG(f.capital) FROM loans l "
        "JOIN firms f ON f.fk = l.ek GROUP BY f.district",
        ctx,
    )
    assert q.mode == "aggregate" and q.tables_used == ("loans", "firms")
    assert 'JOIN "firms" ON "loans"."ek" = "firms"."fk"' in q.engine_sql
