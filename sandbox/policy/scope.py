"""Scope resolution: what each table and column reference means (pure).

Every table reference resolves to a licensed slug. A CTE or a subquery in FROM is a named row
filter over one source (it may pick and rename columns and add a WHERE), so the whole query
flattens to `slug JOIN slug ... WHERE ...` over base columns, written "slug"."column".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from .. import sqlgen
from ..allowlist import OPEN_AGGREGATES, check_expression, star_has_modifiers
from ..errors import (
    AMBIGUOUS_COLUMN,
    FORBIDDEN_CONSTRUCT,
    FORBIDDEN_JOIN,
    FORBIDDEN_TABLE,
    IDENTIFIER_FILTER,
    IDENTIFIER_OUTPUT,
    NOT_LICENSED,
    NOT_SELECT,
    PARSE_ERROR,
    STAR_EXPANSION,
    PolicyViolation,
)
from ..query import Mode
from ..specs import RESERVED_PREFIX, ColumnSpec, PolicyContext, TableSpec

_SYSTEM_PREFIXES = ("duckdb_", "pg_", "sqlite_", "pragma_", "information_schema")
_SYSTEM_NAMES = frozenset({"sqlite_master", "sqlite_schema", "temp", "main", "system", "memory"})
COMPARISONS: dict[type[exp.Expression], type[exp.Expression]] = {
    # comparison -> the same comparison with its sides swapped
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
}
_SELECT_ARGS_TOP = frozenset(
    {
        "with_",
        "expressions",
        "distinct",
        "from_",
        "joins",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "offset",
    }
)
_SELECT_ARGS_VIEW = frozenset({"expressions", "from_", "where"})


@dataclass(frozen=True)
class Col:
    """A base column: a column of a licensed table's view."""

    slug: str
    name: str
    spec: ColumnSpec

    def node(self) -> exp.Column:
        return exp.Column(
            this=exp.Identifier(this=self.name, quoted=True),
            table=exp.Identifier(this=self.slug, quoted=True),
        )


@dataclass
class Source:
    """Something in FROM: a licensed table, or a row filter (CTE/subquery) over one."""

    slug: str
    table: TableSpec
    columns: dict[str, Col]  # visible name (lower case) -> base column
    display: dict[str, str]  # visible name (lower case) -> name as declared
    where: list[exp.Expression] = field(default_factory=list)  # inherited, already rewritten


@dataclass
class Expr:
    """A rewritten expression (columns are "slug"."column") and the base column of each ref."""

    node: exp.Expression
    cols: dict[int, Col]

    def col(self, node: exp.Expression) -> Col:
        return self.cols[id(node)]

    def columns(self, under: exp.Expression | None = None) -> list[tuple[exp.Column, Col]]:
        root = self.node if under is None else under
        return [(n, self.cols[id(n)]) for n in root.find_all(exp.Column) if id(n) in self.cols]

    @property
    def canonical(self) -> str:
        return sqlgen.render(self.node)


@dataclass
class Item:
    """A select item before classification."""

    alias: str | None
    node: exp.Expression  # the expression without its alias (original tree)
    name: str  # output column name shown to the caller


Scope = list[tuple[str | None, Source]]


def ident(node: exp.Expression | None) -> str:
    return str(node.name) if node is not None else ""


def short(name: str) -> str:
    return name[:64]


def unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = unparen(node)
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def is_int_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and node.is_int


def is_literal(node: exp.Expression) -> bool:
    node = unparen(node)
    if isinstance(node, exp.Literal | exp.Boolean | exp.Null):
        return True
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    if isinstance(node, exp.Cast | exp.TryCast):  # DATE '2024-01-01'
        return isinstance(node.this, exp.Literal)
    return False


def has_aggregate(node: exp.Expression) -> bool:
    return any(isinstance(n, exp.AggFunc) for n in node.walk())


