"""OpenDP calibration, the noise seam, postprocess on fake engine rows, spec validation (pure)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from sandbox import (
    ColumnSpec,
    EngineError,
    EngineResult,
    NoNoise,
    OpenDPNoise,
    PolicyContext,
    TablePrivacy,
    TableSpec,
    check,
    postprocess,
)
from sandbox.dp import calibrate_laplace, calibrate_threshold, laplace_noise


@pytest.mark.parametrize("kind", ["count", "sum"])
@pytest.mark.parametrize("eps", [Decimal("0.01"), Decimal("0.125"), Decimal("1") / 3, Decimal(5)])
def test_laplace_scale_is_within_the_share_by_opendps_own_map(kind, eps):
    sens = Decimal(12) if kind == "count" else Decimal("100000.5")
    scale, spent = calibrate_laplace(kind, sens, eps)
    assert spent <= eps
    assert spent > eps * Decimal("0.999")  # not wastefully small
    assert scale == pytest.approx(float(sens / eps), rel=1e-6)


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("delta", [Decimal("1e-6"), Decimal("1e-9")])
def test_threshold_is_the_smallest_tau_for_delta(groups, delta):
    import opendp.prelude as dp

    eps = Decimal("0.25")
    scale, tau, spent_eps, spent_delta = calibrate_threshold(groups, eps, delta)
    assert spent_eps <= eps and spent_delta <= delta
    m = dp.m.make_laplace_threshold(
        dp.map_domain(dp.atom_domain(T=dp.String), dp.atom_domain(T=dp.i64)),
        dp.l01inf_distance(dp.absolute_distance(T=dp.i64)),
        scale=scale,
        threshold=tau - 1,
    )
    assert m.map((groups, groups, 1))[1] > float(delta)  # one less would not do
    # the textbook tail bound agrees to within a step
    approx = 1 + scale * math.log(groups / (2 * float(delta)))
    assert abs(tau - approx) <= 2


def test_the_hand_written_sampler_is_gone():
    with pytest.raises(RuntimeError):
        laplace_noise(b"seed", Decimal(1))


def _table(privacy: TablePrivacy | None = None) -> PolicyContext:
    t = TableSpec(
        "t",
        "conditional",
        {
            "d": ColumnSpec("d", "dimension"),
            "x": ColumnSpec("x", "measure", Decimal(0), Decimal(10)),
        },
        entity_key="e",
        privacy=privacy or TablePrivacy(Decimal(1), Decimal("1e-6")),
    )
    return PolicyContext({"t": t}, row_cap=2)


def _engine_rows(q, groups):
    """Fake engine output: one row per (key, distinct entities, rows, clamped sum)."""
    rel = {r.name: r.column for r in q.dp.releases}
    rows = []
    for key, d, n, s in groups:
        row = dict.fromkeys(q.engine_columns)
        row["__sbx_g0"] = key
        row["__sbx_d"] = d
        row[rel.get("COUNT(*)", "-")] = n
        row[rel.get('SUM("t"."x")', "-")] = float(s)
        row[rel.get('COUNT("t"."x")', "-")] = n
        rows.append(tuple(row[c] for c in q.engine_columns))
    return rows


GROUPS = [("a", 50, 60, 300), ("b", 3, 3, 10), ("c", 40, 41, 100), ("d", 45, 45, 0)]


def test_postprocess_thresholds_then_noises_and_strips():
    q = check("SELECT d, COUNT(*), SUM(x), AVG(x) FROM t GROUP BY d", _table())
    res = EngineResult(q.engine_columns, _engine_rows(q, GROUPS))
    exact = postprocess(q, res, noise=NoNoise(min_entities=10))
    assert exact.columns == ("d", "COUNT(*)", "SUM(x)", "AVG(x)")
    # b (3 entities) withheld; rows in key order; row cap 2 -> truncated
    assert exact.rows == [
        ("a", 60, Decimal("300.00"), Decimal("5.00")),
        ("c", 41, Decimal("100.00"), Decimal("2.44")),
    ]
    assert exact.truncated and exact.suppressed_groups is None
    assert exact.epsilon_spent == Decimal(1) and exact.delta_spent == Decimal("1e-6")
    # default NoNoise threshold is tau itself: 33 at this epsilon (1.0 split over the threshold
    # and three releases, weighted toward the threshold); the three big groups reach it, in key
    # order, cut at the row cap
    tau = q.dp.releases[q.dp.threshold].threshold
    assert tau == 33
    assert [r[0] for r in postprocess(q, res, noise=NoNoise()).rows] == ["a", "c"]
    assert postprocess(q, res, noise=NoNoise(min_entities=46)).rows[0][0] == "a"
    with pytest.raises(EngineError):
        postprocess(q, EngineResult(("a",), []))


def test_opendp_noise_is_fresh_and_averages_stay_in_bounds():
    q = check(
        "SELECT d, COUNT(*), SUM(x), AVG(x) FROM t GROUP BY d",
        _table(TablePrivacy(Decimal(10), Decimal("1e-6"))),
    )
    res = EngineResult(q.engine_columns, _engine_rows(q, [("a", 900, 900, 4000)]))
    outs = [postprocess(q, res) for _ in range(5)]
    assert all(o.rows and o.rows[0][0] == "a" for o in outs)
    assert len({o.rows[0][1:3] for o in outs}) > 1  # not seeded: no sticky noise
    for o in outs:
        n, s, avg = o.rows[0][1:]
        assert isinstance(n, int) and n >= 0 and abs(n - 900) < 100
        assert Decimal(0) <= avg <= Decimal(10)
        assert s == s.quantize(Decimal("0.01"))
        kinds = [b.kind if b else None for b in o.error_bounds]
        assert kinds == [None, "count", "sum", "avg"]
        assert o.error_bounds[1].half_width > 0 and o.error_bounds[2].half_width > 0
        assert o.error_bounds[3].half_width is None and len(o.error_bounds[3].per_row) == 1
    assert isinstance(OpenDPNoise(), OpenDPNoise)


def test_error_bounds_match_opendp_accuracy():
    import opendp.prelude as dp

    q = check("SELECT d, COUNT(*), SUM(x) FROM t GROUP BY d", _table())
    res = EngineResult(q.engine_columns, _engine_rows(q, GROUPS))
    out = postprocess(q, res, noise=NoNoise(min_entities=1))
    count, total = q.dp.releases[1], q.dp.releases[2]
    assert out.error_bounds[1].half_width == Decimal(
        repr(dp.discrete_laplacian_scale_to_accuracy(scale=count.scale, alpha=0.05))
    )
    assert out.error_bounds[2].half_width == Decimal(
        repr(dp.laplacian_scale_to_accuracy(scale=total.scale, alpha=0.05))
    )
    assert out.error_bounds[1].as_dict()["confidence"] == "0.95"


class Shift:
    """A fake noise: +`delta` on every value (to see what HAVING and ORDER BY act on)."""

    def __init__(self, delta: int) -> None:
        self.delta = delta

    def threshold(self, counts, release):
        return {k: v for k, v in counts.items() if v >= 1}

    def laplace(self, values, release):
        return [v + self.delta for v in values]


def test_having_order_and_limit_act_on_released_values():
    q = check(
        "SELECT d, SUM(x) AS s FROM t GROUP BY d HAVING SUM(x) > 200 ORDER BY s DESC LIMIT 1",
        _table(),
    )
    res = EngineResult(q.engine_columns, _engine_rows(q, GROUPS))
    assert postprocess(q, res, noise=Shift(0)).rows == [("a", Decimal("300.00"))]
    # exact sums of c (100) and d (0) are below 200; released ones (+250) are not
    shifted = postprocess(q, res, noise=Shift(250)).rows
    assert shifted == [("a", Decimal("550.00"))]
    q2 = check("SELECT d, SUM(x) AS s FROM t GROUP BY d HAVING s > 200 ORDER BY s, d", _table())
    res2 = EngineResult(q2.engine_columns, _engine_rows(q2, GROUPS))
    assert [r[0] for r in postprocess(q2, res2, noise=Shift(250)).rows] == ["d", "b"]


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
        lambda: TableSpec("t", "open", {}, entity_key="e", privacy=TablePrivacy.default()),
        lambda: TableSpec("t", "conditional", {}, entity_key="e", privacy="strict"),  # type: ignore[arg-type]
        lambda: PolicyContext({}, row_cap=0),
        lambda: PolicyContext({"u": TableSpec("t", "open", {}, entity_key="e")}),
        lambda: TablePrivacy(Decimal(0), Decimal("1e-6")),
        lambda: TablePrivacy(Decimal(11), Decimal("1e-6")),
        lambda: TablePrivacy(Decimal(1), Decimal(0)),
        lambda: TablePrivacy(Decimal(1), Decimal("0.01")),
        lambda: TablePrivacy(0.5, Decimal("1e-6")),  # type: ignore[arg-type]
        lambda: TablePrivacy(Decimal(1), Decimal("1e-6"), max_groups_per_entity=0),
        lambda: TablePrivacy(Decimal(1), Decimal("1e-6"), max_rows_per_entity=True),
        lambda: TablePrivacy(Decimal("NaN"), Decimal("1e-6")),
    ],
)
def test_invalid_specs_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_conditional_tables_always_have_privacy():
    t = TableSpec("t", "conditional", {}, entity_key="e")
    assert t.privacy == TablePrivacy.default()
    legacy = TableSpec("t", "conditional", {}, entity_key="e", dp_epsilon_per_query="0.2")
    assert legacy.privacy.epsilon_per_query == Decimal("0.2")
    assert TablePrivacy("1", "1e-7", 2, 24).delta == Decimal("1e-7")
    strictest = TablePrivacy.combine(
        [TablePrivacy(Decimal(1), Decimal("1e-6"), 3, 12), TablePrivacy("0.5", "1e-7", 1, 24)]
    )
    assert strictest == TablePrivacy(Decimal("0.5"), Decimal("1e-7"), 1, 12)


def test_entity_key_is_visible_even_when_not_licensed():
    t = TableSpec("t", "open", {"a": ColumnSpec("a", "other")}, entity_key="E")
    assert [c.name for c in t.visible_columns] == ["a", "E"]
    assert t.column("e") is not None and t.column("e").kind == "entity_key"
    assert ColumnSpec("x", "measure", 0, "1.5").upper == Decimal("1.5")
