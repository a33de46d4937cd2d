"""check + engine + postprocess on synthetic Parquet, compared with a pandas reference of the
contribution bounding (exact values through the NoNoise seam), plus real OpenDP noise."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pytest
from sandbox_testdata import (
    AMOUNT_HI,
    OUTLIER,
    K,
    firms_frame,
    firms_spec,
    loans_frame,
    loans_spec,
)

from sandbox import NoNoise, PolicyContext, PolicyViolation, TablePrivacy, check, run_query


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    return loans_frame()


def run(sql, ctx, tables, engine, **kw):
    return run_query(sql, ctx, tables, engine, timeout_s=30, **kw).result


EXACT = NoNoise(min_entities=K)  # exact bounded values; groups of >= K entities released


def bounded_groups(df: pd.DataFrame, keys: list[str], rows_cap: int = 12) -> pd.DataFrame:
    """pandas reference of the engine's bounding: per (group, entity) its rows (capped), its
    clamped amount total and non-NULL count; then per group."""
    per = (
        df.groupby(keys + ["ek"], dropna=False)
        .agg(n=("amount", "size"), s=("amount", "sum"), k=("amount", "count"))
        .reset_index()
    )
    per["n"] = per["n"].clip(upper=rows_cap)
    per["k"] = per["k"].clip(upper=rows_cap)
    per["s"] = per["s"].clip(0, AMOUNT_HI)
    if not keys:
        per["_all"] = 0
        keys = ["_all"]
    out = per.groupby(keys, dropna=False).agg(
        d=("ek", "size"), n=("n", "sum"), s=("s", "sum"), k=("k", "sum")
    )
    return out.reset_index()


def _money(x) -> Decimal:
    return Decimal(repr(float(x))).quantize(Decimal("0.01"))


def test_group_by_district_matches_the_bounded_reference(wide_ctx, tables, engine, loans):
    result = run(
        "SELECT district, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, "
        "COUNT(DISTINCT ek) AS people FROM loans GROUP BY district",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    ref = bounded_groups(loans, ["district"])
    ref = ref[ref["d"] >= K]
    want = [
        (r.district, int(r.n), _money(r.s), _money(r.s / r.k), int(r.d)) for r in ref.itertuples()
    ]
    assert result.columns == ("district", "n", "total", "mean", "people")
    assert result.rows == sorted(want)  # no ORDER BY: rows come in group-key order
    # Rare (3 entities) and Short (9) are withheld and nothing says how many were.
    assert {r[0] for r in result.rows} == {
        "Huangpu",
        "Xuhui",
        "Jingan",
        "Pudong",
        "Minhang",
        "Edge",
    }
    assert result.suppressed_groups is None
    assert [b.kind if b else None for b in result.error_bounds] == [
        None,
        "count",
        "sum",
        "avg",
        "count",
    ]


def test_filtered_two_key_group_by_matches_the_bounded_reference(wide_ctx, tables, engine, loans):
    sql = (
        "SELECT district, industry, COUNT(*), AVG(amount) FROM loans "
        "WHERE district IN ('Xuhui', 'Pudong', 'Rare') AND industry <> 'farm' "
        "GROUP BY district, industry"
    )
    sub = loans[loans["district"].isin(["Xuhui", "Pudong", "Rare"]) & (loans["industry"] != "farm")]
    ref = bounded_groups(sub, ["district", "industry"])
    ref = ref[ref["d"] >= K]
    want = [(r.district, r.industry, int(r.n), _money(r.s / r.k)) for r in ref.itertuples()]
    result = run(sql, wide_ctx, tables, engine, noise=EXACT)
    assert result.rows == sorted(want)
    assert "Rare" not in {r[0] for r in result.rows}


def test_each_entity_counts_in_at_most_its_group_limit(dp_ctx, tables, engine, loans):
    """Default: one group per entity. Grouping by industry (entities span several), the
    distinct counts add up to at most the number of entities."""
    result = run(
        "SELECT industry, COUNT(DISTINCT ek) FROM loans GROUP BY industry",
        dp_ctx,
        tables,
        engine,
        noise=NoNoise(min_entities=1),
    )
    assert sum(r[1] for r in result.rows) == loans["ek"].nunique()
    wide = loans.groupby("industry")["ek"].nunique().sum()
    assert wide > loans["ek"].nunique()  # without the bound they would add up to more


def test_whole_table_total_having_order_and_limit_after_noise(wide_ctx, tables, engine, loans):
    total = run("SELECT COUNT(*), SUM(amount) FROM loans", wide_ctx, tables, engine, noise=EXACT)
    ref = bounded_groups(loans, [])
    assert total.rows == [(int(ref["n"][0]), _money(ref["s"][0]))]

    result = run(
        "SELECT district, COUNT(*) AS n FROM loans GROUP BY district "
        "HAVING COUNT(*) > 250 ORDER BY n DESC, district LIMIT 3",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    counts = loans.groupby("district").size()
    counts = counts[counts > 250]
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert result.rows == [(d, int(n)) for d, n in want]


def test_cte_and_join_match_the_bounded_reference(wide_ctx, tables, engine, loans):
    cte = run(
        "WITH tech AS (SELECT district AS d, amount, ek FROM loans WHERE industry = 'tech') "
        "SELECT d, SUM(amount) FROM tech GROUP BY d",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    ref = bounded_groups(loans[loans["industry"] == "tech"], ["district"])
    ref = ref[ref["d"] >= K]
    assert cte.rows == sorted((r.district, _money(r.s)) for r in ref.itertuples())

    # Joins are allowed under DP: the joined rows of one enterprise are bounded together.
    firms = firms_frame()
    joined = loans.merge(firms, left_on="ek", right_on="fk", suffixes=("", "_f"))
    result = run(
        "SELECT f.district AS firm_district, COUNT(DISTINCT l.ek) AS people, SUM(l.amount) "
        "FROM loans l JOIN firms f ON l.ek = f.fk GROUP BY f.district",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    joined = joined.drop(columns="district").rename(columns={"district_f": "district"})
    ref = bounded_groups(joined, ["district"])
    ref = ref[ref["d"] >= K]
    assert result.rows == sorted((r.district, int(r.d), _money(r.s)) for r in ref.itertuples())
    assert result.suppressed_groups is None


def test_small_groups_are_withheld_without_a_count(wide_ctx, tables, engine):
    short = run(
        "SELECT district, COUNT(*) FROM loans WHERE district = 'Short' GROUP BY 1",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    assert short.rows == [] and short.suppressed_groups is None
    edge = run(
        "SELECT district, COUNT(*) FROM loans WHERE district = 'Edge' GROUP BY 1",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    assert edge.rows == [("Edge", K)]
    # Without GROUP BY the single group is public: an empty selection answers (noisy) zero,
    # exactly like a small one, never an error and never NULL.
    none = run(
        "SELECT COUNT(*), SUM(amount) FROM loans WHERE district = 'Nowhere'",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    assert none.rows == [(0, Decimal("0.00"))]


def test_outlier_is_clamped_per_entity(wide_ctx, tables, engine, loans):
    pudong = loans[loans["district"] == "Pudong"]
    result = run(
        "SELECT SUM(amount), AVG(amount) FROM loans WHERE district = 'Pudong'",
        wide_ctx,
        tables,
        engine,
        noise=EXACT,
    )
    (total, mean) = result.rows[0]
    ref = bounded_groups(pudong, [])
    assert total == _money(ref["s"][0])
    assert total < OUTLIER  # the raw sum would contain the 1e9 outlier
    assert mean == _money(ref["s"][0] / ref["k"][0])


def test_open_rows_query_and_row_cap(ctx, tables, engine):
    firms = firms_frame()
    result = run(
        "SELECT name, capital FROM firms WHERE capital > 9900 OR name = 'Firm 1' "
        "ORDER BY capital DESC, name",
        ctx,
        tables,
        engine,
    )
    want = firms[(firms["capital"] > 9900) | (firms["name"] == "Firm 1")]
    want = want.sort_values(["capital", "name"], ascending=[False, True])
    assert result.rows == list(want[["name", "capital"]].itertuples(index=False, name=None))
    assert result.suppressed_groups == 0 and not result.truncated

    everything = run("SELECT * FROM firms", ctx, tables, engine)
    assert everything.columns == ("district", "name", "capital")
    assert len(everything.rows) == ctx.row_cap and everything.truncated


def test_policy_violation_stops_before_the_engine(ctx, tables, engine):
    calls = []
    with pytest.raises(PolicyViolation):
        run_query("SELECT id_no FROM loans", ctx, tables, engine, before_run=calls.append)
    assert calls == []
    run_query("SELECT COUNT(*) FROM loans", ctx, tables, engine, before_run=calls.append)
    assert [c.canonical for c in calls] == ['SELECT COUNT(*) FROM "loans"']
    assert calls[0].epsilon_cost == Decimal("0.5") and calls[0].charged_tables == ("loans",)


DP_VARIANTS = [
    "SELECT district, COUNT(*), SUM(amount), AVG(amount) FROM loans "
    "WHERE industry IN ('tech', 'retail') AND district <> 'Rare' GROUP BY district",
    "select   DISTRICT as d , count(*) as n, sum(AMOUNT) total, avg(amount) as a from LOANS l "
    "where l.district != 'Rare' and industry in ('retail','tech') group by 1",
    "WITH x AS (SELECT district AS dd, industry, amount FROM loans WHERE 'Rare' <> district) "
    "SELECT dd, COUNT(*), SUM(amount), AVG(amount) FROM x WHERE industry IN ('retail', 'tech') "
    "GROUP BY dd",
]


def test_trivial_rewrites_share_the_release_key(dp_ctx):
    keys = {check(sql, dp_ctx).release_key for sql in DP_VARIANTS}
    assert len(keys) == 1


def test_opendp_noise_is_fresh_and_bounded(tables, engine, loans):
    """With real noise (a generous epsilon so that groups pass tau): values move between two
    runs of the same question, stay plausible, and averages stay within the bounds."""
    ctx = PolicyContext(
        {"loans": loans_spec(privacy=TablePrivacy(Decimal(10), Decimal("1e-6"), 1, 12))}
    )
    first = run(DP_VARIANTS[0], ctx, tables, engine)
    second = run(DP_VARIANTS[0], ctx, tables, engine)
    assert first.rows and first.rows != second.rows  # fresh randomness, no sticky noise
    exact = loans[loans["industry"].isin(["tech", "retail"]) & (loans["district"] != "Rare")]
    exact_counts = exact.groupby("district").size()
    bound = first.error_bounds[1].half_width
    for row in first.rows:
        assert isinstance(row[1], int) and row[1] >= 0
        assert abs(row[1] - exact_counts[row[0]]) < 20 * bound
        assert row[3] is None or Decimal(0) <= row[3] <= Decimal(AMOUNT_HI)
    assert first.epsilon_spent == Decimal(10) and first.delta_spent == Decimal("1e-6")
    assert sum(e for _, e in first.epsilon_split) <= Decimal(10)


def test_dp_cost_is_known_before_running(dp_ctx):
    q = check(DP_VARIANTS[0], dp_ctx)
    assert q.epsilon_cost == Decimal("0.5") and q.delta_cost == Decimal("1e-6")
    assert q.tables_used == q.charged_tables == ("loans",)
    ungrouped = check("SELECT COUNT(*) FROM loans", dp_ctx)
    assert ungrouped.delta_cost == 0  # no group selection, no delta


def test_concurrent_queries_share_the_pool(ctx, tables, engine):
    results, errors = [], []

    def worker():
        try:
            results.append(run("SELECT COUNT(*) FROM firms", ctx, tables, engine).rows)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4 and len({tuple(r) for r in results}) == 1


def test_every_allowlisted_scalar_function_runs(ctx, tables, engine):
    """Regenerated SQL for each allowlisted function is valid DuckDB with the same meaning."""
    sql = (
        "SELECT LOWER(name), UPPER(name), LENGTH(name), TRIM(name), SUBSTRING(name, 1, 3), "
        "LEFT(name, 2), RIGHT(name, 2), CONCAT(name, '-', district), REPLACE(name, 'Firm', 'F'), "
        "ROUND(capital / 3, 1), FLOOR(capital / 3), CEIL(capital / 3), ABS(-capital), "
        "COALESCE(NULL, name), NULLIF(capital, 0), CAST(capital AS VARCHAR), "
        "TRY_CAST(name AS INTEGER), capital::DOUBLE, YEAR(DATE '2024-05-17'), "
        "MONTH(DATE '2024-05-17'), DAY(DATE '2024-05-17'), QUARTER(DATE '2024-05-17'), "
        "DATE_TRUNC('month', DATE '2024-05-17'), EXTRACT(year FROM DATE '2024-05-17'), "
        "DATE_PART('year', DATE '2024-05-17'), STRFTIME(DATE '2024-05-17', '%Y/%m'), "
        "LEAST(capital, 5), GREATEST(capital, 5), CASE WHEN capital > 5 THEN 'big' ELSE 'small' END, "
        "IF(capital > 5, 1, 0), name || '!', capital % 7, capital // 7, "
        "DATE '2024-05-17' + INTERVAL 1 DAY "
        "FROM firms WHERE name = 'Firm 12'"
    )
    (row,) = run(sql, ctx, tables, engine).rows
    firm = firms_frame().set_index("name").loc["Firm 12"]
    cap = int(firm["capital"])
    assert row[:9] == (
        "firm 12",
        "FIRM 12",
        7,
        "Firm 12",
        "Fir",
        "Fi",
        "12",
        f"Firm 12-{firm['district']}",
        "F 12",
    )
    assert row[10:13] == (cap // 3, -(-cap // 3), cap)
    assert row[18:26] == (2024, 5, 17, 2, datetime(2024, 5, 1), 2024, 2024, "2024/05")
    assert row[26:32] == (
        min(cap, 5),
        max(cap, 5),
        "big" if cap > 5 else "small",
        int(cap > 5),
        "Firm 12!",
        cap % 7,
    )


def test_join_with_one_group_per_entity_bounds_on_the_joined_entity(dp_ctx, tables, engine, loans):
    """Default bounds (one group per entity) across a join: each enterprise counts once."""
    ctx = PolicyContext({**dp_ctx.tables, "firms": firms_spec()})
    result = run(
        "SELECT f.district, COUNT(DISTINCT l.ek), COUNT(*) FROM loans l "
        "JOIN firms f ON l.ek = f.fk GROUP BY f.district ORDER BY f.district DESC",
        ctx,
        tables,
        engine,
        noise=NoNoise(min_entities=1),
    )
    joined = loans.merge(firms_frame(), left_on="ek", right_on="fk")
    assert sum(r[1] for r in result.rows) == joined["ek"].nunique()
    assert [r[0] for r in result.rows] == sorted({r[0] for r in result.rows}, reverse=True)


def test_order_by_a_group_key_that_is_not_an_output(wide_ctx, tables, engine):
    result = run(
        "SELECT COUNT(*) FROM loans WHERE district IN ('Xuhui', 'Pudong', 'Jingan') "
        "GROUP BY district ORDER BY district DESC",
        wide_ctx,
        tables,
        engine,
        noise=NoNoise(min_entities=1),
    )
    by_district = run(
        "SELECT district, COUNT(*) FROM loans WHERE district IN ('Xuhui', 'Pudong', 'Jingan') "
        "GROUP BY district",
        wide_ctx,
        tables,
        engine,
        noise=NoNoise(min_entities=1),
    )
    want = [n for _, n in sorted(by_district.rows, reverse=True)]
    assert [r[0] for r in result.rows] == want
