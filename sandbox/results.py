"""Post-processing: from engine rows to what the caller may see.

Rows mode (open data): strip hidden columns, apply the row cap.

Aggregate mode (conditional data), in this order, all on released values only:
1. the noisy group selection (with GROUP BY): which candidate groups are released;
2. the noisy COUNTs and SUMs of the released groups; AVG = noisy SUM / noisy COUNT, clamped
   into the declared range;
3. HAVING on the released outputs, ORDER BY (or the group keys' order), OFFSET and LIMIT;
4. the row cap.
No number here depends on withheld groups: there is no suppressed-group count.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .dp import ALPHA, Noise, OpenDPNoise, count_accuracy, split_accuracy, sum_accuracy
from .engine import EngineResult
from .errors import EngineError
from .query import CheckedQuery, DPPlan, HavingTerm, Release, SortTerm

SUM_PLACES = Decimal("0.01")  # noisy sums and averages are released to two decimals


@dataclass(frozen=True)
class ErrorBound:
    """How far a released column may be from the exact (bounded) value.

    `half_width`: the 95% interval half-width of every value of the column (counts, sums),
    from OpenDP's accuracy helpers for the release's scale. For AVG it is None and
    `per_row` holds, per released row, an approximate 95% half-width from the union of the
    SUM's and the COUNT's 97.5% intervals (None where the COUNT's interval reaches zero:
    unbounded). Bounds cover the noise only, not the bias of clamping or of dropping an
    entity's groups beyond the per-entity limits.
    """

    kind: str  # count | sum | avg
    half_width: Decimal | None
    confidence: Decimal = Decimal("0.95")
    per_row: tuple[Decimal | None, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-native form (numbers as strings, like the app's Decimal columns)."""
        return {
            "kind": self.kind,
            "confidence": str(self.confidence),
            "half_width": None if self.half_width is None else str(self.half_width),
            "per_row": None
            if self.per_row is None
            else [None if v is None else str(v) for v in self.per_row],
        }


@dataclass(frozen=True)
class SandboxResult:
    """What a query releases.

    `suppressed_groups` is None in aggregate mode (how many groups were withheld is never
    told) and 0 in rows mode. `error_bounds` has one entry per output column (None for
    dimensions and row values). `epsilon_spent`/`delta_spent` are the query's charge per
    dataset, `epsilon_split` how the epsilon was divided (release name, epsilon).
    """

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    suppressed_groups: int | None
    truncated: bool  # more rows existed than the row cap (or LIMIT) allowed
    error_bounds: tuple[ErrorBound | None, ...] = ()
    epsilon_spent: Decimal = Decimal(0)
    delta_spent: Decimal = Decimal(0)
    epsilon_split: tuple[tuple[str, Decimal], ...] = field(default=())


def postprocess(
    checked: CheckedQuery, result: EngineResult, *, noise: Noise | None = None
) -> SandboxResult:
    """Release the engine's rows for `checked` (see the module doc).

    `noise` defaults to OpenDP's measurements; tests may pass `sandbox.dp.NoNoise()`.
    Raises EngineError if the engine's columns do not match the query.
    """
    if tuple(result.columns) != checked.engine_columns:
        raise EngineError("the engine returned unexpected columns", kind="engine")
    if checked.mode != "aggregate":
        width = len(checked.output_columns)
        truncated = result.truncated or len(result.rows) > checked.row_cap
        rows = [tuple(r[:width]) for r in result.rows[: checked.row_cap]]
        bounds = tuple(None for _ in checked.output_columns)
        return SandboxResult(checked.output_columns, rows, 0, truncated, bounds)
    assert checked.dp is not None
    return _release(checked, checked.dp, result.rows, noise or OpenDPNoise())


