"""The sandbox policy: the first line of defence, pure and sqlglot-based.

`check(sql, ctx)` parses one statement, refuses anything outside the policy with a typed
`PolicyViolation(rule, message)`, and returns a `CheckedQuery` whose SQL is *regenerated* from
the checked tree: the engine never sees the caller's text.

How a query is understood:
- Every table reference resolves to a licensed slug. A CTE or a subquery in FROM is a named
  row filter over one source (it may pick and rename columns and add a WHERE), so the whole
  query flattens to `slug JOIN slug ... WHERE ... GROUP BY ...` over base columns. That flat
  form is both what runs and what the canonical text is built from.
- If any table used is `conditional`, the query is in aggregate mode, answered with
  entity-level differential privacy: every output is a GROUP BY dimension or COUNT/SUM/AVG,
  WHERE is an AND of dimension-vs-literal comparisons, each entity's contribution is bounded
  in the generated SQL, and which groups appear is decided by a noisy threshold after the
  engine (`sandbox.dp`, `sandbox.results`). Otherwise the query is in rows mode (open data,
  row cap only).
"""

from __future__ import annotations

from ..errors import PARSE_ERROR, PolicyViolation
from ..query import CheckedQuery
from ..specs import ColumnSpec, PolicyContext, TableSpec
from .parsing import parse
from .rules import QueryBuilder

__all__ = ["CheckedQuery", "ColumnSpec", "PolicyContext", "TableSpec", "check", "parse"]


def check(sql: str, ctx: PolicyContext) -> CheckedQuery:
    """Check `sql` against the license in `ctx` and rewrite it for the engine.

    Raises PolicyViolation with a stable rule code (see sandbox.errors.RULES).
    """
    tree = parse(sql)
    try:
        return QueryBuilder(ctx).build(tree)
    except RecursionError as exc:
        raise PolicyViolation(PARSE_ERROR, "the query is nested too deeply") from exc