class ScopeBuilder:
    """Sources, CTE/subquery views, joins and column resolution; rules live in a subclass."""

    def __init__(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.mode: Mode = "rows"
        self.aggregates = OPEN_AGGREGATES

    def _where(self, node: exp.Expression, scope: Scope) -> list[exp.Expression]:
        raise NotImplementedError  # rules.QueryBuilder

    def _mode_of(self, select: exp.Select) -> Mode:
        for table in select.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier):
                spec = self.ctx.table(table.name)
                if spec is not None and spec.grade == "conditional":
                    return "aggregate"
        return "rows"

    # -- structure --------------------------------------------------------------------------

    def _check_select_args(self, select: exp.Select, *, view: bool) -> None:
        allowed = _SELECT_ARGS_VIEW if view else _SELECT_ARGS_TOP
        for key, value in select.args.items():
            if not value or key in allowed:
                continue
            if key == "into":
                raise PolicyViolation(NOT_SELECT, "SELECT ... INTO is not allowed")
            if key in ("qualify", "windows"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "window functions are not allowed")
            if key == "laterals":
                raise PolicyViolation(FORBIDDEN_JOIN, "LATERAL is not allowed")
            if view and key == "joins":
                raise PolicyViolation(FORBIDDEN_JOIN, "a subquery in FROM or WITH reads one table")
            if view:
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT,
                    "a subquery in FROM or WITH may only pick columns and filter rows",
                )
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, f"{key.strip('_').upper()} is not allowed")
        distinct = select.args.get("distinct")
        if distinct is not None:
            if distinct.args.get("on"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "DISTINCT ON is not allowed")
            if self.mode == "aggregate":
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT, "SELECT DISTINCT is not allowed here; use GROUP BY"
                )
        if not select.args.get("from_"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "the query must read a licensed table")

    def _ctes(self, select: exp.Select) -> dict[str, Source]:
        ctes: dict[str, Source] = {}
        with_ = select.args.get("with_")
        if with_ is None:
            return ctes
        if with_.args.get("recursive"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "recursive CTEs are not allowed")
        for key, value in with_.args.items():
            if value and key not in ("expressions", "recursive"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this WITH option is not allowed")
        for cte in with_.expressions:
            for key, value in cte.args.items():
                if value and key not in ("this", "alias", "materialized"):
                    raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this CTE form is not allowed")
            name = self._alias_name(cte.args.get("alias"))
            if name is None:
                raise PolicyViolation(PARSE_ERROR, "a CTE needs a name")
            if name in ctes or self.ctx.table(name) is not None:
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT, f"CTE name {short(name)} is already a table name"
                )
            body = cte.this
            if isinstance(body, exp.SetOperation):
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT, "UNION, INTERSECT and EXCEPT are not allowed"
                )
            if not isinstance(body, exp.Select):
                raise PolicyViolation(NOT_SELECT, "a CTE must be a plain SELECT")
            ctes[name] = self._view(body, ctes)
        return ctes

    def _alias_name(self, alias: exp.Expression | None) -> str | None:
        if alias is None:
            return None
        if isinstance(alias, exp.TableAlias) and alias.args.get("columns"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "column lists in aliases are not allowed")
        name = ident(alias.this if isinstance(alias, exp.TableAlias) else alias).lower()
        if not name:
            return None
        if name.startswith(RESERVED_PREFIX):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "names starting with __sbx are reserved")
        return name

    def _source(self, node: exp.Expression, ctes: dict[str, Source]) -> tuple[str | None, Source]:
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise PolicyViolation(FORBIDDEN_TABLE, "table functions are not allowed")
            if node.args.get("db") or node.args.get("catalog"):
                raise PolicyViolation(FORBIDDEN_TABLE, "schema-qualified tables are not allowed")
            for key, value in node.args.items():
                if value and key not in ("this", "alias"):
                    raise PolicyViolation(
                        FORBIDDEN_CONSTRUCT, f"{key.strip('_').upper()} on a table is not allowed"
                    )
            name = str(node.name)
            lower = name.lower()
            alias = self._alias_name(node.args.get("alias")) or lower
            if lower in ctes:
                src = ctes[lower]
                return alias, Source(src.slug, src.table, src.columns, src.display, src.where)
            spec = self.ctx.table(name)
            if spec is not None:
                return alias, self._base_source(spec)
            if lower in _SYSTEM_NAMES or lower.startswith(_SYSTEM_PREFIXES):
                raise PolicyViolation(FORBIDDEN_TABLE, "system catalogues are not allowed")
            if any(ch in name for ch in "/\\.:*?"):
                raise PolicyViolation(FORBIDDEN_TABLE, "files are not tables; use a licensed slug")
            raise PolicyViolation(NOT_LICENSED, f"table {short(name)} is not licensed")
        if isinstance(node, exp.Subquery):
            for key, value in node.args.items():
                if value and key not in ("this", "alias"):
                    raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this subquery form is not allowed")
            body = node.this
            if isinstance(body, exp.SetOperation):
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT, "UNION, INTERSECT and EXCEPT are not allowed"
                )
            if not isinstance(body, exp.Select):
                raise PolicyViolation(NOT_SELECT, "a subquery must be a plain SELECT")
            return self._alias_name(node.args.get("alias")), self._view(body, ctes)
        if isinstance(node, exp.Lateral):
            raise PolicyViolation(FORBIDDEN_JOIN, "LATERAL is not allowed")
        raise PolicyViolation(FORBIDDEN_TABLE, "only licensed tables may be read")

    def _base_source(self, spec: TableSpec) -> Source:
        columns: dict[str, Col] = {}
        display: dict[str, str] = {}
        for col in spec.visible_columns:
            columns[col.name.lower()] = Col(spec.slug, col.name, col)
            display[col.name.lower()] = col.name
        return Source(spec.slug, spec, columns, display)

    def _view(self, select: exp.Select, ctes: dict[str, Source]) -> Source:
        """A CTE or FROM subquery: pick/rename columns of one source and filter its rows."""
        if select.args.get("with_"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "nested WITH is not allowed")
        self._check_select_args(select, view=True)
        alias, inner = self._source(select.args["from_"].this, ctes)
        scope: Scope = [(alias, inner)]
        columns: dict[str, Col] = {}
        display: dict[str, str] = {}

        def add(name: str, col: Col) -> None:
            low = name.lower()
            if low.startswith(RESERVED_PREFIX):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "names starting with __sbx are reserved")
            if low in columns:
                raise PolicyViolation(AMBIGUOUS_COLUMN, f"column {short(name)} appears twice")
            columns[low] = col
            display[low] = name

        for item in select.expressions:
            star = self._star_of(item)
            if star is not None:
                if self.mode == "aggregate":
                    raise PolicyViolation(STAR_EXPANSION, "* is not allowed on conditional data")
                table, _ = star
                for a, src in scope:
                    if table is None or a == table:
                        for low, col in src.columns.items():
                            add(src.display[low], col)
                continue
            node = item.this if isinstance(item, exp.Alias) else item
            if not isinstance(node, exp.Column):
                raise PolicyViolation(
                    FORBIDDEN_CONSTRUCT,
                    "a subquery in FROM or WITH may only pick columns and filter rows",
                )
            check_expression(node, aggregates=self.aggregates)
            col = self._resolve(node, scope)
            name = item.alias if isinstance(item, exp.Alias) else col.name
            add(name, col)
        where = list(inner.where)
        if select.args.get("where"):
            where += self._where(select.args["where"].this, scope)
        return Source(inner.slug, inner.table, columns, display, where)

    def _star_of(self, item: exp.Expression) -> tuple[str | None, exp.Star] | None:
        """(table qualifier or None, star) if the select item is * or t.*."""
        if isinstance(item, exp.Star):
            star, table = item, None
        elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            if item.args.get("db") or item.args.get("catalog"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "column references are table.column")
            star, table = item.this, str(item.table).lower()
        else:
            return None
        if star_has_modifiers(star):
            raise PolicyViolation(STAR_EXPANSION, "EXCLUDE, REPLACE and RENAME are not allowed")
        return table, star

    def _from(
        self, select: exp.Select, ctes: dict[str, Source]
    ) -> tuple[Scope, list[tuple[Col, Col]]]:
        scope: Scope = [self._source(select.args["from_"].this, ctes)]
        joins: list[tuple[Col, Col]] = []
        for join in select.args.get("joins") or []:
            for key, value in join.args.items():
                if value and key not in ("this", "on", "using", "kind"):
                    raise PolicyViolation(FORBIDDEN_JOIN, "only INNER JOIN on the entity key")
            if (join.args.get("kind") or "INNER").upper() != "INNER":
                raise PolicyViolation(FORBIDDEN_JOIN, "only INNER JOIN on the entity key")
            alias, src = self._source(join.this, ctes)
            if any(a == alias for a, _ in scope):
                raise PolicyViolation(FORBIDDEN_JOIN, "self-joins are not allowed")
            scope.append((alias, src))
            joins.append(self._join_condition(join, scope))
        slugs = [src.slug for _, src in scope]
        if len(set(slugs)) != len(slugs):
            raise PolicyViolation(FORBIDDEN_JOIN, "self-joins are not allowed")
        return scope, joins

    def _join_condition(self, join: exp.Join, scope: Scope) -> tuple[Col, Col]:
        refuse = PolicyViolation(
            FORBIDDEN_JOIN, "joins must be ON a.entity_key = b.entity_key of two licensed tables"
        )
        new_alias, new = scope[-1]
        earlier = scope[:-1]
        using = join.args.get("using")
        on = join.args.get("on")
        if using:
            if on or len(using) != 1:
                raise refuse
            name = ident(using[0]).lower()
            right = new.columns.get(name)
            lefts = [src.columns[name] for _, src in earlier if name in src.columns]
            if right is None or len(lefts) != 1:
                raise refuse
            left = lefts[0]
        elif on is not None:
            cond = unparen(on)
            if not (isinstance(cond, exp.EQ) and isinstance(cond.this, exp.Column)):
                raise refuse
            if not isinstance(cond.expression, exp.Column):
                raise refuse
            check_expression(cond, aggregates=self.aggregates)
            a = self._resolve(cond.this, scope)
            b = self._resolve(cond.expression, scope)
            if b.slug != new.slug:
                a, b = b, a
            left, right = a, b
            if right.slug != new.slug or left.slug == new.slug:
                raise refuse
        else:
            raise refuse
        if left.spec.kind != "entity_key" or right.spec.kind != "entity_key":
            raise refuse
        return left, right

    def _resolve(self, col: exp.Column, scope: Scope) -> Col:
        found = self._try_resolve(col, scope)
        if found is None:
            raise PolicyViolation(NOT_LICENSED, f"column {short(str(col.name))} is not licensed")
        return found

    def _try_resolve(self, col: exp.Column, scope: Scope) -> Col | None:
        if col.args.get("db") or col.args.get("catalog"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "column references are table.column")
        name = str(col.name).lower()
        table = str(col.table).lower() if col.table else None
        if table is not None:
            for alias, src in scope:
                if alias == table:
                    return src.columns.get(name)
            raise PolicyViolation(NOT_LICENSED, f"table {short(str(col.table))} is not licensed")
        matches = [src.columns[name] for _, src in scope if name in src.columns]
        if len(matches) > 1:
            raise PolicyViolation(AMBIGUOUS_COLUMN, f"column {short(name)} is ambiguous")
        return matches[0] if matches else None

    # -- expressions ------------------------------------------------------------------------

    def _rewrite(
        self,
        node: exp.Expression,
        scope: Scope,
        clause: str,
        aliases: dict[str, exp.Expression] | None = None,
    ) -> Expr:
        """Check `node` against the allowlist and rewrite its columns to "slug"."column".

        `aliases` (GROUP BY, HAVING, ORDER BY) lets an unqualified name that is not a column
        stand for a select item. Identifier columns may only be COUNTed.
        """
        tree = node.copy()
        if aliases:

            def substitute(n: exp.Expression) -> exp.Expression:
                if isinstance(n, exp.Column) and not n.table and isinstance(n.this, exp.Identifier):
                    low = str(n.name).lower()
                    if low in aliases and self._try_resolve(n, scope) is None:
                        if aliases[low] is AMBIGUOUS:
                            raise PolicyViolation(
                                AMBIGUOUS_COLUMN, f"alias {short(low)} is ambiguous"
                            )
                        return aliases[low].copy()
                return n

            tree = tree.transform(substitute, copy=False)
        check_expression(tree, aggregates=self.aggregates)
        cols: dict[int, Col] = {}

        def qualify(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Column):
                base = self._resolve(n, scope)
                if base.spec.is_identifying and not counted(n):
                    compared = isinstance(n.parent, _PREDICATES)
                    rule = (
                        IDENTIFIER_FILTER
                        if compared or clause in ("where", "having")
                        else IDENTIFIER_OUTPUT
                    )
                    verb = "filtered on" if rule == IDENTIFIER_FILTER else "output or grouped on"
                    raise PolicyViolation(
                        rule, f"identifier column {short(base.name)} may not be {verb}"
                    )
                new = base.node()
                cols[id(new)] = base
                return new
            return n

        tree = tree.transform(qualify, copy=False)
        return Expr(tree, cols)


AMBIGUOUS = exp.Null()  # marker in alias maps for an alias used twice
_PREDICATES = (
    exp.EQ,
    exp.NEQ,
    exp.LT,
    exp.LTE,
    exp.GT,
    exp.GTE,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Like,
    exp.ILike,
)


def counted(col: exp.Column) -> bool:
    """True if the column is the whole argument of COUNT(x) or COUNT(DISTINCT x)."""
    parent = col.parent
    if isinstance(parent, exp.Count) and parent.this is col:
        return True
    return (
        isinstance(parent, exp.Distinct)
        and len(parent.expressions) == 1
        and isinstance(parent.parent, exp.Count)
        and parent.parent.this is parent
    )
