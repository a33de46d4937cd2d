"""What the policy produces for accepted queries: rewrites, canonical text, metadata."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_testdata import WIDE, loans_spec

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


def test_entity_totals_are_clamped_null_safely_in_generated_sql(ctx):
    q = check("SELECT district, SUM(amount), AVG(amount) FROM loans GROUP BY district", ctx)
    # Per (entity, group) total first, then clamped into the declared range, NULL-safe
    # (never LEAST/GREATEST on the value: DuckDB's GREATEST(NULL, 0) is 0).
    assert 'SUM(TRY_CAST("loans"."amount" AS DOUBLE))' in q.engine_sql
    assert 'CASE WHEN "__sbx_p1" < 0 THEN 0 WHEN "__sbx_p1" > 100000 THEN 100000' in q.engine_sql
    assert "GREATEST" not in q.engine_sql.upper()
    assert 'MIN(hash("loans"."__sbx_eh", "loans"."district"))' in q.engine_sql  # one group
    wide = check(
        "SELECT district, SUM(amount) FROM loans GROUP BY district",
        PolicyContext({"loans": loans_spec(privacy=WIDE)}),
    )
    assert 'QUALIFY ROW_NUMBER() OVER (PARTITION BY "__sbx_e"' in wide.engine_sql  # <= 3 groups
    assert [o.kind for o in q.outputs] == ["dimension", "sum", "avg"]
    # one group per entity by default: one entity moves a SUM by at most the bound
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
    assert "< -2.5 THEN -2.5" in q.engine_sql
    assert q.outputs[1].sensitivity == Decimal("7")


def test_aggregate_query_metadata(ctx):
    q = check("SELECT district, COUNT(DISTINCT ek) AS people FROM loans GROUP BY district", ctx)
    assert q.mode == "aggregate"
    assert q.output_columns == ("district", "people")
    assert q.tables_used == ("loans",) and q.charged_tables == ("loans",)
    assert q.views[0].columns == ("district", "industry", "amount", "id_no", "note", "ek")
    assert q.epsilon_cost == Decimal("0.5") and q.delta_cost == Decimal("1e-6")
    assert q.dp is not None and [r.kind for r in q.dp.releases] == ["threshold"]
    assert q.engine_row_cap > q.row_cap  # every candidate group reaches the threshold
    assert len(q.release_key) == 64
    sqlglot.parse_one(q.engine_sql, read="duckdb")  # valid SQL


def by_threshold(q) -> int:
    return q.dp.releases[q.dp.threshold].threshold


def test_epsilon_is_split_over_the_threshold_and_each_release(dp_ctx):
    q = check("SELECT district, COUNT(*), SUM(amount), AVG(amount) FROM loans GROUP BY 1", dp_ctx)
    assert q.epsilon_cost == Decimal("0.5")
    assert q.dp is not None
    # threshold, COUNT(*), SUM(amount), and AVG = SUM(amount) (shared) / COUNT(amount)
    names = [name for name, _ in q.dp.epsilon_split]
    assert names == ["threshold", "COUNT(*)", 'SUM("loans"."amount")', 'COUNT("loans"."amount")']
    # weighted toward the threshold (sqrt(ln(1/(2 delta))) : sqrt(ln 20) per value release)
    split = dict(q.dp.epsilon_split)
    assert Decimal("0.2054") <= split["threshold"] <= Decimal("0.2055")
    values = [eps for name, eps in q.dp.epsilon_split if name != "threshold"]
    assert all(Decimal("0.0981") <= eps <= Decimal("0.0982") for eps in values)
    assert sum(eps for _, eps in q.dp.epsilon_split) <= q.epsilon_cost
    assert by_threshold(q) == 65  # it was 106 with an even split
    by_name = {r.name: r for r in q.dp.releases}
    assert by_name["COUNT(*)"].sensitivity == 12  # max rows per entity
    assert by_name["threshold"].threshold > 10  # tau from delta, not a k


def test_release_key_covers_every_parameter_that_shapes_the_answer(dp_ctx):
    base = "SELECT district, COUNT(*) AS n FROM loans GROUP BY 1"
    keys = {
        check(sql, c).release_key
        for sql, c in [
            (base, dp_ctx),
            (base + " ORDER BY n DESC", dp_ctx),
            (base + " HAVING COUNT(*) > 5", dp_ctx),
            (base + " LIMIT 2", dp_ctx),
            (base, PolicyContext(dp_ctx.tables, row_cap=5)),
            (base, PolicyContext({"loans": loans_spec(dp_epsilon_per_query=Decimal(1))})),
            (base, PolicyContext({"loans": loans_spec(privacy=WIDE)})),
        ]
    }
    assert len(keys) == 7
    assert check(base, dp_ctx).release_key == check(base + " ;", dp_ctx).release_key


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (  # the oracle of issue #12: HAVING on an aggregate that is not released
            "SELECT district, COUNT(*) FROM loans GROUP BY district HAVING SUM(amount) >= 5",
            "having_not_released",
        ),
        (
            "SELECT district FROM loans GROUP BY district HAVING COUNT(*) > 20",
            "having_not_released",
        ),
        (
            "SELECT district, COUNT(*) FROM loans GROUP BY 1 HAVING district = 'Xuhui'",
            "having_not_released",
        ),
        (
            "SELECT district, SUM(amount) FROM loans GROUP BY 1 HAVING SUM(amount) > COUNT(*)",
            "having_not_released",
        ),
        ("SELECT district FROM loans GROUP BY 1 ORDER BY SUM(amount)", "forbidden_construct"),
        (
            "SELECT district, COUNT(DISTINCT industry) FROM loans GROUP BY 1",
            "forbidden_construct",
        ),
    ],
)
def test_conditional_data_refuses_constructs_on_unreleased_values(dp_ctx, sql, rule):
    from sandbox_testdata import firms_spec

    ctx = PolicyContext({**dp_ctx.tables, "firms": firms_spec()})
    with pytest.raises(PolicyViolation) as caught:
        check(sql, ctx)
    assert caught.value.rule == rule


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM loans JOIN firms ON loans.ek = firms.fk",
        "SELECT district, COUNT(*) AS n FROM loans GROUP BY 1 ORDER BY n DESC",
        "SELECT district, COUNT(*) AS n FROM loans GROUP BY 1 HAVING n > 20 ORDER BY 2",
        "SELECT district, SUM(amount) FROM loans GROUP BY 1 HAVING SUM(amount) BETWEEN 1 AND 9",
        "SELECT district, COUNT(*) FROM loans GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 2",
    ],
)
def test_post_processing_on_released_values_is_allowed(dp_ctx, sql):
    from sandbox_testdata import firms_spec

    q = check(sql, PolicyContext({**dp_ctx.tables, "firms": firms_spec()}))
    assert q.mode == "aggregate" and q.epsilon_cost == Decimal("0.5")
    # The caller's HAVING, ORDER BY and LIMIT never reach the engine: same SQL as without.
    base = sql.split(" HAVING")[0].split(" ORDER BY")[0]
    assert (
        q.engine_sql
        == check(base, PolicyContext({**dp_ctx.tables, "firms": firms_spec()})).engine_sql
    )
    assert "HAVING" not in q.engine_sql


def test_dp_order_by_dimension_is_allowed(dp_ctx):
    q = check("SELECT district, COUNT(*) FROM loans GROUP BY 1 ORDER BY district", dp_ctx)
    assert q.epsilon_cost == Decimal("0.5")


def test_open_star_expands_to_non_identifier_columns(ctx):
    q = check("SELECT * FROM firms", ctx)
    assert q.mode == "rows"
    assert q.output_columns == ("district", "name", "capital")  # no uscc, no fk
    assert q.dp is None and q.epsilon_cost == 0 and q.charged_tables == ()


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


@pytest.mark.parametrize("values", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("delta", ["1e-6", "1e-7", "1e-9"])
@pytest.mark.parametrize("g", [1, 3])
def test_the_weighted_split_never_exceeds_epsilon_and_lowers_tau(values, delta, g):
    from sandbox.dp import calibrate_threshold
    from sandbox.sqlgen import split_epsilon

    eps = Decimal("0.5")
    t_share, v_share = split_epsilon(eps, values, True, g, Decimal(delta))
    assert t_share + values * v_share <= eps
    assert t_share >= eps / (values + 1)  # never less than the even share
    if values:
        assert t_share > v_share
    even_tau = calibrate_threshold(g, eps / (values + 1), Decimal(delta))[1]
    assert calibrate_threshold(g, t_share, Decimal(delta))[1] <= even_tau
    no_group, each = split_epsilon(eps, values, False, g, Decimal(delta))
    assert no_group is None and each * max(values, 1) <= eps