def _release(
    checked: CheckedQuery, plan: DPPlan, engine_rows: Sequence[Sequence[Any]], noise: Noise
) -> SandboxResult:
    index = {name: i for i, name in enumerate(checked.engine_columns)}
    rows = list(engine_rows)
    distinct: list[int | None] = [None] * len(rows)
    if plan.threshold is not None:
        th = plan.releases[plan.threshold]
        col = index[th.column]
        counts = {str(i): int(r[col] or 0) for i, r in enumerate(rows)}
        kept = noise.threshold(counts, th)
        chosen = sorted(int(k) for k in kept)
        distinct = [int(kept[str(i)]) for i in chosen]
        rows = [rows[i] for i in chosen]
    noisy: dict[int, list[Any]] = {}
    for j, rel in enumerate(plan.releases):
        if rel.kind == "threshold" or not rows:
            continue
        col = index[rel.column]
        values = [r[col] if r[col] is not None else 0 for r in rows]
        noisy[j] = noise.laplace(values, rel)

    out: list[tuple[Any, ...]] = []
    avg_rows: dict[int, list[Decimal | None]] = {}
    for i, row in enumerate(rows):
        values: list[Any] = []
        for k, o in enumerate(plan.outputs):
            if o.kind == "dimension":
                values.append(row[index[o.column or ""]])
            elif o.kind == "distinct":
                values.append(
                    max(0, int(noisy[o.release][i])) if o.release is not None else distinct[i]
                )
            elif o.kind == "count":
                values.append(max(0, int(noisy[o.release][i])))  # type: ignore[index]
            elif o.kind == "sum":
                values.append(_money(noisy[o.release][i]))  # type: ignore[index]
            else:
                avg, half = _avg(plan, o.release, o.count_release, noisy, i, o.lower, o.upper)
                values.append(avg)
                avg_rows.setdefault(k, []).append(half)
        keys = [row[index[c]] for c in plan.group_columns]
        out.append((tuple(values), tuple(keys)))  # type: ignore[arg-type]

    pairs: list[tuple[tuple[Any, ...], tuple[Any, ...], int]] = [
        (v, k, i)
        for i, (v, k) in enumerate(out)  # type: ignore[misc]
    ]
    pairs = [p for p in pairs if all(_having(h, p[0][h.output]) for h in plan.having)]
    pairs = _sort(pairs, plan.order, {c: n for n, c in enumerate(plan.group_columns)})
    if plan.offset:
        pairs = pairs[plan.offset :]
    truncated = False
    if plan.limit is not None and len(pairs) > plan.limit:
        pairs = pairs[: plan.limit]
    if len(pairs) > checked.row_cap:
        pairs, truncated = pairs[: checked.row_cap], True

    bounds: list[ErrorBound | None] = []
    for k, o in enumerate(plan.outputs):
        if o.kind == "dimension":
            bounds.append(None)
        elif o.kind == "avg":
            per = avg_rows.get(k, [])
            bounds.append(ErrorBound("avg", None, per_row=tuple(per[i] for _, _, i in pairs)))
        else:
            rel = plan.releases[o.release if o.release is not None else plan.threshold]  # type: ignore[index]
            half = sum_accuracy(rel.scale) if rel.kind == "sum" else count_accuracy(rel.scale)
            bounds.append(ErrorBound("sum" if rel.kind == "sum" else "count", half))
    return SandboxResult(
        checked.output_columns,
        [v for v, _, _ in pairs],
        None,
        truncated,
        tuple(bounds),
        plan.epsilon,
        plan.delta,
        plan.epsilon_split,
    )


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(SUM_PLACES, ROUND_HALF_EVEN)


def _avg(
    plan: DPPlan,
    sum_idx: int | None,
    count_idx: int | None,
    noisy: dict[int, list[Any]],
    i: int,
    lower: Decimal | None,
    upper: Decimal | None,
) -> tuple[Decimal | None, Decimal | None]:
    """Noisy SUM / noisy COUNT clamped into [lower, upper], and its approximate 95%
    half-width (union of the two 97.5% intervals); (None, None) if the noisy count < 1."""
    assert sum_idx is not None and count_idx is not None and lower is not None
    assert upper is not None
    total = float(noisy[sum_idx][i])
    count = float(noisy[count_idx][i])
    if count < 1:
        return None, None
    lo, hi = float(lower), float(upper)
    avg = min(max(total / count, lo), hi)
    s_rel: Release = plan.releases[sum_idx]
    c_rel: Release = plan.releases[count_idx]
    a = split_accuracy("sum", s_rel.scale, ALPHA / 2)
    b = split_accuracy("count", c_rel.scale, ALPHA / 2)
    half: Decimal | None = None
    if count - b >= 1:
        corners = [
            min(max(s / c, lo), hi) for s in (total - a, total + a) for c in (count - b, count + b)
        ]
        half = Decimal(repr(max(abs(x - avg) for x in corners))).quantize(
            SUM_PLACES, ROUND_HALF_EVEN
        )
    return Decimal(repr(avg)).quantize(SUM_PLACES, ROUND_HALF_EVEN), half


def _having(term: HavingTerm, value: Any) -> bool:
    if value is None:
        return False  # SQL: a comparison with NULL is not true
    v = Decimal(value) if not isinstance(value, Decimal) else value
    a = term.values[0]
    if term.op == "=":
        return v == a
    if term.op == "<>":
        return v != a
    if term.op == "<":
        return v < a
    if term.op == "<=":
        return v <= a
    if term.op == ">":
        return v > a
    if term.op == ">=":
        return v >= a
    return a <= v <= term.values[1]  # between


def _sort(
    pairs: list[tuple[tuple[Any, ...], tuple[Any, ...], int]],
    order: Sequence[SortTerm],
    key_pos: dict[str, int],
) -> list[tuple[tuple[Any, ...], tuple[Any, ...], int]]:
    """ORDER BY on released values (DuckDB's default: NULLS LAST). Without ORDER BY the rows
    come in the order of their group keys, never in an order that depends on exact values."""
    if not order:
        return sorted(pairs, key=functools.cmp_to_key(lambda x, y: _cmp_keys(x[1], y[1])))
    result = list(pairs)
    for term in reversed(order):  # stable sorts, last key first

        def value(p: tuple, term: SortTerm = term) -> Any:
            if term.output is not None:
                return p[0][term.output]
            return p[1][key_pos[term.column or ""]]

        present = [p for p in result if value(p) is not None]
        missing = [p for p in result if value(p) is None]
        present.sort(
            key=functools.cmp_to_key(lambda x, y: _cmp(value(x), value(y))), reverse=term.desc
        )
        result = missing + present if term.nulls_first else present + missing
    return result


def _cmp(a: Any, b: Any) -> int:
    try:
        return (a > b) - (a < b)
    except TypeError:  # values of different types in one column: compare their text
        return (repr(a) > repr(b)) - (repr(a) < repr(b))


def _cmp_keys(a: Sequence[Any], b: Sequence[Any]) -> int:
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            if x is None and y is None:
                continue
            return 1 if x is None else -1
        c = _cmp(x, y)
        if c:
            return c
    return 0
