"""The bounded engine SQL against a plain pandas reference of entity-level contribution bounds.

On random data (NULL group keys, NULL measures, negative values, entities with many rows and
many groups, a join on the entity key) and several (max groups G, max rows R, declared range)
settings, the pre-noise aggregates the engine returns must equal, exactly, what the textbook
computation gives: per (entity, group) the entity's rows; each entity keeps its G groups of
smallest hash(entity hash, keys) (the only engine-specific piece, DuckDB's hash, is computed
by DuckDB on the raw rows); COUNT contributions capped at R; each entity's SUM total clamped
into [lower, upper]; then per group: distinct entities, capped counts, clamped sums.
"""

from __future__ import annotations

import math
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from sandbox_testdata import pseudonym

from sandbox import ColumnSpec, PolicyContext, TablePrivacy, TableSpec, check

DIMS = ["a", "b", "c", "d", "e", None]


def _frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for entity in range(120):
        # a few heavy entities (many rows, many groups) next to light ones
        n = int(rng.integers(20, 60)) if entity % 17 == 0 else int(rng.integers(1, 8))
        for _ in range(n):
            d = DIMS[int(rng.integers(0, len(DIMS)))]
            k = ["x", "y", None][int(rng.integers(0, 3))]
            v = None if rng.random() < 0.15 else int(rng.integers(-40, 160))
            rows.append((pseudonym(entity), d, k, v))
    t = pd.DataFrame(rows, columns=["ek", "d", "k", "v"])
    t["v"] = t["v"].astype("Int64")
    f = pd.DataFrame(
        {
            # entities 0..89 have a firm row; some firms have no t rows (110..139)
            "fk": [pseudonym(i) for i in [*range(90), *range(110, 140)]],
            "sector": [["s1", "s2", "s3", None][i % 4] for i in range(120)],
        }
    )
    return t, f


