"""The policy's rules per mode, on top of scope resolution (pure).

If any table used is `conditional`, the query is in aggregate mode, answered with entity-level
differential privacy: every output is a GROUP BY dimension or COUNT/SUM/AVG (SUM/AVG only of
columns with a declared range, COUNT(DISTINCT ...) only of the entity key), WHERE is an AND of
one-dimension-vs-literal comparisons, HAVING, ORDER BY and LIMIT act on the released noisy
values only. Otherwise the query is in rows mode: open data, identifiers hidden, row cap only.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlglot import exp

from market.i18n import N_

from .. import sqlgen
from ..allowlist import CONDITIONAL_AGGREGATES, OPEN_AGGREGATES, refuse_node
from ..errors import (
    AMBIGUOUS_COLUMN,
    FORBIDDEN_CONSTRUCT,
    FORBIDDEN_OPERATOR,
    HAVING_NOT_RELEASED,
    IDENTIFIER_FILTER,
    IDENTIFIER_OUTPUT,
    NOT_AGGREGATED,
    NOT_DIMENSION,
    NOT_LICENSED,
    PARSE_ERROR,
    STAR_EXPANSION,
    UNBOUNDED_AGGREGATE,
    PolicyViolation,
)
from ..query import ENTITY_HASH_COLUMN, CheckedQuery
from ..specs import RESERVED_PREFIX, TablePrivacy
from .parsing import DIALECT
from .scope import (
    AMBIGUOUS,
    COMPARISONS,
    Col,
    Expr,
    Item,
    Scope,
    ScopeBuilder,
    conjuncts,
    has_aggregate,
    is_int_literal,
    is_literal,
    short,
    unparen,
)


class QueryBuilder(ScopeBuilder):
    """Checks one parsed SELECT against a license and builds the CheckedQuery."""

    # -- entry ------------------------------------------------------------------------------

    def build(self, select: exp.Select) -> CheckedQuery:
        self.mode = self._mode_of(select)
        self.aggregates = CONDITIONAL_AGGREGATES if self.mode == "aggregate" else OPEN_AGGREGATES
        self._check_select_args(select, view=False)
        ctes = self._ctes(select)
        scope, joins = self._from(select, ctes)
        items = self._items(select, scope)
        if self.mode == "aggregate":
            return self._aggregate_query(select, scope, joins, items)
        return self._rows_query(select, scope, joins, items)

    def _where(self, node: exp.Expression, scope: Scope) -> list[exp.Expression]:
        """Rewritten WHERE conjuncts; in aggregate mode each is dimension-vs-literal."""
        result = []
        for conj in conjuncts(node):
            rewritten = self._rewrite(conj, scope, "where")
            if self.mode == "aggregate":
                result.append(self._dimension_predicate(rewritten))
            else:
                result.append(rewritten.node)
        return result

    def _dimension_predicate(self, e: Expr) -> exp.Expression:
        node = unparen(e.node)
        if isinstance(node, exp.Or):
            raise PolicyViolation(FORBIDDEN_OPERATOR, "OR is not allowed on conditional data")
        if isinstance(node, exp.Not):
            inner = unparen(node.this)
            if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
                self._dimension(e, inner.this, "where")
                return node
            raise PolicyViolation(FORBIDDEN_OPERATOR, "NOT is not allowed on conditional data")
        if type(node) in COMPARISONS:
            left, right = node.this, node.expression
            if is_literal(left) and not is_literal(right):
                # Canonical orientation: column side first, so "5 < x" equals "x > 5".
                node = COMPARISONS[type(node)](this=right, expression=left)
                left, right = right, left
            if not is_literal(right):
                raise PolicyViolation(
                    FORBIDDEN_OPERATOR, "compare a dimension column with a literal value"
                )
            self._dimension(e, left, "where")
            return node
        if isinstance(node, exp.In):
            if not node.expressions or not all(is_literal(x) for x in node.expressions):
                raise PolicyViolation(FORBIDDEN_OPERATOR, "IN takes a list of literal values")
            self._dimension(e, node.this, "where")
            values = sorted({sqlgen.render(x): x for x in node.expressions}.items())
            return exp.In(this=node.this, expressions=[x for _, x in values])
        if isinstance(node, exp.Between):
            if not (is_literal(node.args["low"]) and is_literal(node.args["high"])):
                raise PolicyViolation(FORBIDDEN_OPERATOR, "BETWEEN takes literal bounds")
            self._dimension(e, node.this, "where")
            return node
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            self._dimension(e, node.this, "where")
            return node
        raise PolicyViolation(
            FORBIDDEN_OPERATOR,
            "WHERE on conditional data is an AND of =, <>, <, <=, >, >=, IN, BETWEEN, IS NULL",
        )

    def _dimension(self, e: Expr, node: exp.Expression, clause: str) -> None:
        """Refuse unless `node` is a function of dimension columns only (no aggregate)."""
        if has_aggregate(node):
            raise PolicyViolation(
                NOT_AGGREGATED if clause != "where" else FORBIDDEN_CONSTRUCT,
                "aggregates are not allowed here",
            )
        refs = e.columns(node)
        if not refs:
            raise PolicyViolation(NOT_DIMENSION, "this must reference a dimension column")
        if clause == "where" and len(refs) > 1:
            # One column per condition: combining columns inside a condition (d1 || d2 <> 'x',
            # CASE WHEN d1 = .. OR d2 = ..) would bring back OR and single-cell predicates.
            raise PolicyViolation(
                FORBIDDEN_OPERATOR, "each WHERE condition compares one column with literals"
            )
        for _, col in refs:
            if col.spec.is_identifying:
                rule = IDENTIFIER_FILTER if clause == "where" else IDENTIFIER_OUTPUT
                raise PolicyViolation(rule, f"identifier column {short(col.name)} is not allowed")
            if col.spec.kind != "dimension":
                raise PolicyViolation(
                    NOT_DIMENSION,
                    f"column {short(col.name)} is not a dimension; it may only be aggregated",
                )

    def _aggregate(self, e: Expr, node: exp.Expression) -> sqlgen.AggOutput:
        """An allowed aggregate call of aggregate mode (name left empty)."""
        arg = node.this
        if isinstance(node, exp.Count):
            if isinstance(arg, exp.Star):
                return sqlgen.AggOutput("", "count", "COUNT(*)")
            distinct = isinstance(arg, exp.Distinct)
            target = arg.expressions[0] if distinct else arg
            if not isinstance(target, exp.Column):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "aggregate arguments must be a column")
            col = e.col(target)
            if distinct:
                if col.spec.kind != "entity_key":
                    # One entity could add many distinct values to a group: no bound.
                    raise PolicyViolation(
                        FORBIDDEN_CONSTRUCT,
                        N_("on conditional data COUNT(DISTINCT ...) counts only the entity key"),
                    )
                return sqlgen.AggOutput("", "distinct", sqlgen.render(node))
            return sqlgen.AggOutput("", "count", sqlgen.render(node), column=col.node())
        if not isinstance(arg, exp.Column):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "aggregate arguments must be a column")
        col = e.col(arg)
        if not col.spec.bounded:
            raise PolicyViolation(
                UNBOUNDED_AGGREGATE, f"column {short(col.name)} has no bounds for SUM or AVG"
            )
        kind = "sum" if isinstance(node, exp.Sum) else "avg"
        return sqlgen.AggOutput(
            "",
            kind,
            sqlgen.render(node),
            column=col.node(),
            lower=col.spec.lower,
            upper=col.spec.upper,
        )

    # -- select list ------------------------------------------------------------------------

    def _items(self, select: exp.Select, scope: Scope) -> list[Item]:
        """Select items; a star expands in place to its allowed columns (rows mode only)."""
        items: list[Item] = []
        visible = {low for _, src in scope for low in src.columns}
        for item in select.expressions:
            star = self._star_of(item)
            if star is not None:
                if self.mode == "aggregate":
                    raise PolicyViolation(STAR_EXPANSION, "* is not allowed on conditional data")
                table, _ = star
                if table is not None and not any(a == table for a, _ in scope):
                    raise PolicyViolation(NOT_LICENSED, f"table {short(table)} is not licensed")
                before = len(items)
                for a, src in scope:
                    if table is not None and a != table:
                        continue
                    for low, col in src.columns.items():
                        if col.spec.is_identifying:
                            continue  # * never reaches identifiers or entity keys
                        name = src.display[low]
                        ref = exp.Column(
                            this=exp.Identifier(this=name, quoted=True),
                            table=exp.Identifier(this=a, quoted=True) if a else None,
                        )
                        items.append(Item(None, ref, name))
                if len(items) == before:
                    raise PolicyViolation(STAR_EXPANSION, "* expands to no allowed column")
                continue
            if isinstance(item, exp.Alias):
                alias = str(item.alias)
                node = item.this
                low = alias.lower()
                if low.startswith(RESERVED_PREFIX):
                    raise PolicyViolation(
                        FORBIDDEN_CONSTRUCT, "names starting with __sbx are reserved"
                    )
                same = isinstance(node, exp.Column) and str(node.name).lower() == low
                if low in visible and not same:
                    raise PolicyViolation(
                        FORBIDDEN_CONSTRUCT, f"alias {short(alias)} hides a column name"
                    )
                items.append(Item(alias, node, alias))
            else:
                if isinstance(item, exp.Column):
                    base = self._try_resolve(item, scope)
                    name = base.name if base is not None else str(item.name)
                else:
                    name = item.sql(dialect=DIALECT)
                items.append(Item(None, item, name))
        if not items:
            raise PolicyViolation(PARSE_ERROR, "select at least one column")
        return items

    def _alias_map(self, items: Sequence[Item]) -> dict[str, exp.Expression]:
        aliases: dict[str, exp.Expression] = {}
        for item in items:
            if item.alias:
                low = item.alias.lower()
                if low in aliases:
                    aliases[low] = AMBIGUOUS
                else:
                    aliases[low] = item.node
        return aliases

    def _group_nodes(self, select: exp.Select, items: Sequence[Item]) -> list[exp.Expression]:
        group = select.args.get("group")
        if group is None:
            return []
        for key, value in group.args.items():
            if value and key not in ("expressions", "all"):
                raise refuse_node(value[0] if isinstance(value, list) else value)
        if group.args.get("all"):
            return [it.node for it in items if not has_aggregate(it.node)]
        nodes = []
        for g in group.expressions:
            if is_int_literal(g):
                nodes.append(self._by_position(items, int(g.name)))
            else:
                nodes.append(g)
        return nodes

    def _by_position(self, items: Sequence[Item], position: int) -> exp.Expression:
        if not 1 <= position <= len(items):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "position is out of range")
        return items[position - 1].node

    def _limit(self, select: exp.Select, key: str) -> int | None:
        node = select.args.get(key)
        if node is None:
            return None
        for k, value in node.args.items():
            if value and k != "expression":
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT, f"this {key.upper()} form is not allowed"
                )
        value = node.expression
        if not is_int_literal(value):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, f"{key.upper()} takes an integer")
        return int(value.name)

    def _order_terms(self, select: exp.Select) -> list[exp.Ordered]:
        order = select.args.get("order")
        if order is None:
            return []
        terms = []
        for term in order.expressions:
            if not isinstance(term, exp.Ordered):
                raise refuse_node(term)
            for key, value in term.args.items():
                if value and key not in ("this", "desc", "nulls_first"):
                    raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this ORDER BY form is not allowed")
            terms.append(term)
        return terms

    def _output_ref(
        self,
        term: exp.Expression,
        items: Sequence[Item],
        scope: Scope,
        aliases: dict[str, exp.Expression],
    ) -> int | None:
        """The output index an ORDER BY term names by position or alias, else None."""
        if is_int_literal(term):
            position = int(term.name)
            if not 1 <= position <= len(items):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "ORDER BY position is out of range")
            return position - 1
        if (
            isinstance(term, exp.Column)
            and not term.table
            and isinstance(term.this, exp.Identifier)
        ):
            low = str(term.name).lower()
            if low in aliases and self._try_resolve(term, scope) is None:
                if aliases[low] is AMBIGUOUS:
                    raise PolicyViolation(AMBIGUOUS_COLUMN, f"alias {short(low)} is ambiguous")
                for i, it in enumerate(items):
                    if it.alias and it.alias.lower() == low:
                        return i
        return None

    # -- rows mode --------------------------------------------------------------------------

    def _rows_query(
        self,
        select: exp.Select,
        scope: Scope,
        joins: list[tuple[Col, Col]],
        items: list[Item],
    ) -> CheckedQuery:
        aliases = self._alias_map(items)
        outputs: list[tuple[str, exp.Expression]] = []
        for it in items:
            outputs.append((it.name, self._rewrite(it.node, scope, "select").node))
        where = [c for _, src in scope for c in src.where]
        if select.args.get("where"):
            where += self._where(select.args["where"].this, scope)
        group = [
            self._rewrite(g, scope, "group", aliases).node for g in self._group_nodes(select, items)
        ]
        having = []
        if select.args.get("having"):
            having = [
                self._rewrite(c, scope, "having", aliases).node
                for c in conjuncts(select.args["having"].this)
            ]
        canon_out = [sqlgen.render(node) for _, node in outputs]
        order: list[sqlgen.OrderTerm] = []
        for term in self._order_terms(select):
            idx = self._output_ref(term.this, items, scope, aliases)
            if idx is None:
                node = self._rewrite(term.this, scope, "order", aliases).node
                canon = sqlgen.render(node)
                if canon in canon_out:
                    idx = canon_out.index(canon)
            if idx is not None:
                order.append(sqlgen.OrderTerm(None, idx, term, canon_out[idx]))
            else:
                order.append(sqlgen.OrderTerm(node, None, term, canon))
        return sqlgen.rows_query(
            ctx=self.ctx,
            scope_tables=[src.table for _, src in scope],
            joins=[(a.node(), b.node()) for a, b in joins],
            outputs=outputs,
            where=where,
            group=group,
            having=having,
            order=order,
            limit=self._limit(select, "limit"),
            offset=self._limit(select, "offset"),
            distinct=select.args.get("distinct") is not None,
        )

    # -- aggregate mode ---------------------------------------------------------------------

    def _aggregate_query(
        self,
        select: exp.Select,
        scope: Scope,
        joins: list[tuple[Col, Col]],
        items: list[Item],
    ) -> CheckedQuery:
        aliases = self._alias_map(items)
        where = [c for _, src in scope for c in src.where]
        if select.args.get("where"):
            where += self._where(select.args["where"].this, scope)

        keys: dict[str, exp.Expression] = {}
        for g in self._group_nodes(select, items):
            e = self._rewrite(g, scope, "group", aliases)
            self._dimension(e, e.node, "group")
            keys.setdefault(e.canonical, e.node)
        outputs: list[sqlgen.AggOutput] = []
        for it in items:
            e = self._rewrite(it.node, scope, "select")
            outputs.append(self._agg_output(it.name, e, keys))
        canon_out = [o.canonical for o in outputs]
        released = {o.canonical: i for i, o in enumerate(outputs) if o.kind != "dimension"}

        having: list[sqlgen.HavingSpec] = []
        if select.args.get("having"):
            for conj in conjuncts(select.args["having"].this):
                e = self._rewrite(conj, scope, "having", aliases)
                having.append(self._having_term(e, released))

        order: list[sqlgen.SortSpec] = []
        for term in self._order_terms(select):
            idx = self._output_ref(term.this, items, scope, aliases)
            if idx is None:
                e = self._rewrite(term.this, scope, "order", aliases)
                canon = e.canonical
                if canon in canon_out:
                    idx = canon_out.index(canon)
                elif canon in keys:
                    order.append(sqlgen.SortSpec(None, canon, term, canon))
                    continue
                elif isinstance(e.node, exp.AggFunc):
                    canon = self._aggregate(e, e.node).canonical
                    if canon not in released:
                        raise PolicyViolation(
                            FORBIDDEN_CONSTRUCT,
                            N_("ORDER BY an aggregate only if it is also an output"),
                        )
                    idx = released[canon]
                else:
                    raise PolicyViolation(
                        NOT_AGGREGATED, "ORDER BY a grouped column, an output or an aggregate"
                    )
            order.append(sqlgen.SortSpec(idx, None, term, canon_out[idx]))

        conditional = [src.table for _, src in scope if src.table.grade == "conditional"]
        privacy = TablePrivacy.combine([t.privacy for t in conditional if t.privacy is not None])
        # The privacy unit: the entity of the (first) conditional table. Joins are equalities
        # of entity keys, so every joined row belongs to that one entity.
        entity = conditional[0]
        return sqlgen.aggregate_query(
            ctx=self.ctx,
            scope_tables=[src.table for _, src in scope],
            joins=[(a.node(), b.node()) for a, b in joins],
            entity_hash=exp.column(ENTITY_HASH_COLUMN, table=entity.slug, quoted=True),
            outputs=outputs,
            keys=keys,
            where=where,
            having=having,
            order=order,
            limit=self._limit(select, "limit"),
            offset=self._limit(select, "offset"),
            privacy=privacy,
            charged_tables=list(dict.fromkeys(t.slug for t in conditional)),
        )

    def _agg_output(self, name: str, e: Expr, keys: dict[str, exp.Expression]) -> sqlgen.AggOutput:
        node = e.node
        if isinstance(node, exp.AggFunc):
            agg = self._aggregate(e, node)
            return sqlgen.AggOutput(
                name, agg.kind, agg.canonical, None, agg.column, agg.lower, agg.upper
            )
        if has_aggregate(node):
            raise PolicyViolation(
                NOT_AGGREGATED, "each output is a grouped column or one COUNT, SUM or AVG call"
            )
        canon = e.canonical
        if canon in keys:
            return sqlgen.AggOutput(name, "dimension", canon, key=canon)
        for _, col in e.columns():
            if col.spec.kind != "dimension":
                raise PolicyViolation(
                    NOT_AGGREGATED, f"column {short(col.name)} may only be aggregated"
                )
        # The output's name may be query text with literals in it, so it is not echoed.
        raise PolicyViolation(NOT_AGGREGATED, "an output column is not in GROUP BY")

    def _having_term(self, e: Expr, released: dict[str, int]) -> sqlgen.HavingSpec:
        """A HAVING conjunct that filters released (noisy) outputs, evaluated after noise.

        Anything else would decide which groups appear from exact values: refused.
        """
        node = unparen(e.node)
        if isinstance(node, exp.Or | exp.Not):
            raise PolicyViolation(FORBIDDEN_OPERATOR, "HAVING is an AND of comparisons")
        not_released = PolicyViolation(
            HAVING_NOT_RELEASED,
            N_(
                "on conditional data HAVING may only compare an aggregate that is also an "
                "output with a number"
            ),
        )

        def output_of(x: exp.Expression) -> tuple[int, str]:
            x = unparen(x)
            if not isinstance(x, exp.AggFunc):
                raise not_released
            canon = self._aggregate(e, x).canonical
            if canon not in released:
                raise not_released
            return released[canon], canon

        if type(node) in COMPARISONS:
            left, right = node.this, node.expression
            if is_literal(left) and not is_literal(right):
                node = COMPARISONS[type(node)](this=right, expression=left)
                left, right = right, left
            idx, canon = output_of(left)
            value = _number(right)
            if value is None:
                raise not_released
            op = _HAVING_OPS[type(node)]
            return sqlgen.HavingSpec(idx, op, (value,), f"{canon} {op} {value}")
        if isinstance(node, exp.Between):
            idx, canon = output_of(node.this)
            low, high = _number(node.args["low"]), _number(node.args["high"])
            if low is None or high is None:
                raise not_released
            return sqlgen.HavingSpec(
                idx, "between", (low, high), f"{canon} BETWEEN {low} AND {high}"
            )
        raise not_released


_HAVING_OPS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}


def _number(node: exp.Expression) -> Decimal | None:
    """The value of a numeric literal (possibly negated), else None."""
    node = unparen(node)
    negative = False
    if isinstance(node, exp.Neg):
        negative, node = True, unparen(node.this)
    if not isinstance(node, exp.Literal) or node.is_string:
        return None
    try:
        value = Decimal(node.name)
    except ArithmeticError:
        return None
    if not value.is_finite():
        return None
    return -value if negative else value
