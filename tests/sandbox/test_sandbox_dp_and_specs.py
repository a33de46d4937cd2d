"""Deterministic Laplace noise, apply_dp, postprocess and spec validation (pure)."""

from __future__ import annotations

import statistics
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox import (
    ColumnSpec,
    EngineError,
    EngineResult,
    PolicyContext,
    TableSpec,
    apply_dp,
    check,
    laplace_noise,
    postprocess,
)
from sandbox.dp import seed_material


@given(st.binary(max_size=64), st.decimals(min_value=0, max_value=10**6, places=3))
def test_laplace_noise_is_a_pure_function(seed, scale):
    assert laplace_noise(seed, scale) == laplace_noise(seed, scale)
    if scale == 0:
        assert laplace_noise(seed, scale) == 0


def test_laplace_noise_has_the_laplace_shape():
    scale = Decimal(3)
    samples = [laplace_noise(i.to_bytes(4, "big"), scale) for i in range(4000)]
    assert abs(statistics.fmean(samples)) < 0.3  # mean 0, sd 3*sqrt(2)/sqrt(4000) ~ 0.07
    mean_abs = statistics.fmean(abs(s) for s in samples)  # E|X| = b
    assert 2.7 < mean_abs < 3.3
    assert sum(1 for s in samples if s > 0) == pytest.approx(2000, abs=150)
    assert len(set(samples)) == len(samples)


def test_laplace_noise_refuses_negative_scale():
    with pytest.raises(ValueError):
        laplace_noise(b"x", Decimal(-1))


def test_seed_material_separates_secret_scope_measure_and_group():
    base = seed_material(b"s", "scope", "COUNT(*)", ["Xuhui", 1])
    assert base == seed_material("s", "scope", "COUNT(*)", ["Xuhui", 1])
    assert (
        len(
            {
                base,
                seed_material(b"t", "scope", "COUNT(*)", ["Xuhui", 1]),
                seed_material(b"s", "scope2", "COUNT(*)", ["Xuhui", 1]),
                seed_material(b"s", "scope", "SUM(x)", ["Xuhui", 1]),
                seed_material(b"s", "scope", "COUNT(*)", ["Xuhui", "1"]),  # typed values
                seed_material(b"s", "scope", "COUNT(*)", ["Xuhui", None]),
            }
        )
        == 6
    )
    assert seed_material(b"s", "", "", [Decimal("1.0")]) == seed_material(
        b"s", "", "", [Decimal(1)]
    )


def _table(dp: Decimal | None = Decimal("1")) -> PolicyContext:
    t = TableSpec(
        "t",
        "conditional",
        {
            "d": ColumnSpec("d", "dimension"),
            "x": ColumnSpec("x", "measure", Decimal(0), Decimal(10)),
        },
        entity_key="e",
        k_min=2,
        dp_epsilon_per_query=dp,
    )
    return PolicyContext({"t": t}, row_cap=2)


def _engine_rows(q, groups):
    """Fake engine output for `q`: one row per (key, count, sum, avg parts...)."""
    idx = {c: i for i, c in enumerate(q.engine_columns)}
    rows = []
    for key, n, s in groups:
        row = [None] * len(q.engine_columns)
        row[0], row[1], row[2], row[3] = key, n, s, Decimal(s) / n
        for name in q.engine_columns:
            if name.startswith("__sbx_g"):
                row[idx[name]] = key
            elif name.startswith("__sbx_as"):
                row[idx[name]] = s
            elif name.startswith("__sbx_an"):
                row[idx[name]] = n
        row[idx[q.k_column]] = True
        row[idx[q.suppressed_column]] = 4
        rows.append(tuple(row))
    return rows


