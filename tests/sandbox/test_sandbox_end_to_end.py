"""check + engine + postprocess on synthetic Parquet, compared with pandas."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal

import pandas as pd
import pytest
from sandbox_testdata import AMOUNT_HI, OUTLIER, K, firms_frame, loans_frame

from sandbox import PolicyViolation, run_query


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    df = loans_frame()
    df["clamped"] = df["amount"].clip(0, AMOUNT_HI)
    return df


def run(sql, ctx, tables, engine, **kw):
    return run_query(sql, ctx, tables, engine, timeout_s=30, **kw).result


def expected_groups(df: pd.DataFrame, keys: list[str], aggs: dict) -> tuple[set, int]:
    """pandas reference: aggregate, keep groups with >= K distinct entities, count the rest."""
    grouped = df.groupby(keys, dropna=False)
    out = grouped.agg(**aggs, _entities=("ek", "nunique")).reset_index()
    kept = out[out["_entities"] >= K].drop(columns="_entities")
    return {_row(r) for r in kept.itertuples(index=False)}, int((out["_entities"] < K).sum())


def _row(values) -> tuple:
    return tuple(round(float(v), 6) if isinstance(v, float | Decimal) else v for v in values)


def rows_set(result) -> set:
    return {_row(r) for r in result.rows}


def test_group_by_district_matches_pandas(ctx, tables, engine, loans):
    result = run(
        "SELECT district, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, "
        "COUNT(DISTINCT ek) AS people FROM loans GROUP BY district",
        ctx,
        tables,
        engine,
    )
    want, suppressed = expected_groups(
        loans,
        ["district"],
        {
            "n": ("amount", "size"),
            "total": ("clamped", "sum"),
            "mean": ("clamped", "mean"),
            "people": ("ek", "nunique"),
        },
    )
    assert result.columns == ("district", "n", "total", "mean", "people")
    assert rows_set(result) == want
    # Rare (18 rows, 3 entities) and Short (9 entities) are dropped; Edge (exactly k) is kept.
    assert suppressed == 2 and result.suppressed_groups == 2
    assert {r[0] for r in result.rows} == {
        "Huangpu",
        "Xuhui",
        "Jingan",
        "Pudong",
        "Minhang",
        "Edge",
    }


def test_filtered_two_key_group_by_matches_pandas(ctx, tables, engine, loans):
    sql = (
        "SELECT district, industry, COUNT(*), AVG(amount) FROM loans "
        "WHERE district IN ('Xuhui', 'Pudong', 'Rare') AND industry <> 'farm' "
        "GROUP BY district, industry"
    )
    sub = loans[loans["district"].isin(["Xuhui", "Pudong", "Rare"]) & (loans["industry"] != "farm")]
    want, suppressed = expected_groups(
        sub, ["district", "industry"], {"n": ("amount", "size"), "mean": ("clamped", "mean")}
    )
    result = run(sql, ctx, tables, engine)
    assert rows_set(result) == want
    assert result.suppressed_groups == suppressed == 1  # Rare/retail


def test_whole_table_total_and_having_and_order(ctx, tables, engine, loans):
    total = run("SELECT COUNT(*), SUM(amount) FROM loans", ctx, tables, engine)
    assert total.rows == [(len(loans), int(loans["clamped"].sum()))]

    result = run(
        "SELECT district, COUNT(*) AS n FROM loans GROUP BY district "
        "HAVING COUNT(*) > 250 ORDER BY n DESC, district LIMIT 3",
        ctx,
        tables,
        engine,
    )
    counts = loans.groupby("district").size()
    counts = counts[counts > 250].sort_values(ascending=False, kind="stable")
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert result.rows == [(d, int(n)) for d, n in want]


def test_cte_and_join_match_pandas(ctx, tables, engine, loans):
    cte = run(
        "WITH tech AS (SELECT district AS d, amount, ek FROM loans WHERE industry = 'tech') "
        "SELECT d, SUM(amount) FROM tech GROUP BY d",
        ctx,
        tables,
        engine,
    )
    want, _ = expected_groups(
        loans[loans["industry"] == "tech"], ["district"], {"s": ("clamped", "sum")}
    )
    assert rows_set(cte) == want

    firms = firms_frame()
    joined = loans.merge(firms, left_on="ek", right_on="fk", suffixes=("", "_f"))
    result = run(
        "SELECT f.district AS firm_district, COUNT(DISTINCT l.ek) AS people, SUM(l.amount) "
        "FROM loans l JOIN firms f ON l.ek = f.fk GROUP BY f.district",
        ctx,
        tables,
        engine,
    )
    want, suppressed = expected_groups(
        joined, ["district_f"], {"people": ("ek", "nunique"), "s": ("clamped", "sum")}
    )
    assert rows_set(result) == want and result.suppressed_groups == suppressed


def test_small_groups_are_dropped_and_counted(ctx, tables, engine):
    rare = run(
        "SELECT COUNT(*), SUM(amount) FROM loans WHERE district = 'Rare'", ctx, tables, engine
    )
    assert rare.rows == [] and rare.suppressed_groups == 1
    short = run(
        "SELECT district, COUNT(*) FROM loans WHERE district = 'Short' GROUP BY 1",
        ctx,
        tables,
        engine,
    )
    assert short.rows == [] and short.suppressed_groups == 1
    edge = run(
        "SELECT district, COUNT(*) FROM loans WHERE district = 'Edge' GROUP BY 1",
        ctx,
        tables,
        engine,
    )
    assert edge.rows == [("Edge", K)] and edge.suppressed_groups == 0
    # An empty selection is one group of zero entities: suppressed, not an error.
    none = run("SELECT COUNT(*) FROM loans WHERE district = 'Nowhere'", ctx, tables, engine)
    assert none.rows == [] and none.suppressed_groups == 1


def test_outlier_cannot_be_read_back(ctx, tables, engine, loans):
    pudong = loans[loans["district"] == "Pudong"]
    result = run(
        "SELECT SUM(amount), AVG(amount) FROM loans WHERE district = 'Pudong'", ctx, tables, engine
    )
    (total, mean) = result.rows[0]
    assert total == int(pudong["clamped"].sum())
    assert total < OUTLIER  # the raw sum would contain the 1e9 outlier
    assert mean == pytest.approx(pudong["clamped"].mean())


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


DP_VARIANTS = [
    "SELECT district, COUNT(*), SUM(amount), AVG(amount) FROM loans "
    "WHERE industry IN ('tech', 'retail') AND district <> 'Rare' GROUP BY district",
    "select   DISTRICT as d , count(*) as n, sum(AMOUNT) total, avg(amount) as a from LOANS l "
    "where l.district != 'Rare' and industry in ('retail','tech') group by 1",
    "WITH x AS (SELECT district AS dd, industry, amount FROM loans WHERE 'Rare' <> district) "
    "SELECT dd, COUNT(*), SUM(amount), AVG(amount) FROM x WHERE industry IN ('retail', 'tech') "
    "GROUP BY dd ORDER BY dd",
]


def test_dp_answers_are_deterministic_across_trivial_rewrites(dp_ctx, tables, engine, loans):
    results = [run(sql, dp_ctx, tables, engine, dp_secret=b"key|license-7") for sql in DP_VARIANTS]
    variants = DP_VARIANTS
    assert sorted(results[0].rows) == sorted(results[1].rows) == results[2].rows
    again = run(variants[0], dp_ctx, tables, engine, dp_secret=b"key|license-7")
    # no ORDER BY, so the engine may return the groups in any order; the values must not move
    assert sorted(again.rows) == sorted(results[0].rows)
    other = run(variants[0], dp_ctx, tables, engine, dp_secret=b"key|license-8")
    assert sorted(other.rows) != sorted(results[0].rows)

    exact = loans[loans["industry"].isin(["tech", "retail"]) & (loans["district"] != "Rare")]
    exact_counts = exact.groupby("district").size()
    noisy = {r[0]: r for r in results[0].rows}
    assert any(noisy[d][1] != exact_counts[d] for d in noisy)  # noise was added
    for d, row in noisy.items():
        assert isinstance(row[1], int) and row[1] >= 0
        assert abs(row[1] - exact_counts[d]) < 200  # scale 6: far tails are ~e^-33
        assert Decimal(0) <= row[3] <= Decimal(AMOUNT_HI)


def test_dp_is_required_and_costed_before_running(dp_ctx, tables, engine):
    from sandbox import check

    q = check(DP_VARIANTS[0], dp_ctx)
    assert q.epsilon_cost == Decimal("0.5")
    with pytest.raises(ValueError):
        run_query(DP_VARIANTS[0], dp_ctx, tables, engine)


def test_concurrent_queries_share_the_pool(ctx, tables, engine):
    results, errors = [], []

    def worker():
        try:
            results.append(run("SELECT COUNT(*) FROM loans", ctx, tables, engine).rows)
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
