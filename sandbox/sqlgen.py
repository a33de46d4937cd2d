"""Engine SQL and canonical text, generated from checked expressions.

Only sqlglot-rendered fragments of checked trees, our own quoted names and integers go into
the SQL built here; nothing is copied from the caller's text.

Aggregate mode runs in one statement (names abbreviated, all start with __sbx_):

    q   the caller's aggregate, plus hidden group keys g*, order terms o* and n = COUNT(*)
    rb  r = product over the tables used of the largest number of rows one entity has
        (engine-provided view __sbx_entity_rows); NULL if unknown
    u   groups not yet proven to cover k entities: k <= n < (k + 1) * r
    x   exact COUNT(DISTINCT hash(entity_key)) for the groups in u only (a semi-join, so DuckDB does
        not rescan when u is empty)
    v   q plus pass = n >= k and (n >= (k + 1) * r or x.d >= k)
    r   the passing groups, ORDER BY / LIMIT applied
    s   the number of failing groups
    and finally `s LEFT JOIN r ON TRUE`, so the suppressed count arrives even with no rows.

A group of n rows covers at least n / r - 1 entities (rows with a NULL key can form one extra
pseudo-entity), so n >= (k + 1) * r proves it covers k; exact
distinct counting, which costs about 20x a plain GROUP BY on large files, runs only for small
groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from .query import (
    ENTITY_ROWS_VIEW,
    PASS_COLUMN,
    SUPPRESSED_COLUMN,
    CheckedQuery,
    DPMeasurement,
    DPPlan,
    OutputColumn,
    ViewSpec,
)
from .specs import PolicyContext, TableSpec

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
    name: str
    kind: str  # dimension | count | sum | avg
    canonical: str
    engine: exp.Expression
    sensitivity: Decimal | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None
    sum_engine: exp.Expression | None = None
    count_engine: exp.Expression | None = None
    sum_canonical: str | None = None
    count_canonical: str | None = None


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
        k_min=None,
        k_column=None,
        suppressed_column=None,
        epsilon_cost=Decimal(0),
        dp=None,
    )


def _order_canonical(term: OrderTerm) -> str:
    desc = " DESC" if term.term.args.get("desc") else ""
    nulls = term.term.args.get("nulls_first")
    return f"{term.canonical}{desc}{' NULLS FIRST' if nulls else ''}"


def aggregate_query(
    *,
    ctx: PolicyContext,
    scope_tables: Sequence[TableSpec],
    joins: Sequence[tuple[exp.Expression, exp.Expression]],
    entity_key: exp.Expression,
    outputs: Sequence[AggOutput],
    keys: Mapping[str, exp.Expression],
    where: Sequence[exp.Expression],
    having: Sequence[exp.Expression],
    order: Sequence[OrderTerm],
    limit: int | None,
    offset: int | None,
    k_min: int,
    epsilon: Decimal | None,
) -> CheckedQuery:
    """Conditional data: aggregate, then drop and count groups below k (see module doc)."""
    cap = ctx.row_cap
    k = int(k_min)
    key_items = sorted(keys.items())  # canonical order: the DP seed depends on it
    key_names = [f"__sbx_g{i}" for i in range(len(key_items))]
    out_names = [f"__sbx_c{i}" for i in range(len(outputs))]
    from_sql = _from(scope_tables, joins)
    where_sql = _conj(where)
    group_sql = [render(node) for _, node in key_items]

    hidden: list[tuple[str, str]] = []  # (name, sql) of extra columns of q
    order_cols: list[tuple[OrderTerm, str]] = []
    for j, term in enumerate(order):
        if term.index is not None:
            order_cols.append((term, out_names[term.index]))
        elif term.canonical in keys:
            order_cols.append((term, key_names[[c for c, _ in key_items].index(term.canonical)]))
        else:
            name = f"__sbx_o{j}"
            hidden.append((name, render(term.node)))  # type: ignore[arg-type]
            order_cols.append((term, name))

    dp_cols: list[str] = []
    measurements: list[DPMeasurement] = []
    if epsilon is not None:
        releases = set()
        for o in outputs:
            if o.kind in ("count", "sum"):
                releases.add(o.canonical)
            elif o.kind == "avg":
                releases.update((o.sum_canonical, o.count_canonical))
        share = epsilon / len(releases) if releases else epsilon
        for i, o in enumerate(outputs):
            if o.kind == "dimension":
                continue
            sens = o.sensitivity or Decimal(1)
            if o.kind == "avg":
                s_name, n_name = f"__sbx_as{i}", f"__sbx_an{i}"
                hidden.append((s_name, render(o.sum_engine)))  # type: ignore[arg-type]
                hidden.append((n_name, render(o.count_engine)))  # type: ignore[arg-type]
                dp_cols += [s_name, n_name]
                measurements.append(
                    DPMeasurement(
                        output_index=i,
                        kind="avg",
                        canonical=o.sum_canonical or "",
                        sensitivity=sens,
                        scale=sens / share,
                        lower=o.lower,
                        upper=o.upper,
                        sum_column=s_name,
                        count_column=n_name,
                        count_canonical=o.count_canonical,
                        count_scale=Decimal(1) / share,
                    )
                )
            else:
                measurements.append(
                    DPMeasurement(
                        output_index=i,
                        kind=o.kind,  # type: ignore[arg-type]
                        canonical=o.canonical,
                        sensitivity=sens,
                        scale=sens / share,
                        lower=o.lower,
                        upper=o.upper,
                    )
                )

    q_cols = [f"{render(o.engine)} AS {q(n)}" for o, n in zip(outputs, out_names, strict=True)]
    q_cols += [f"{text} AS {q(n)}" for n, text in hidden]
    if key_items:
        q_cols += [f"{text} AS {q(n)}" for text, n in zip(group_sql, key_names, strict=True)]
        u_keys = key_names
    else:
        q_cols.append(f"0 AS {q('__sbx_g0')}")
        u_keys = ["__sbx_g0"]
    q_cols.append(f"COUNT(*) AS {q('__sbx_n')}")
    q_sql = f"SELECT {', '.join(q_cols)} FROM {from_sql}" + _clauses(
        where_sql, group_sql, _conj(having)
    )

    slugs = ", ".join(render(exp.Literal.string(t.slug)) for t in scope_tables)
    # COUNT(max_rows) = number of tables: a table without a known bound makes r NULL (so every
    # group is counted exactly) instead of silently shrinking the product.
    rb_sql = (
        f"SELECT CASE WHEN COUNT({q('max_rows')}) = {len(scope_tables)} "
        f"THEN PRODUCT({q('max_rows')}) END AS {q('r')} "
        f"FROM {q(ENTITY_ROWS_VIEW)} WHERE {q('slug')} IN ({slugs})"
    )
    r_val = f"(SELECT {q('r')} FROM {q('__sbx_rb')})"
    n_col = f"{q('__sbx_q')}.{q('__sbx_n')}"
    # k + 1: rows with a NULL entity key form one extra pseudo-entity in max_rows.
    proven = f"COALESCE({n_col} >= {k + 1} * {r_val}, FALSE)"
    u_sql = (
        f"SELECT {', '.join(q(n) for n in u_keys)} FROM {q('__sbx_q')} "
        f"WHERE {n_col} >= {k} AND NOT {proven}"
    )
    ek = render(entity_key)
    if key_items:
        on = " AND ".join(
            f"{text} IS NOT DISTINCT FROM {q('__sbx_u')}.{q(n)}"
            for text, n in zip(group_sql, key_names, strict=True)
        )
        x_cols = ", ".join(
            f"{text} AS {q(n)}" for text, n in zip(group_sql, key_names, strict=True)
        )
        x_sql = (
            f"SELECT {x_cols}, COUNT(DISTINCT {ek}) AS {q('__sbx_d')} FROM {from_sql} "
            f"SEMI JOIN {q('__sbx_u')} ON {on}" + _clauses(where_sql, group_sql)
        )
    else:
        x_sql = (
            f"SELECT 0 AS {q('__sbx_g0')}, COUNT(DISTINCT {ek}) AS {q('__sbx_d')} "
            f"FROM {from_sql} SEMI JOIN {q('__sbx_u')} ON {q('__sbx_u')}.{q('__sbx_g0')} = 0"
            + _clauses(where_sql)
        )
    vx_on = " AND ".join(
        f"{q('__sbx_q')}.{q(n)} IS NOT DISTINCT FROM {q('__sbx_x')}.{q(n)}" for n in u_keys
    )
    v_sql = (
        f"SELECT {q('__sbx_q')}.*, ({n_col} >= {k} AND ({proven} OR "
        f"COALESCE({q('__sbx_x')}.{q('__sbx_d')}, 0) >= {k})) AS {q(PASS_COLUMN)} "
        f"FROM {q('__sbx_q')} LEFT JOIN {q('__sbx_x')} ON {vx_on}"
    )
    limit_eff = cap + 1 if limit is None else min(limit, cap + 1)
    r_sql = f"SELECT * FROM {q('__sbx_v')} WHERE {q(PASS_COLUMN)}"
    if order_cols:
        r_sql += " ORDER BY " + ", ".join(
            t.render_on(exp.column(c, quoted=True)) for t, c in order_cols
        )
    r_sql += _limits(limit_eff, offset)
    s_sql = (
        f"SELECT COUNT(*) FILTER (WHERE NOT {q(PASS_COLUMN)}) AS {q(SUPPRESSED_COLUMN)} "
        f"FROM {q('__sbx_v')}"
    )
    final_cols = out_names + (key_names if epsilon is not None else []) + dp_cols + [PASS_COLUMN]
    final = ", ".join(f"{q('__sbx_r')}.{q(c)}" for c in final_cols)
    sql = (
        f"WITH {q('__sbx_q')} AS ({q_sql}), {q('__sbx_rb')} AS ({rb_sql}), "
        f"{q('__sbx_u')} AS ({u_sql}), {q('__sbx_x')} AS ({x_sql}), {q('__sbx_v')} AS ({v_sql}), "
        f"{q('__sbx_r')} AS ({r_sql}), {q('__sbx_s')} AS ({s_sql}) "
        f"SELECT {final}, {q('__sbx_s')}.{q(SUPPRESSED_COLUMN)} "
        f"FROM {q('__sbx_s')} LEFT JOIN {q('__sbx_r')} ON TRUE"
    )
    if order_cols:
        sql += " ORDER BY " + ", ".join(
            t.render_on(exp.column(c, table="__sbx_r", quoted=True)) for t, c in order_cols
        )

    canonical_from = _canonical_from(scope_tables)
    canon_group = [c for c, _ in key_items]
    scope = f"FROM {canonical_from}" + _clauses(where_sql, canon_group)
    canonical = "SELECT " + ", ".join(o.canonical for o in outputs) + " " + scope
    if having:
        canonical += f" HAVING {_conj(having)}"
    if order:
        canonical += " ORDER BY " + ", ".join(_order_canonical(t) for t in order)
    canonical += _limits(limit, offset)

    dp = None
    if epsilon is not None:
        dp = DPPlan(
            epsilon=epsilon,
            scope=scope,
            measurements=tuple(measurements),
            group_columns=tuple(key_names),
        )
    return CheckedQuery(
        engine_sql=sql,
        canonical=canonical,
        mode="aggregate",
        output_columns=tuple(o.name for o in outputs),
        outputs=tuple(
            OutputColumn(o.name, o.kind, o.sensitivity)  # type: ignore[arg-type]
            for o in outputs
        ),
        engine_columns=tuple(final_cols + [SUPPRESSED_COLUMN]),
        tables_used=tuple(t.slug for t in scope_tables),
        views=_views(scope_tables),
        row_cap=cap,
        k_min=k,
        k_column=PASS_COLUMN,
        suppressed_column=SUPPRESSED_COLUMN,
        epsilon_cost=epsilon if epsilon is not None else Decimal(0),
        dp=dp,
    )
