"""Allowlists of SQL expression nodes, functions and types (sqlglot classes).

The policy accepts an expression only if every node in it is listed here; anything sqlglot
knows but we do not list is refused. This is the first line of defence, so the lists are short
on purpose. Adding a function means checking that it reads only its arguments (no files, no
settings, no catalogue, no randomness) and cannot return an individual value from a group.
"""

from __future__ import annotations

from sqlglot import exp

from .errors import (
    FORBIDDEN_CONSTRUCT,
    FORBIDDEN_FUNCTION,
    FORBIDDEN_JOIN,
    NOT_SELECT,
    STAR_EXPANSION,
    PolicyViolation,
)

# Scalar functions: pure, row-local, read only their arguments.
SCALAR_FUNCTIONS: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Trim,
        exp.Substring,
        exp.Left,
        exp.Right,
        exp.Concat,
        exp.Replace,
        exp.Round,
        exp.Floor,
        exp.Ceil,
        exp.Abs,
        exp.Coalesce,
        exp.Nullif,
        exp.Cast,
        exp.TryCast,
        exp.Year,
        exp.Month,
        exp.Day,
        exp.Quarter,
        exp.TimestampTrunc,
        exp.DateTrunc,
        exp.Extract,
        exp.TimeToStr,
        exp.Least,
        exp.Greatest,
        exp.Case,
        exp.If,
    }
)
# Functions sqlglot does not model (exp.Anonymous), by lower-case name.
ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset({"date_part"})

# Aggregates over conditional data: none of them can return one row's value.
CONDITIONAL_AGGREGATES: frozenset[type[exp.Expression]] = frozenset({exp.Count, exp.Sum, exp.Avg})
# Open data is visible row by row anyway, so MIN and MAX leak nothing more there.
OPEN_AGGREGATES: frozenset[type[exp.Expression]] = CONDITIONAL_AGGREGATES | {exp.Min, exp.Max}

_OPERATORS: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Paren,
        exp.Neg,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.DPipe,
        exp.EQ,
        exp.NEQ,
        exp.LT,
        exp.LTE,
        exp.GT,
        exp.GTE,
        exp.And,
        exp.Or,
        exp.Not,
        exp.In,
        exp.Between,
        exp.Is,
        exp.Like,
        exp.ILike,
    }
)
_ATOMS: frozenset[type[exp.Expression]] = frozenset(
    {exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Interval}
)

_CAST_TYPES: frozenset[exp.DataType.Type] = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.INT128,
        exp.DataType.Type.UTINYINT,
        exp.DataType.Type.USMALLINT,
        exp.DataType.Type.UINT,
        exp.DataType.Type.UBIGINT,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,
        exp.DataType.Type.BOOLEAN,
    }
)

# Constructs named in the refusal so the caller learns why; checked before the generic rules.
_CONSTRUCTS: tuple[type[exp.Expression], ...] = (
    exp.Window,
    exp.Subquery,
    exp.Select,
    exp.Exists,
    exp.SetOperation,
    exp.Rollup,
    exp.Cube,
    exp.GroupingSets,
    exp.Pivot,
    exp.TableSample,
    exp.Qualify,
    exp.Filter,
    exp.Placeholder,
    exp.Parameter,
    exp.Lambda,
    exp.Dot,
    exp.Bracket,
    exp.Array,
    exp.Struct,
    exp.Alias,
)


def refuse_node(node: exp.Expression) -> PolicyViolation:
    """The violation to raise for a node that no allowlist accepts."""
    if isinstance(node, exp.IgnoreNulls | exp.RespectNulls) and isinstance(node.this, exp.Func):
        return refuse_node(node.this)  # ANY_VALUE(x) parses as IGNORE NULLS around it
    if isinstance(node, exp.Columns):
        return PolicyViolation(STAR_EXPANSION, "COLUMNS(...) expansion is not allowed")
    if isinstance(node, exp.Lateral):
        return PolicyViolation(FORBIDDEN_JOIN, "LATERAL is not allowed")
    if isinstance(node, exp.Window):
        return PolicyViolation(FORBIDDEN_CONSTRUCT, "window functions are not allowed")
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists):
        return PolicyViolation(FORBIDDEN_CONSTRUCT, "subqueries are only allowed in FROM and WITH")
    if isinstance(node, exp.Rollup | exp.Cube | exp.GroupingSets):
        return PolicyViolation(
            FORBIDDEN_CONSTRUCT, "GROUPING SETS, ROLLUP and CUBE are not allowed"
        )
    if isinstance(node, _CONSTRUCTS):
        return PolicyViolation(FORBIDDEN_CONSTRUCT, f"{_kind(node)} is not allowed here")
    if isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Into):
        return PolicyViolation(NOT_SELECT, "only a plain SELECT is allowed")
    if isinstance(node, exp.Func):
        return PolicyViolation(
            FORBIDDEN_FUNCTION, f"function {function_name(node)} is not on the allowlist"
        )
    return PolicyViolation(FORBIDDEN_CONSTRUCT, f"{_kind(node)} is not allowed")