def test_apply_dp_noises_counts_sums_and_averages():
    q = check("SELECT d, COUNT(*), SUM(x), AVG(x) FROM t GROUP BY d", _table())
    rows = _engine_rows(q, [("a", 50, 300), ("b", 3, 10)])
    noisy = apply_dp(q, rows, b"secret")
    assert noisy == apply_dp(q, rows, b"secret")
    assert noisy != apply_dp(q, rows, b"other")
    for before, after in zip(rows, noisy, strict=True):
        assert after[0] == before[0]  # dimensions untouched
        assert isinstance(after[1], int) and after[1] >= 0
        assert after[2] == after[2].quantize(Decimal("0.01"))
        assert Decimal(0) <= after[3] <= Decimal(10)  # averages stay within the bounds
    with pytest.raises(ValueError):
        apply_dp(check("SELECT COUNT(*) FROM t", _table(None)), rows, b"s")


def test_postprocess_strips_hidden_columns_and_applies_the_cap():
    q = check("SELECT d, COUNT(*), SUM(x), AVG(x) FROM t GROUP BY d", _table(None))
    rows = _engine_rows(q, [("a", 5, 30), ("b", 3, 10), ("c", 9, 9)])
    out = postprocess(q, EngineResult(q.engine_columns, rows))
    assert out.columns == ("d", "COUNT(*)", "SUM(x)", "AVG(x)")
    assert out.rows == [r[:4] for r in rows[:2]] and out.truncated
    assert out.suppressed_groups == 4
    # the "no group passed" sentinel row carries only the suppressed count
    sentinel = tuple([None] * (len(q.engine_columns) - 1) + [3])
    empty = postprocess(q, EngineResult(q.engine_columns, [sentinel]))
    assert empty.rows == [] and empty.suppressed_groups == 3
    with pytest.raises(EngineError):
        postprocess(q, EngineResult(("a",), []))
    dp = check("SELECT d, COUNT(*) FROM t GROUP BY d", _table())
    with pytest.raises(ValueError):
        postprocess(dp, EngineResult(dp.engine_columns, []))


@pytest.mark.parametrize(
    "make",
    [
        lambda: ColumnSpec("x", "secretive"),  # type: ignore[arg-type]
        lambda: ColumnSpec("x", "measure", Decimal(1), None),
        lambda: ColumnSpec("x", "measure", Decimal(5), Decimal(1)),
        lambda: ColumnSpec("x", "measure", 0.1, 1.0),  # floats are refused
        lambda: TableSpec("bad slug", "open", {}, entity_key="e"),
        lambda: TableSpec("__sbx_t", "open", {}, entity_key="e"),
        lambda: TableSpec("t", "restricted", {}, entity_key="e"),  # type: ignore[arg-type]
        lambda: TableSpec("t", "open", {}, entity_key="e", k_min=1),
        lambda: TableSpec("t", "open", {}, entity_key="e", dp_epsilon_per_query=Decimal(0)),
        lambda: TableSpec("t", "open", {}, entity_key=""),
        lambda: TableSpec("t", "open", {"a": ColumnSpec("b", "other")}, entity_key="e"),
        lambda: TableSpec("t", "open", {"e": ColumnSpec("e", "dimension")}, entity_key="e"),
        lambda: TableSpec("t", "open", {"k": ColumnSpec("k", "entity_key")}, entity_key="e"),
        lambda: TableSpec(
            "t", "open", {"a": ColumnSpec("a", "other"), "A": ColumnSpec("A", "other")}, "e"
        ),
        lambda: PolicyContext({}, row_cap=0),
        lambda: PolicyContext({"u": TableSpec("t", "open", {}, entity_key="e")}),
    ],
)
def test_invalid_specs_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_entity_key_is_visible_even_when_not_licensed():
    t = TableSpec("t", "open", {"a": ColumnSpec("a", "other")}, entity_key="E")
    assert [c.name for c in t.visible_columns] == ["a", "E"]
    assert t.column("e") is not None and t.column("e").kind == "entity_key"
    assert ColumnSpec("x", "measure", 0, "1.5").upper == Decimal("1.5")