def _ctx(privacy: TablePrivacy, lower: Decimal, upper: Decimal) -> PolicyContext:
    t = TableSpec(
        slug="t",
        grade="conditional",
        columns={
            "d": ColumnSpec("d", "dimension"),
            "k": ColumnSpec("k", "dimension"),
            "v": ColumnSpec("v", "measure", lower, upper),
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


def _pair_rank(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    """DuckDB's hash(hash(entity key), keys...) per row: the engine's group choice order."""
    con = duckdb.connect()
    try:
        con.register("frame", df[["ek", *keys]])
        args = ", ".join(['hash("ek")', *[f'"{k}"' for k in keys]])
        return con.execute(f"SELECT hash({args}) AS h FROM frame").df()["h"]
    finally:
        con.close()


def _reference(
    df: pd.DataFrame, keys: list[str], g: int, r: int, lower: int, upper: int
) -> dict[tuple, tuple[int, int, float, int]]:
    """{keys: (entities, capped COUNT(*), clamped SUM(v), capped COUNT(v))}."""
    df = df.copy()
    df["_h"] = _pair_rank(df, keys).astype("uint64").to_numpy()
    per = (
        df.groupby(["ek", *keys], dropna=False)
        .agg(h=("_h", "first"), n=("v", "size"), s=("v", "sum"), c=("v", "count"))
        .reset_index()
    )
    per = per.sort_values(["ek", "h"])
    per = per[per.groupby("ek").cumcount() < g]
    out: dict[tuple, list] = {}
    for row in per.itertuples(index=False):
        key = tuple(None if pd.isna(getattr(row, k)) else getattr(row, k) for k in keys)
        acc = out.setdefault(key, [0, 0, 0.0, 0])
        acc[0] += 1
        acc[1] += min(int(row.n), r)
        # an entity whose measures in the group are all NULL has a NULL total: it adds
        # nothing to the SUM (not clamp(0), which differs when lower > 0)
        if row.c:
            acc[2] += min(max(float(row.s), lower), upper)
        acc[3] += min(int(row.c), r)
    return {k: tuple(v) for k, v in out.items()}


def _engine(q, engine, tables) -> dict[tuple, tuple[int, int, float, int]]:
    res = engine.run(q, tables, timeout_s=60)
    by_name = {rel.name: rel.column for rel in q.dp.releases}
    cols = list(res.columns)
    keys = list(q.dp.group_columns)
    m_n, m_s = by_name["COUNT(*)"], by_name['SUM("t"."v")']
    m_c = by_name['COUNT("t"."v")']
    out = {}
    for row in res.rows:
        rec = dict(zip(cols, row, strict=True))
        out[tuple(rec[k] for k in keys)] = (
            int(rec["__sbx_d"]),
            int(rec[m_n]),
            float(rec[m_s]),
            int(rec[m_c]),
        )
    assert not res.truncated
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bounded-ref")
    t, f = _frames(20261207)
    t.to_parquet(root / "t.parquet", index=False)
    f.to_parquet(root / "f.parquet", index=False)
    return t, f, {"t": str(root / "t.parquet"), "f": str(root / "f.parquet")}


SETTINGS = [
    # (G, R, lower, upper)
    (1, 1, 0, 100),
    (1, 3, -20, 30),
    (1, 12, 0, 1000),
    (2, 2, 0, 100),
    (3, 5, -50, 50),
    (6, 100, -1000, 1000),  # wide: nothing capped; one key drops nothing (six values)
]


@pytest.mark.parametrize(("g", "r", "lower", "upper"), SETTINGS)
@pytest.mark.parametrize("keys", [["d"], ["d", "k"]])
def test_bounded_sql_equals_the_reference(data, engine, g, r, lower, upper, keys):
    t, _, tables = data
    privacy = TablePrivacy(
        Decimal(1), Decimal("1e-6"), max_groups_per_entity=g, max_rows_per_entity=r
    )
    ctx = _ctx(privacy, Decimal(lower), Decimal(upper))
    cols = ", ".join(keys)
    q = check(f"SELECT {cols}, COUNT(*), SUM(v), COUNT(v) FROM t GROUP BY {cols}", ctx)
    got = _engine(q, engine, tables)
    want = _reference(t, keys, g, r, lower, upper)
    assert got.keys() == want.keys()
    for key, (d, n, s, c) in want.items():
        gd, gn, gs, gc = got[key]
        assert (gd, gn, gc) == (d, n, c), key
        assert math.isclose(gs, s, rel_tol=0, abs_tol=1e-9), key
    if g < 6:  # the bounds are active on this data: the test is not about no-ops
        assert want != _reference(t, keys, 1000, 10**6, -(10**9), 10**9)
    # each entity is in at most G groups, whatever the keys
    assert sum(v[0] for v in got.values()) <= g * t["ek"].nunique()
    # the sensitivities the noise is calibrated on
    sens = {rel.name: rel.sensitivity for rel in q.dp.releases}
    assert sens["COUNT(*)"] == Decimal(g * r)
    assert sens['SUM("t"."v")'] == Decimal(g * max(abs(lower), abs(upper)))


@pytest.mark.parametrize(("g", "r", "lower", "upper"), [(1, 2, 0, 100), (2, 3, -10, 40)])
def test_bounded_sql_on_a_join_equals_the_reference(data, engine, g, r, lower, upper):
    t, f, tables = data
    privacy = TablePrivacy(
        Decimal(1), Decimal("1e-6"), max_groups_per_entity=g, max_rows_per_entity=r
    )
    ctx = _ctx(privacy, Decimal(lower), Decimal(upper))
    q = check(
        "SELECT f.sector, COUNT(*), SUM(t.v), COUNT(t.v) FROM t JOIN f ON t.ek = f.fk "
        "GROUP BY f.sector",
        ctx,
    )
    got = _engine(q, engine, tables)
    joined = t.merge(f, left_on="ek", right_on="fk")
    want = _reference(joined, ["sector"], g, r, lower, upper)
    assert got.keys() == want.keys()
    for key, (d, n, s, c) in want.items():
        gd, gn, gs, gc = got[key]
        assert (gd, gn, gc) == (d, n, c), key
        assert math.isclose(gs, s, rel_tol=0, abs_tol=1e-9), key


def test_the_projection_is_ordered_by_the_entity_hash(data, engine):
    """Layout 2: each entity's rows are contiguous (the bounding's GROUP BY entity and join
    read them together); the rows themselves are the source's, none lost or added."""
    t, _, tables = data
    prepared = engine.prepare(tables["t"], ["d", "k", "v"], "ek")
    con = duckdb.connect()
    try:
        stored = con.execute(
            f"SELECT __sbx_eh, ek, d, k, v FROM read_parquet('{prepared.path}')"
        ).fetchall()
    finally:
        con.close()
    assert prepared.stored_hash and prepared.path != tables["t"]
    hashes = [row[0] for row in stored]
    assert hashes == sorted(hashes)

    def none(x):
        return None if pd.isna(x) else x

    src = [(r.ek, none(r.d), none(r.k), None if pd.isna(r.v) else int(r.v)) for r in t.itertuples()]
    assert sorted(map(repr, (row[1:] for row in stored))) == sorted(map(repr, src))
