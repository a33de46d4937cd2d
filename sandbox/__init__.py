"""The data sandbox: a pure SQL policy (sqlglot) in front of a hardened DuckDB engine.

    checked = check(sql, PolicyContext(tables={slug: TableSpec(...)}))
    raw = DuckDBEngine().run(checked, {slug: parquet_path}, timeout_s=10)
    result = postprocess(checked, raw, dp_secret=...)

or `run_query(...)`, which does the three steps. Importing this package starts nothing; the
engine's worker processes start on first use (or `DuckDBEngine.start()`).
"""

from .dp import apply_dp, laplace_noise
from .engine import DuckDBEngine, Engine, EngineResult
from .errors import (
    RULES,
    EngineError,
    PolicyViolation,
    QueryTimeout,
    ResourceLimit,
    SandboxError,
)
from .policy import check
from .query import CheckedQuery, DPPlan, OutputColumn, ViewSpec
from .results import SandboxResult, postprocess
from .runner import QueryOutcome, run_query
from .specs import ColumnSpec, PolicyContext, TableSpec

__all__ = [
    "RULES",
    "CheckedQuery",
    "ColumnSpec",
    "DPPlan",
    "DuckDBEngine",
    "Engine",
    "EngineError",
    "EngineResult",
    "OutputColumn",
    "PolicyContext",
    "PolicyViolation",
    "QueryOutcome",
    "QueryTimeout",
    "ResourceLimit",
    "SandboxError",
    "SandboxResult",
    "TableSpec",
    "ViewSpec",
    "apply_dp",
    "check",
    "laplace_noise",
    "postprocess",
    "run_query",
]
