"""One call from SQL text to a releasable result: check, run, post-process.

Quota, the privacy-budget ledger and audit logging belong to the caller (they need the
database); `before_run` is the hook where they go: it sees the checked query (its canonical
text and `epsilon_cost`) after the policy accepted it and before the engine runs, and may
raise to stop it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .engine import Engine
from .policy import check
from .query import CheckedQuery
from .results import SandboxResult, postprocess
from .specs import PolicyContext


@dataclass(frozen=True)
class QueryOutcome:
    checked: CheckedQuery
    result: SandboxResult
    elapsed_ms: float  # check + engine + post-processing


def run_query(
    sql: str,
    ctx: PolicyContext,
    tables: Mapping[str, str],
    engine: Engine,
    *,
    timeout_s: float = 10.0,
    dp_secret: bytes | str | None = None,
    before_run: Callable[[CheckedQuery], None] | None = None,
) -> QueryOutcome:
    """Check `sql` against `ctx`, run it on `engine` over `tables` (slug -> Parquet path).

    `dp_secret` seeds the noise of tables with a privacy budget (for example a server key plus
    the license id); it is required when the query has a DP plan.
    Raises PolicyViolation, QueryTimeout, ResourceLimit, EngineError, and whatever
    `before_run` raises.
    """
    started = time.perf_counter()
    checked = check(sql, ctx)
    if checked.dp is not None and not dp_secret:
        raise ValueError("this license's tables need a DP secret")
    if before_run is not None:
        before_run(checked)
    raw = engine.run(checked, tables, timeout_s=timeout_s)
    result = postprocess(checked, raw, dp_secret=dp_secret)
    return QueryOutcome(checked, result, (time.perf_counter() - started) * 1000)
