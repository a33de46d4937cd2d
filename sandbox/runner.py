"""One call from SQL text to a releasable result: check, run, post-process.

Quota, the privacy-budget ledger and audit logging belong to the caller (they need the
database); `before_run` is the hook where they go: it sees the checked query (its
`release_key`, `epsilon_cost`, `delta_cost`, `charged_tables`) after the policy accepted it and
before the engine runs, and may raise to stop it (for example: commit the charges, or answer
from the release cache instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .dp import Noise
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
    ctx: PolicyContext | None,
    tables: Mapping[str, str],
    engine: Engine,
    *,
    timeout_s: float = 10.0,
    noise: Noise | None = None,
    before_run: Callable[[CheckedQuery], None] | None = None,
    dp_secret: object = None,
    checked: CheckedQuery | None = None,
) -> QueryOutcome:
    """Check `sql` against `ctx`, run it on `engine` over `tables` (slug -> Parquet path).

    `checked`: the result of `check(sql, ctx)` if the caller already has it (the check is
    pure, so a caller may reuse it for the same SQL and context); `ctx` may then be None.
    `noise` defaults to OpenDP (fresh randomness); only tests pass another (`NoNoise`).
    `dp_secret` is ignored (noise is no longer seeded); it is accepted so that callers written
    before issue #12 keep working until they drop it.
    Raises PolicyViolation, QueryTimeout, ResourceLimit, EngineError, and whatever
    `before_run` raises.
    """
    del dp_secret
    started = time.perf_counter()
    if checked is None:
        if ctx is None:
            raise ValueError("a context is needed to check the query")
        checked = check(sql, ctx)
    if before_run is not None:
        before_run(checked)
    raw = engine.run(checked, tables, timeout_s=timeout_s)
    result = postprocess(checked, raw, noise=noise)
    return QueryOutcome(checked, result, (time.perf_counter() - started) * 1000)
