"""The checked query: what the policy hands to the engine and to post-processing."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Mode = Literal["rows", "aggregate"]
OutputKind = Literal["value", "dimension", "count", "sum", "avg"]

# Names of the hidden objects shared by policy, engine and post-processing.
ENTITY_ROWS_VIEW = "__sbx_entity_rows"  # (slug, max_rows): max rows per entity, from the engine
ENTITY_HASH_COLUMN = "__sbx_eh"  # hash of the entity key, added to every view by the engine
PASS_COLUMN = "__sbx_pass"  # TRUE on a released group; NULL on the "no groups" sentinel row
SUPPRESSED_COLUMN = "__sbx_supp"  # number of groups below k, repeated on every row


@dataclass(frozen=True)
class ViewSpec:
    """A view the engine must create: `slug` over the dataset file, exposing `columns` only."""

    slug: str
    columns: tuple[str, ...]
    entity_key: str


@dataclass(frozen=True)
class OutputColumn:
    """One visible output column.

    `sensitivity` is the L1 sensitivity of one record on this value (1 for counts, the largest
    absolute clamp bound for sums and averages), None for dimensions and row values.
    """

    name: str
    kind: OutputKind
    sensitivity: Decimal | None = None


@dataclass(frozen=True)
class DPMeasurement:
    """The noisy release behind one output.

    COUNT and SUM release their own value. AVG releases a clamped SUM (`canonical`, `scale`)
    and a COUNT (`count_canonical`, `count_scale`) from two hidden engine columns, and shows
    their ratio, clamped into [lower, upper].
    """

    output_index: int
    kind: Literal["count", "sum", "avg"]
    canonical: str  # the measurement itself, for example SUM("t"."amount")
    sensitivity: Decimal
    scale: Decimal  # Laplace scale b = sensitivity / (epsilon share)
    lower: Decimal | None = None
    upper: Decimal | None = None
    sum_column: str | None = None  # engine column names of the AVG parts
    count_column: str | None = None
    count_canonical: str | None = None
    count_scale: Decimal | None = None


@dataclass(frozen=True)
class DPPlan:
    epsilon: Decimal  # what the query costs; equal to CheckedQuery.epsilon_cost
    scope: str  # canonical FROM ... WHERE ... GROUP BY ...: what the groups are drawn from
    measurements: tuple[DPMeasurement, ...]
    group_columns: tuple[str, ...]  # engine column names of the group keys (for the seed)


@dataclass(frozen=True)
class CheckedQuery:
    """A query the policy accepted, rewritten for the engine.

    - `engine_sql`: DuckDB SQL over views named by slug. In aggregate mode it already drops
      groups below k and reports how many (`SUPPRESSED_COLUMN`), so `postprocess` only strips.
    - `canonical`: normalized SQL (aliases removed, AND terms and IN lists sorted, columns
      written as slug.column); equal for trivially rewritten queries. Hash it, do not run it.
    - `engine_columns`: the columns `engine_sql` returns, visible ones first.
    - `epsilon_cost`: the differential-privacy budget the query spends (0 without DP).
    """

    engine_sql: str
    canonical: str
    mode: Mode
    output_columns: tuple[str, ...]
    outputs: tuple[OutputColumn, ...]
    engine_columns: tuple[str, ...]
    tables_used: tuple[str, ...]
    views: tuple[ViewSpec, ...]
    row_cap: int
    k_min: int | None
    k_column: str | None
    suppressed_column: str | None
    epsilon_cost: Decimal
    dp: DPPlan | None