def function_name(node: exp.Expression) -> str:
    """The SQL name of a function node, upper case (for messages)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()[:64]
    if isinstance(node, exp.Func):
        return node.sql_name()
    return type(node).__name__.upper()


def _kind(node: exp.Expression) -> str:
    return type(node).__name__.upper()


def check_expression(root: exp.Expression, *, aggregates: frozenset[type[exp.Expression]]) -> None:
    """Refuse `root` unless every node under it is allowlisted in its position.

    `aggregates` is the aggregate allowlist of the query's mode. Raises PolicyViolation.
    """
    stack: list[exp.Expression] = [root]
    while stack:
        node = stack.pop()
        _check_node(node, aggregates)
        # Children are pushed after the parent was accepted, so a window or subquery is named
        # before the functions inside it.
        for child in node.iter_expressions():
            stack.append(child)


def _check_node(node: exp.Expression, aggregates: frozenset[type[exp.Expression]]) -> None:
    cls = type(node)
    parent = node.parent
    if cls in _ATOMS or cls in _OPERATORS:
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise PolicyViolation(STAR_EXPANSION, "t.* is only allowed as a select item")
            if node.args.get("db") or node.args.get("catalog"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "column references are table.column")
        elif isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise PolicyViolation(FORBIDDEN_CONSTRUCT, "IN takes a list of literals only")
        elif isinstance(node, exp.Interval) and not isinstance(node.this, exp.Literal):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "INTERVAL takes a literal")
        elif isinstance(node, exp.Like | exp.ILike) and node.args.get("escape"):
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "LIKE ... ESCAPE is not allowed")
        return
    if cls is exp.Star:
        if isinstance(parent, exp.Count) and parent.this is node and not _star_modifiers(node):
            return
        raise PolicyViolation(STAR_EXPANSION, "* is only allowed as COUNT(*) or a select item")
    if cls is exp.Distinct:
        if isinstance(parent, exp.Count) and parent.this is node and len(node.expressions) == 1:
            if not node.args.get("on"):
                return
        raise PolicyViolation(FORBIDDEN_CONSTRUCT, "DISTINCT is only allowed as COUNT(DISTINCT x)")
    if cls is exp.DataType:
        if isinstance(parent, exp.Cast | exp.TryCast) and node.this in _CAST_TYPES:
            if not node.args.get("nested"):
                return
        raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this CAST target type is not allowed")
    if cls is exp.DataTypeParam:
        if isinstance(parent, exp.DataType) and isinstance(node.this, exp.Literal):
            return
        raise PolicyViolation(FORBIDDEN_CONSTRUCT, "this CAST target type is not allowed")
    if cls is exp.Var:
        if isinstance(parent, exp.TimestampTrunc | exp.DateTrunc | exp.Extract | exp.Interval):
            return
        raise PolicyViolation(FORBIDDEN_CONSTRUCT, "keyword not allowed here")
    if cls in SCALAR_FUNCTIONS:
        return
    if cls is exp.Anonymous and str(node.name).lower() in ANONYMOUS_FUNCTIONS:
        return
    if cls in aggregates:
        if isinstance(node, exp.Count) and node.expressions:
            raise PolicyViolation(FORBIDDEN_CONSTRUCT, "COUNT takes one argument")
        return
    raise refuse_node(node)


def _star_modifiers(star: exp.Star) -> bool:
    return any(star.args.get(key) for key in ("except_", "replace", "rename", "ilike"))


def star_has_modifiers(star: exp.Star) -> bool:
    """True for * EXCLUDE/REPLACE/RENAME/ILIKE, which the policy never expands."""
    return _star_modifiers(star)
