"""Post-processing: from engine rows to what the caller may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .dp import apply_dp
from .engine import EngineResult
from .errors import EngineError
from .query import CheckedQuery


@dataclass(frozen=True)
class SandboxResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    suppressed_groups: int
    truncated: bool  # more rows existed than the row cap allowed


def postprocess(
    checked: CheckedQuery, result: EngineResult, *, dp_secret: bytes | str | None = None
) -> SandboxResult:
    """Keep released groups, add DP noise if planned, strip hidden columns, apply the row cap.

    In aggregate mode the engine SQL already dropped groups below k; the rows carry a pass
    marker (NULL on the sentinel row sent when no group passed) and the suppressed count.
    Raises EngineError if the engine's columns do not match the query; ValueError if the query
    needs DP and no secret is given.
    """
    if tuple(result.columns) != checked.engine_columns:
        raise EngineError("the engine returned unexpected columns", kind="engine")
    width = len(checked.output_columns)
    rows = list(result.rows)
    suppressed = 0
    if checked.mode == "aggregate":
        assert checked.k_column is not None and checked.suppressed_column is not None
        pass_idx = checked.engine_columns.index(checked.k_column)
        supp_idx = checked.engine_columns.index(checked.suppressed_column)
        if rows:
            suppressed = int(rows[0][supp_idx] or 0)
        rows = [r for r in rows if r[pass_idx] is True]
        if checked.dp is not None:
            if dp_secret is None:
                raise ValueError("this query needs a DP secret")
            rows = apply_dp(checked, rows, dp_secret)
    truncated = result.truncated or len(rows) > checked.row_cap
    rows = [tuple(r[:width]) for r in rows[: checked.row_cap]]
    return SandboxResult(checked.output_columns, rows, suppressed, truncated)
