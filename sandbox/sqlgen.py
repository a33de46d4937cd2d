"""Engine SQL and canonical text, generated from checked expressions.

Only sqlglot-rendered fragments of checked trees, our own quoted names and integers go into
the SQL built here; nothing is copied from the caller's text.

Rows mode (open data) is one SELECT with the row cap as LIMIT. Aggregate mode (conditional
data, entity-level differential privacy) bounds each entity's contribution in SQL and returns
every candidate group; see `aggregate_query`. Noise, the group threshold, HAVING, ORDER BY and
LIMIT of aggregate mode are post-processing (`sandbox.results`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from market.crypto import canonical_json, sha256_hex

from .dp import calibrate_laplace, calibrate_threshold
from .query import (
    DISTINCT_COLUMN,
    ENTITY_HASH_COLUMN,
    MAX_CANDIDATE_GROUPS,
    PIVOT_INDEX,
    ROLLUP_COUNT_PREFIX,
    ROLLUP_ROWS,
    ROLLUP_SUM_PREFIX,
    CheckedQuery,
    DPPlan,
    HavingTerm,
    OutputColumn,
    OutputPlan,
    PivotPlan,
    Release,
    RollupPlan,
    SortTerm,
    ViewSpec,
    pivot_column,
)
from .specs import PolicyContext, TablePrivacy, TableSpec

DIALECT = "duckdb"
_DIALECT = Dialect.get_or_raise(DIALECT)


def render(node: exp.Expression) -> str:
    """SQL text of a checked tree, every identifier quoted.

    copy=False: generation does not modify the tree, and copying it dominated check() time.
    """
    return _DIALECT.generate(node, copy=False, identify=True)


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def number(value: Decimal | int) -> exp.Expression:
    text = format(Decimal(value), "f")
    if text.startswith("-"):
        return exp.Neg(this=exp.Literal.number(text[1:]))
    return exp.Literal.number(text)


def clamp(col: exp.Expression, lower: Decimal, upper: Decimal) -> exp.Expression:
    """CASE WHEN c < lo THEN lo WHEN c > hi THEN hi ELSE c END (NULL stays NULL).

    Not LEAST/GREATEST: DuckDB's GREATEST(NULL, 0) is 0, which would turn missing values into
    the lower bound and change AVG.
    """
    return exp.Case(
        ifs=[
            exp.If(this=exp.LT(this=col.copy(), expression=number(lower)), true=number(lower)),
            exp.If(this=exp.GT(this=col.copy(), expression=number(upper)), true=number(upper)),
        ],
        default=col.copy(),
    )


@dataclass(frozen=True)
class OrderTerm:
    """An ORDER BY term: an output (`index`) or a checked expression (`node`)."""

    node: exp.Expression | None
    index: int | None
    term: exp.Ordered  # the caller's term, for ASC/DESC and NULLS FIRST/LAST
    canonical: str

    def render_on(self, target: exp.Expression) -> str:
        return render(
            exp.Ordered(
                this=target,
                desc=self.term.args.get("desc"),
                nulls_first=self.term.args.get("nulls_first"),
            )
        )


@dataclass(frozen=True)
class AggOutput:
    """One output of an aggregate-mode query, as the policy accepted it.

    `kind` dimension: `key` is the canonical text of its GROUP BY key. count: `column` is the
    counted column (None for COUNT(*)). distinct: COUNT(DISTINCT entity key). sum/avg:
    `column` is the measure and [lower, upper] its declared per-entity range.
    """

    name: str
    kind: str  # dimension | count | distinct | sum | avg
    canonical: str
    key: str | None = None
    column: exp.Expression | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None


@dataclass(frozen=True)
class HavingSpec:
    """A HAVING conjunct on output `output` (checked: an aggregate output vs literals)."""

    output: int
    op: str
    values: tuple[Decimal, ...]
    canonical: str


@dataclass(frozen=True)
class SortSpec:
    """An aggregate-mode ORDER BY term: an output, or a GROUP BY key (canonical `key`)."""

    output: int | None
    key: str | None
    term: exp.Ordered
    canonical: str


def _unique_sorted(nodes: Sequence[exp.Expression]) -> list[tuple[str, exp.Expression]]:
    return sorted({render(n): n for n in nodes}.items())


def _from(tables: Sequence[TableSpec], joins: Sequence[tuple[exp.Expression, exp.Expression]]):
    text = q(tables[0].slug)
    for table, (left, right) in zip(tables[1:], joins, strict=True):
        text += f" JOIN {q(table.slug)} ON {render(left)} = {render(right)}"
    return text


def _canonical_from(tables: Sequence[TableSpec]) -> str:
    # Every join is an equality of entity keys, so all keys are equal: join each table to the
    # first in slug order and the text no longer depends on how the caller wrote the joins.
    ordered = sorted(tables, key=lambda t: t.slug.lower())
    first = ordered[0]
    text = q(first.slug)
    for t in ordered[1:]:
        text += (
            f" JOIN {q(t.slug)} ON {q(first.slug)}.{q(first.entity_key_spec.name)}"
            f" = {q(t.slug)}.{q(t.entity_key_spec.name)}"
        )
    return text


def _conj(nodes: Sequence[exp.Expression]) -> str:
    return " AND ".join(f"({text})" for text, _ in _unique_sorted(nodes))


def _clauses(where: str, group: Sequence[str] = (), having: str = "") -> str:
    text = ""
    if where:
        text += f" WHERE {where}"
    if group:
        text += " GROUP BY " + ", ".join(group)
    if having:
        text += f" HAVING {having}"
    return text


def _limits(limit: int | None, offset: int | None) -> str:
    text = f" LIMIT {limit}" if limit is not None else ""
    if offset:
        text += f" OFFSET {offset}"
    return text


def _views(tables: Sequence[TableSpec]) -> tuple[ViewSpec, ...]:
    return tuple(
        ViewSpec(t.slug, tuple(c.name for c in t.visible_columns), t.entity_key_spec.name)
        for t in tables
    )


def rows_query(
    *,
    ctx: PolicyContext,
    scope_tables: Sequence[TableSpec],
    joins: Sequence[tuple[exp.Expression, exp.Expression]],
    outputs: Sequence[tuple[str, exp.Expression]],
    where: Sequence[exp.Expression],
    group: Sequence[exp.Expression],
    having: Sequence[exp.Expression],
    order: Sequence[OrderTerm],
    limit: int | None,
    offset: int | None,
    distinct: bool,
) -> CheckedQuery:
    """Open data: one SELECT, the row cap as LIMIT (one extra row detects truncation)."""
    cap = ctx.row_cap
    names = [f"__sbx_c{i}" for i in range(len(outputs))]
    select = ", ".join(
        f"{render(node)} AS {q(n)}" for (_, node), n in zip(outputs, names, strict=True)
    )
    group_text = [text for text, _ in _unique_sorted(group)]
    body = _clauses(_conj(where), group_text, _conj(having))
    order_sql = [
        t.render_on(exp.column(names[t.index], quoted=True))
        if t.index is not None
        else t.render_on(t.node.copy())  # type: ignore[union-attr]
        for t in order
    ]
    limit_eff = cap + 1 if limit is None else min(limit, cap + 1)
    distinct_sql = "DISTINCT " if distinct else ""
    sql = f"SELECT {distinct_sql}{select} FROM {_from(scope_tables, joins)}{body}"
    if order_sql:
        sql += " ORDER BY " + ", ".join(order_sql)
    sql += _limits(limit_eff, offset)

    canonical = f"SELECT {distinct_sql}" + ", ".join(render(node) for _, node in outputs)
    canonical += f" FROM {_canonical_from(scope_tables)}{body}"
    if order:
        canonical += " ORDER BY " + ", ".join(_order_canonical(t) for t in order)
    canonical += _limits(limit, offset)
    return CheckedQuery(
        engine_sql=sql,
        canonical=canonical,
        mode="rows",
        output_columns=tuple(name for name, _ in outputs),
        outputs=tuple(OutputColumn(name, "value") for name, _ in outputs),
        engine_columns=tuple(names),
        tables_used=tuple(t.slug for t in scope_tables),
        views=_views(scope_tables),
        row_cap=cap,
        engine_row_cap=cap,
        epsilon_cost=Decimal(0),
        delta_cost=Decimal(0),
        charged_tables=(),
        release_key=release_key(canonical, cap, None),
        dp=None,
    )


def _order_canonical(term: OrderTerm) -> str:
    return _order_canonical_text(term.canonical, term.term)


def _order_canonical_text(canonical: str, term: exp.Ordered) -> str:
    desc = " DESC" if term.args.get("desc") else ""
    nulls = term.args.get("nulls_first")
    return f"{canonical}{desc}{' NULLS FIRST' if nulls else ''}"


def total(node: exp.Expression) -> exp.Expression:
    """A row-level expression that cannot fail on any row: every CAST becomes TRY_CAST and the
    whole is wrapped in TRY(), so an error (overflow, bad conversion, division by zero)
    becomes NULL instead of stopping the query. A bare column cannot fail and stays as is, so
    that DuckDB can still push simple filters into the scan."""
    if isinstance(node, exp.Column):
        return node.copy()

    def try_cast(n: exp.Expression) -> exp.Expression:
        if type(n) is exp.Cast:
            return exp.TryCast(this=n.this, to=n.args["to"])
        return n

    return exp.Try(this=node.copy().transform(try_cast, copy=False))


def _measure(col: exp.Expression) -> str | None:
    """The column name if `col` is a bare column (a rollup measure candidate), else None."""
    return col.name if isinstance(col, exp.Column) and not isinstance(col.this, exp.Star) else None


def _rollup_count(col: exp.Expression) -> str | None:
    name = _measure(col)
    return None if name is None else f"SUM({q(ROLLUP_COUNT_PREFIX + name)})::BIGINT"


def _rollup_sum(col: exp.Expression) -> str | None:
    # The rollup holds each cell's exact integer SUM, and the engine marks a column as a
    # measure only if every entity's SUM(ABS(value)) is below 2^53: every partial sum of the
    # raw path's SUM(DOUBLE) is then an exact double, so both give the same number.
    name = _measure(col)
    return None if name is None else f"TRY_CAST(SUM({q(ROLLUP_SUM_PREFIX + name)}) AS DOUBLE)"


def _releases(
    outputs: Sequence[AggOutput], privacy: TablePrivacy, grouped: bool
) -> tuple[
    list[Release],
    list[OutputPlan],
    list[tuple[str, str, Callable[[str], str], str | None, tuple[str, str | None]]],
    int | None,
]:
    """The releases of an aggregate query, its output plans and the per-entity columns.

    Returns (releases, plans, pre-aggregate columns (name, per-entity SQL, final SQL, the
    per-entity SQL over the rollup or None, (per-entity kind, measure) for the pivot: see
    `PivotPlan.columns`), index of the threshold release). Sensitivities
    follow the contribution bounds; the epsilon is split by `split_epsilon` (weighted toward
    the group threshold).
    """
    g = privacy.max_groups_per_entity if grouped else 1
    r = privacy.max_rows_per_entity
    # (name, kind, per-entity SQL, final SQL, sensitivity, rollup SQL, pivot kind and measure),
    # deduplicated by name.
    wanted: dict[str, tuple[str, str, str, Decimal, str | None, tuple[str, str | None]]] = {}
    plans_src: list[tuple[AggOutput, tuple[str, ...]]] = []

    def need(
        name: str,
        kind: str,
        per_entity: str,
        final: str,
        sens: Decimal,
        rollup: str | None,
        pivot: tuple[str, str | None],
    ) -> str:
        wanted.setdefault(name, (kind, per_entity, final, sens, rollup, pivot))
        return name

    def count_of(col: exp.Expression) -> str:  # COUNT(col): its non-NULL rows
        return need(
            render(exp.Count(this=col.copy())),
            "count",
            f"COUNT({render(col)})",
            "",
            Decimal(g * r),
            _rollup_count(col),
            ("count", _measure(col)),
        )

    for o in outputs:
        if o.kind == "dimension" or (o.kind == "distinct" and grouped):
            plans_src.append((o, ()))
            continue
        if o.kind == "distinct":
            plans_src.append(
                (o, (need("COUNT(DISTINCT entity)", "count", "", "", Decimal(1), "", ("none", None)),))
            )
            continue
        col = o.column
        if o.kind == "count":
            if col is None:
                name = need(
                    "COUNT(*)",
                    "count",
                    "COUNT(*)",
                    "",
                    Decimal(g * r),
                    f"SUM({q(ROLLUP_ROWS)})::BIGINT",
                    ("rows", None),
                )
            else:
                name = count_of(col)
            plans_src.append((o, (name,)))
            continue
        assert col is not None and o.lower is not None and o.upper is not None
        bound = max(abs(o.lower), abs(o.upper))
        sname = need(
            render(exp.Sum(this=col.copy())),
            "sum",
            f"SUM(TRY_CAST({render(col)} AS DOUBLE))",
            f"{o.lower}|{o.upper}",
            g * bound,
            _rollup_sum(col),
            ("sum", _measure(col)),
        )
        if o.kind == "sum":
            plans_src.append((o, (sname,)))
        else:
            plans_src.append((o, (sname, count_of(col))))

    threshold_share, share = split_epsilon(
        privacy.epsilon_per_query, len(wanted), grouped, g, privacy.delta
    )
    releases: list[Release] = []
    index: dict[str, int] = {}
    threshold_idx = None
    if grouped:
        assert threshold_share is not None
        scale, tau, eps, delta = calibrate_threshold(g, threshold_share, privacy.delta)
        threshold_idx = 0
        releases.append(
            Release("threshold", "threshold", DISTINCT_COLUMN, Decimal(g), scale, eps, delta, tau)
        )
    pre: list[tuple[str, str, Callable[[str], str], str | None, tuple[str, str | None]]] = []
    for name, (kind, per_entity, final, sens, rollup, pivot) in wanted.items():
        j = len(releases)
        column = f"__sbx_m{j}"
        scale, eps = calibrate_laplace(kind, sens, share)
        releases.append(Release(name, kind, column, sens, scale, eps))  # type: ignore[arg-type]
        index[name] = j
        if name == "COUNT(DISTINCT entity)":
            pre.append((column, "", lambda _p: "COUNT(*)", "", pivot))
        elif kind == "count":
            pre.append(
                (
                    column,
                    per_entity,
                    lambda p, r=r: f"COALESCE(SUM(LEAST({p}, {r})), 0)",
                    rollup,
                    pivot,
                )
            )
        else:
            lo, hi = (render(number(Decimal(x))) for x in final.split("|"))
            pre.append(
                (
                    column,
                    per_entity,
                    lambda p, lo=lo, hi=hi: (
                        f"COALESCE(SUM(CASE WHEN {p} < {lo} THEN {lo} WHEN {p} > {hi} "
                        f"THEN {hi} ELSE {p} END), 0)::DOUBLE"
                    ),
                    rollup,
                    pivot,
                )
            )
    plans: list[OutputPlan] = []
    for o, names in plans_src:
        if o.kind == "dimension":
            plans.append(OutputPlan("dimension"))  # column filled in by the caller
        elif o.kind == "distinct":
            plans.append(OutputPlan("distinct", release=index[names[0]] if names else None))
        elif o.kind in ("count", "sum"):
            plans.append(OutputPlan(o.kind, release=index[names[0]]))  # type: ignore[arg-type]
        else:
            plans.append(
                OutputPlan(
                    "avg",
                    release=index[names[0]],
                    count_release=index[names[1]],
                    lower=o.lower,
                    upper=o.upper,
                )
            )
    return releases, plans, pre, threshold_idx


_SPLIT_PLACES = Decimal("1e-12")


def split_epsilon(
    epsilon: Decimal, values: int, grouped: bool, groups_per_entity: int, delta: Decimal
) -> tuple[Decimal | None, Decimal]:
    """(threshold's epsilon or None, each value release's epsilon) for one query.

    Without GROUP BY there is no threshold: `values` equal shares. With it, the shares
    minimize the sum of the releases' error coefficients per unit of sensitivity, sum_j c_j /
    eps_j subject to sum_j eps_j = epsilon; by Lagrange, eps_j is proportional to sqrt(c_j):

    - the threshold: tau - 1 = (g / eps_t) * ln(g / (2 delta)), so c_t = ln(g / (2 delta))
      (about 13.1 at g = 1, delta = 1e-6): every entity of tau is a group size withheld;
    - a COUNT or SUM: its 95% half-width is (sensitivity / eps_v) * ln(1 / 0.05), so
      c_v = ln 20 (about 3.0).

    eps_t = epsilon * sqrt(c_t) / (sqrt(c_t) + values * sqrt(c_v)). Shares are rounded
    down (12 places), so that they never sum to more than `epsilon`; each release is then
    calibrated by OpenDP's own privacy map to stay within its share (`sandbox.dp`).
    """
    if not grouped:
        if values == 0:
            return None, epsilon
        return None, (epsilon / values).quantize(_SPLIT_PLACES, rounding="ROUND_FLOOR")
    if values == 0:
        return epsilon, epsilon
    c_t = (Decimal(groups_per_entity) / (2 * delta)).ln()
    c_v = Decimal(20).ln()
    w_t, w_v = c_t.sqrt(), c_v.sqrt()
    total = w_t + values * w_v
    eps_t = (epsilon * w_t / total).quantize(_SPLIT_PLACES, rounding="ROUND_FLOOR")
    eps_v = (epsilon * w_v / total).quantize(_SPLIT_PLACES, rounding="ROUND_FLOOR")
    return eps_t, eps_v


def aggregate_query(
    *,
    ctx: PolicyContext,
    scope_tables: Sequence[TableSpec],
    joins: Sequence[tuple[exp.Expression, exp.Expression]],
    entity_hash: exp.Expression,
    outputs: Sequence[AggOutput],
    keys: Mapping[str, exp.Expression],
    where: Sequence[exp.Expression],
    having: Sequence[HavingSpec],
    order: Sequence[SortSpec],
    limit: int | None,
    offset: int | None,
    privacy: TablePrivacy,
    charged_tables: Sequence[str],
) -> CheckedQuery:
    """Conditional data: bound each entity's contribution in SQL; noise comes afterwards.

    The engine SQL (all names start with __sbx_):

        p  per (entity, group): the entity-key hash, the group keys, and the entity's own
           row count, non-NULL counts and SUM totals over its rows of that group
        b  at most max_groups_per_entity rows of p per entity, chosen by a hash of (entity,
           group) (ROW_NUMBER over a window: generated here, never from caller text); with
           one group per entity, a MIN(hash) first pass and a join instead (m)
        then per group: distinct entities d, SUM(LEAST(rows, max_rows)) per COUNT, the SUM
           of the entity totals clamped into the declared range per SUM; every candidate
           group, most entities first (see MAX_CANDIDATE_GROUPS).

    Every row-level expression is made total (`total`): no data-dependent runtime error.
    """
    key_items = sorted(keys.items())
    grouped = bool(key_items)
    key_names = [f"__sbx_g{i}" for i in range(len(key_items))]
    releases, plans, pre, threshold_idx = _releases(outputs, privacy, grouped)
    key_col = {canon: name for (canon, _), name in zip(key_items, key_names, strict=True)}
    plans = [
        OutputPlan("dimension", column=key_col[o.key or ""]) if o.kind == "dimension" else p
        for o, p in zip(outputs, plans, strict=True)
    ]

    ehash = render(entity_hash)
    key_sql = [render(total(node)) for _, node in key_items]
    where_sql = " AND ".join(f"{render(total(node))}" for _, node in _unique_sorted(where))
    from_sql = _from(scope_tables, joins)
    sql = _bounded_sql(
        ehash,
        key_sql,
        key_names,
        [(c, pe, f) for c, pe, f, _, _ in pre],
        where_sql,
        from_sql,
        grouped,
        privacy.max_groups_per_entity,
    )
    rollup = _rollup_plan(
        scope_tables,
        joins,
        key_items,
        where,
        outputs,
        pre,
        ehash,
        key_sql,
        key_names,
        where_sql,
        grouped,
        privacy.max_groups_per_entity,
    )
    engine_columns = tuple(key_names + [DISTINCT_COLUMN] + [c for c, _, _, _, _ in pre])

    canonical_from = _canonical_from(scope_tables)
    canon_group = [c for c, _ in key_items]
    canonical = (
        "SELECT "
        + ", ".join(o.canonical for o in outputs)
        + f" FROM {canonical_from}"
        + _clauses(_conj(where), canon_group)
    )
    if having:
        canonical += " HAVING " + " AND ".join(sorted({h.canonical for h in having}))
    if order:
        canonical += " ORDER BY " + ", ".join(
            _order_canonical_text(s.canonical, s.term) for s in order
        )
    canonical += _limits(limit, offset)

    sort_terms = tuple(
        SortTerm(
            output=s.output,
            column=key_col[s.key] if s.key is not None else None,
            desc=bool(s.term.args.get("desc")),
            nulls_first=bool(s.term.args.get("nulls_first")),
        )
        for s in order
    )
    delta = privacy.delta if grouped else Decimal(0)
    plan = DPPlan(
        epsilon=privacy.epsilon_per_query,
        delta=delta,
        max_groups_per_entity=privacy.max_groups_per_entity,
        max_rows_per_entity=privacy.max_rows_per_entity,
        releases=tuple(releases),
        outputs=tuple(plans),
        group_columns=tuple(key_names),
        threshold=threshold_idx,
        having=tuple(HavingTerm(h.output, h.op, h.values) for h in having),  # type: ignore[arg-type]
        order=sort_terms,
        limit=limit,
        offset=offset,
    )
    out_cols = []
    for o, p in zip(outputs, plans, strict=True):
        sens = None
        if p.kind in ("count", "sum") or (p.kind == "distinct" and p.release is not None):
            sens = releases[p.release].sensitivity  # type: ignore[index]
        elif p.kind == "distinct":
            sens = releases[threshold_idx].sensitivity  # type: ignore[index]
        kind = "count" if o.kind == "distinct" else o.kind
        out_cols.append(OutputColumn(o.name, kind, sens))  # type: ignore[arg-type]
    return CheckedQuery(
        engine_sql=sql,
        canonical=canonical,
        mode="aggregate",
        output_columns=tuple(o.name for o in outputs),
        outputs=tuple(out_cols),
        engine_columns=engine_columns,
        tables_used=tuple(t.slug for t in scope_tables),
        views=_views(scope_tables),
        row_cap=ctx.row_cap,
        engine_row_cap=MAX_CANDIDATE_GROUPS,
        epsilon_cost=privacy.epsilon_per_query,
        delta_cost=delta,
        charged_tables=tuple(charged_tables),
        release_key=release_key(canonical, ctx.row_cap, plan),
        dp=plan,
        rollup=rollup,
    )


def _bounded_sql(
    ehash: str,
    key_sql: Sequence[str],
    key_names: Sequence[str],
    pre: Sequence[tuple[str, str, Callable[[str], str]]],
    where_sql: str,
    from_sql: str,
    grouped: bool,
    max_groups: int,
    keys_constant: bool = False,
) -> str:
    """The bounding SQL (see `aggregate_query`) over `from_sql`, each entity's per-group
    columns computed by the per-entity SQL of `pre`.

    `keys_constant`: the caller knows that every group key has one value per entity in the
    data (all its columns do), so each entity is in exactly one group and no group choice is
    needed: the per-(entity, group) aggregate is the whole bounding, whatever the limit.
    """
    one_group = grouped and max_groups == 1 and not keys_constant
    p_cols = [f"{ehash} AS {q('__sbx_e')}"]
    # With one group per entity (the default) each entity keeps the group whose hash of
    # (entity, key) is smallest: a first pass finds that hash per entity, the second keeps
    # only those rows (faster than aggregating every (entity, group) pair and windowing).
    # A 64-bit collision can only merge two groups of one entity into one.
    p_cols += [
        f"any_value({k}) AS {q(n)}" if one_group else f"{k} AS {q(n)}"
        for k, n in zip(key_sql, key_names, strict=True)
    ]
    final_cols = [q(n) for n in key_names] + [f"COUNT(*) AS {q(DISTINCT_COLUMN)}"]
    for column, per_entity, final in pre:
        if per_entity:
            p_name = f"__sbx_p{column[len('__sbx_m') :]}"
            p_cols.append(f"{per_entity} AS {q(p_name)}")
            final_cols.append(f"{final(q(p_name))} AS {q(column)}")
        else:
            final_cols.append(f"{final('')} AS {q(column)}")
    where_clause = f" WHERE {where_sql}" if where_sql else ""
    tail = _final_tail(key_names)
    if one_group:
        pair_hash = f"hash({', '.join([ehash, *key_sql])})"
        m_sql = (
            f"SELECT {ehash} AS {q('__sbx_e')}, MIN({pair_hash}) AS {q('__sbx_h')} "
            f"FROM {from_sql}{where_clause} GROUP BY 1"
        )
        p_sql = (
            f"SELECT {', '.join(p_cols)} FROM {from_sql} JOIN {q('__sbx_m')} ON "
            f"{ehash} = {q('__sbx_m')}.{q('__sbx_e')} AND {pair_hash} = "
            f"{q('__sbx_m')}.{q('__sbx_h')}{where_clause} GROUP BY 1"
        )
        return (
            f"WITH {q('__sbx_m')} AS ({m_sql}), {q('__sbx_p')} AS ({p_sql}) "
            f"SELECT {', '.join(final_cols)} FROM {q('__sbx_p')}{tail}"
        )
    if grouped and keys_constant:
        p_sql = f"SELECT {', '.join(p_cols)} FROM {from_sql}{where_clause} GROUP BY ALL"
        return (
            f"WITH {q('__sbx_p')} AS ({p_sql}) "
            f"SELECT {', '.join(final_cols)} FROM {q('__sbx_p')}{tail}"
        )
    if grouped:
        p_sql = f"SELECT {', '.join(p_cols)} FROM {from_sql}{where_clause} GROUP BY ALL"
        hashed = ", ".join(q(n) for n in ["__sbx_e", *key_names])
        b_sql = (
            f"SELECT * FROM {q('__sbx_p')} QUALIFY ROW_NUMBER() OVER (PARTITION BY "
            f"{q('__sbx_e')} ORDER BY hash({hashed})) <= {max_groups}"
        )
        return (
            f"WITH {q('__sbx_p')} AS ({p_sql}), {q('__sbx_b')} AS ({b_sql}) "
            f"SELECT {', '.join(final_cols)} FROM {q('__sbx_b')}{tail}"
        )
    p_sql = f"SELECT {', '.join(p_cols)} FROM {from_sql}{where_clause} GROUP BY 1"
    return f"WITH {q('__sbx_p')} AS ({p_sql}) SELECT {', '.join(final_cols)} FROM {q('__sbx_p')}"


def _rollup_plan(
    scope_tables: Sequence[TableSpec],
    joins: Sequence[tuple[exp.Expression, exp.Expression]],
    key_items: Sequence[tuple[str, exp.Expression]],
    where: Sequence[exp.Expression],
    outputs: Sequence[AggOutput],
    pre: Sequence[tuple[str, str, Callable[[str], str], str | None, tuple[str, str | None]]],
    ehash: str,
    key_sql: Sequence[str],
    key_names: Sequence[str],
    where_sql: str,
    grouped: bool,
    max_groups: int,
) -> RollupPlan | None:
    """The same bounding over the per-entity rollup of the one table, or None.

    Equivalent by construction when the engine finds every referenced column in the rollup:
    a rollup row is a cell (entity hash, dimension values) holding the cell's row count,
    non-NULL counts and exact sums. Every group key and WHERE term reads dimensions only, so
    it has one value per cell: the rows a WHERE keeps are whole cells, an entity's (entity,
    group) pairs and their hashes are the same, and its per-group COUNT(*), COUNT(x) and SUM(x)
    are sums over its cells. This relies on the policy's scalar functions being pure and
    row-local (`sandbox.allowlist`: no randomness, no window). Everything after the
    per-entity step is the same SQL. Joins, and keys, WHERE terms or aggregates over anything
    else, keep the raw path.
    """
    if joins or len(scope_tables) != 1:
        return None
    slug = scope_tables[0].slug
    dims: set[str] = set()
    key_dims: set[str] = set()
    reads: dict[int, set[str]] = {}  # the dimensions each key and WHERE node reads
    for i, node in enumerate([n for _, n in key_items] + list(where)):
        reads[id(node)] = set()
        for sub in node.walk():
            # Pure row-local functions only (the policy's allowlist): a value per cell.
            if isinstance(
                sub, (exp.Select, exp.Subquery, exp.Star, exp.Placeholder, exp.Window, exp.AggFunc)
            ):
                return None
            if isinstance(sub, exp.Column):
                if sub.table and sub.table != slug:
                    return None
                if not sub.name or sub.name.startswith("__sbx"):
                    return None
                dims.add(sub.name)
                reads[id(node)].add(sub.name)
                if i < len(key_items):
                    key_dims.add(sub.name)
    measures: set[str] = set()
    for o in outputs:
        if o.kind in ("count", "sum", "avg") and o.column is not None:
            name = _measure(o.column)
            if name is None or (o.column.table and o.column.table != slug):
                return None
            measures.add(name)
    if any(rollup is None for _, _, _, rollup, _ in pre):
        return None
    rollup_pre = [(c, r or "", f) for c, _, f, r, _ in pre]
    sql = _bounded_sql(
        ehash, key_sql, key_names, rollup_pre, where_sql, q(slug), grouped, max_groups
    )
    constant_sql = _bounded_sql(
        ehash, key_sql, key_names, rollup_pre, where_sql, q(slug), grouped, max_groups, True
    )
    p_names = [f"__sbx_p{c[len('__sbx_m') :]}" for c, _, _, _, _ in pre]
    pivot = PivotPlan(
        keys=tuple(zip(key_sql, key_names, strict=True)),
        terms=tuple(
            (render(total(node)), tuple(sorted(reads[id(node)])))
            for _, node in _unique_sorted(where)
        ),
        columns=tuple(
            (c, kind, measure, f(q(p)) if kind != "none" else f(""))
            for (c, _, f, _, (kind, measure)), p in zip(pre, p_names, strict=True)
        ),
    )
    return RollupPlan(
        slug,
        sql,
        tuple(sorted(dims)),
        tuple(sorted(measures)),
        tuple(sorted(key_dims)),
        constant_sql,
        pivot,
    )


def pivot_terms(
    plan: PivotPlan, key_dimensions: Sequence[str], constant: Sequence[str]
) -> tuple[list[str], list[str]] | None:
    """Split a rollup question's WHERE for the pivot, or None if the pivot cannot answer it.

    The pivot has one row per entity: the dimensions constant per entity as columns, and the
    cells of each combination of the varying ones side by side. It answers a question whose
    group keys read constant dimensions only (each entity is in one group) and each of whose
    WHERE conjuncts reads either constant dimensions only (a filter on the entity's row) or
    varying ones only (a filter on the combinations, `pivot_mask_sql`). Returns those two
    lists of rendered conjuncts.
    """
    fixed = set(constant)
    if not set(key_dimensions) <= fixed:
        return None
    on_entity: list[str] = []
    on_combination: list[str] = []
    for sql, reads in plan.terms:
        if set(reads) <= fixed:
            on_entity.append(sql)
        elif not set(reads) & fixed:
            on_combination.append(sql)
        else:
            return None  # one conjunct reading both kinds: the rollup's own SQL answers it
    return on_entity, on_combination


PIVOT_COMBINATIONS = "__sbx_combinations"  # the view of the combinations file


def pivot_mask_sql(slug: str, on_combination: Sequence[str]) -> str:
    """Which combinations of the varying dimensions pass the WHERE: one row (index, passes)
    per combination, over the view PIVOT_COMBINATIONS named `slug` in this query (the
    conjuncts read `slug`.column). A conjunct that is NULL (or fails: `total`) does not pass,
    as in a WHERE."""
    cond = " AND ".join(on_combination) if on_combination else "TRUE"
    return (
        f"SELECT {q(PIVOT_INDEX)}, COALESCE({cond}, FALSE) FROM {q(PIVOT_COMBINATIONS)} "
        f"AS {q(slug)} ORDER BY {q(PIVOT_INDEX)}"
    )


#: SQL text with holes: an int j stands for TRUE if combination j passes the WHERE, else
#: FALSE (`fill_pivot`; the engine's worker fills it after running `pivot_mask_sql`).
PivotTemplate = list[str | int]


def fill_pivot(template: Sequence[str | int], passing: Collection[int]) -> str:
    """The SQL of a pivot template, given the combinations that pass (only TRUE and FALSE
    are inserted)."""
    return "".join(
        part if isinstance(part, str) else ("TRUE" if part in passing else "FALSE")
        for part in template
    )


def pivot_template(
    plan: PivotPlan, slug: str, on_entity: Sequence[str], count: int
) -> PivotTemplate:
    """The rollup question over the pivot (see `pivot_terms`), with a hole per combination
    for whether it passes the WHERE (`fill_pivot`): the same rows as its rollup SQL.

    An entity's per-entity values are the sums of its cells in the passing combinations,
    which is what the rollup SQL's per-entity GROUP BY sums after its WHERE: the rows and
    non-NULL counts of absent cells count 0, a SUM is NULL only if every passing cell's SUM
    is (SQL's SUM over the cells), and an entity without a passing cell is not there at all.
    With the holes filled, DuckDB folds the constant CASEs away. Everything after the
    per-entity step is the same SQL as the rollup's (`_final_tail`).
    """
    table = q(slug)
    out: PivotTemplate = []

    def cell(name: str, j: int) -> str:
        return f"{table}.{q(pivot_column(name, j))}"

    def each(parts, sep: str) -> None:  # noqa: ANN001 - one template piece per combination
        for j in range(count):
            if j:
                out.append(sep)
            out.extend(parts(j))

    def total(name: str) -> None:
        out.append("(")
        each(lambda j: ["CASE WHEN ", j, f" THEN COALESCE({cell(name, j)}, 0) ELSE 0 END"], " + ")
        out.append(")::BIGINT")

    out.append(f"WITH {q('__sbx_p')} AS (SELECT {table}.{q(ENTITY_HASH_COLUMN)} AS {q('__sbx_e')}")
    for sql, name in plan.keys:
        out.append(f", {sql} AS {q(name)}")
    for column, kind, measure, _ in plan.columns:
        if kind == "none":
            continue
        out.append(", ")
        if kind == "rows":
            total(ROLLUP_ROWS)
        elif kind == "count":
            total(ROLLUP_COUNT_PREFIX + str(measure))
        else:
            name = ROLLUP_SUM_PREFIX + str(measure)
            out.append("TRY_CAST(CASE WHEN ")
            each(lambda j, n=name: ["(NOT ", j, f" OR {cell(n, j)} IS NULL)"], " AND ")
            out.append(" THEN NULL ELSE (")
            each(
                lambda j, n=name: [
                    "CASE WHEN ",
                    j,
                    f" THEN COALESCE({cell(n, j)}::HUGEINT, 0) ELSE 0 END",
                ],
                " + ",
            )
            out.append(") END AS DOUBLE)")
        out.append(f" AS {q('__sbx_p' + column[len('__sbx_m') :])}")
    out.append(f" FROM {table} WHERE ")
    total(ROLLUP_ROWS)
    out.append(" > 0")
    for term in on_entity:
        out.append(f" AND {term}")
    final_cols = [q(name) for _, name in plan.keys] + [f"COUNT(*) AS {q(DISTINCT_COLUMN)}"]
    final_cols += [f"{final} AS {q(column)}" for column, _, _, final in plan.columns]
    out.append(
        f") SELECT {', '.join(final_cols)} FROM {q('__sbx_p')}"
        + _final_tail([name for _, name in plan.keys])
    )
    merged: PivotTemplate = []
    for part in out:  # adjacent text as one piece
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _final_tail(key_names: Sequence[str]) -> str:
    """The bounded SQL's last clauses: per group, most entities first, every candidate group
    (ungrouped: one row, nothing to add)."""
    if not key_names:
        return ""
    keys_sql = ", ".join(q(n) for n in key_names)
    return (
        f" GROUP BY {keys_sql} ORDER BY {q(DISTINCT_COLUMN)} DESC, hash({keys_sql}) "
        f"LIMIT {MAX_CANDIDATE_GROUPS + 1}"
    )


def release_key(canonical: str, row_cap: int, plan: DPPlan | None) -> str:
    """A stable hash of everything that shapes an answer (see CheckedQuery.release_key)."""
    spec: dict = {"v": 1, "canonical": canonical, "row_cap": row_cap}
    if plan is not None:
        spec["privacy"] = {
            "epsilon": str(plan.epsilon),
            "delta": str(plan.delta),
            "max_groups_per_entity": plan.max_groups_per_entity,
            "max_rows_per_entity": plan.max_rows_per_entity,
            "releases": [
                [
                    r.name,
                    r.kind,
                    str(r.sensitivity),
                    repr(r.scale),
                    str(r.epsilon),
                    str(r.delta),
                    r.threshold,
                ]
                for r in plan.releases
            ],
            "outputs": [
                [o.kind, o.release, o.count_release, str(o.lower), str(o.upper)]
                for o in plan.outputs
            ],
            "having": [[h.output, h.op, [str(v) for v in h.values]] for h in plan.having],
            "order": [[s.output, s.column, s.desc, s.nulls_first] for s in plan.order],
            "limit": plan.limit,
            "offset": plan.offset,
        }
    return sha256_hex(canonical_json(spec))
