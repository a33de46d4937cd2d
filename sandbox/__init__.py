"""The data sandbox: a pure SQL policy (sqlglot) in front of a hardened DuckDB engine.

    checked = check(sql, PolicyContext(tables={slug: TableSpec(...)}))
    raw = DuckDBEngine().run(checked, {slug: parquet_path}, timeout_s=10)
    result = postprocess(checked, raw)  # noise: OpenDP, fresh each time

or `run_query(...)`, which does the three steps. Importing this package starts nothing; the
engine's worker processes start on first use (or `DuckDBEngine.start()`).
"""

from .dp import Noise, NoNoise, OpenDPNoise, laplace_noise  # noqa: F401 - laplace_noise: old name
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
from .query import CheckedQuery, DPPlan, OutputColumn, Release, ViewSpec
from .results import ErrorBound, SandboxResult, postprocess
from .runner import QueryOutcome, run_query
from .specs import ColumnSpec, PolicyContext, TablePrivacy, TableSpec

__all__ = [
    "RULES",
    "CheckedQuery",
    "ColumnSpec",
    "DPPlan",
    "DuckDBEngine",
    "Engine",
    "EngineError",
    "EngineResult",
    "ErrorBound",
    "NoNoise",
    "Noise",
    "OpenDPNoise",
    "OutputColumn",
    "PolicyContext",
    "PolicyViolation",
    "QueryOutcome",
    "QueryTimeout",
    "Release",
    "ResourceLimit",
    "SandboxError",
    "SandboxResult",
    "TablePrivacy",
    "TableSpec",
    "ViewSpec",
    "check",
    "postprocess",
    "run_query",
]
