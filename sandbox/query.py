"""The checked query: what the policy hands to the engine and to post-processing."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Mode = Literal["rows", "aggregate"]
OutputKind = Literal["value", "dimension", "count", "sum", "avg"]
ReleaseKind = Literal["threshold", "count", "sum"]

# Names of the hidden objects shared by policy, engine and post-processing.
ENTITY_ROWS_VIEW = "__sbx_entity_rows"  # (slug, max_rows) per table, created by the engine
ENTITY_HASH_COLUMN = "__sbx_eh"  # 64-bit hash of the entity key, added to every view
DISTINCT_COLUMN = "__sbx_d"  # aggregate mode: distinct entities per group, after bounding
# Aggregate mode returns every candidate group to post-processing (the noisy threshold needs
# them all); beyond this many, the groups with the fewest entities are dropped first.
MAX_CANDIDATE_GROUPS = 100_000


@dataclass(frozen=True)
class ViewSpec:
    """A view the engine must create: `slug` over the dataset file, exposing `columns` only."""

    slug: str
    columns: tuple[str, ...]
    entity_key: str


@dataclass(frozen=True)
class StoredTable:
    """A table's Parquet file named by its storage key and SHA-256, not by a local path: what a
    query host on another machine is sent, to fetch (and check) the file from its own storage."""

    key: str
    sha256: str | None = None


@dataclass(frozen=True)
class OutputColumn:
    """One visible output column.

    `sensitivity` is how much one entity can move this value, after contribution bounding
    (the L1 sensitivity of its release, all groups together); None for dimensions, row values
    and averages (a ratio of two releases).
    """

    name: str
    kind: OutputKind
    sensitivity: Decimal | None = None


@dataclass(frozen=True)
class Release:
    """One noisy release of an aggregate-mode query (OpenDP measurement).

    - `threshold`: the noisy count of distinct entities per group; groups whose noisy count is
      below `threshold` (tau) are withheld (Wilson et al. 2020). Its input distance is
      (l0, l1, linf) = (groups per entity, groups per entity, 1).
    - `count`: integer vector, discrete Laplace; `sum`: float vector, Laplace.

    `epsilon`/`delta` are what OpenDP's privacy map reports for `sensitivity` at `scale`.
    """

    name: str  # the measurement, e.g. COUNT(*) or SUM("t"."x"); "threshold" for the selection
    kind: ReleaseKind
    column: str  # engine column holding the bounded exact value
    sensitivity: Decimal
    scale: float
    epsilon: Decimal
    delta: Decimal = Decimal(0)
    threshold: int | None = None


@dataclass(frozen=True)
class OutputPlan:
    """How post-processing builds one visible output of an aggregate-mode query.

    `dimension`: the group key in engine column `column`. `count`/`sum`: release `release`.
    `distinct`: the threshold's noisy count (grouped) or release `release` (no GROUP BY).
    `avg`: release `release` (the SUM) over release `count_release` (the COUNT), clamped into
    [lower, upper].
    """

    kind: Literal["dimension", "count", "sum", "avg", "distinct"]
    column: str | None = None
    release: int | None = None
    count_release: int | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None


@dataclass(frozen=True)
class HavingTerm:
    """A HAVING conjunct evaluated on the released (noisy) value of output `output`."""

    output: int
    op: Literal["=", "<>", "<", "<=", ">", ">=", "between"]
    values: tuple[Decimal, ...]


@dataclass(frozen=True)
class SortTerm:
    """An ORDER BY term applied after noise: output `output`, or hidden key column `column`."""

    output: int | None
    column: str | None
    desc: bool
    nulls_first: bool


@dataclass(frozen=True)
class DPPlan:
    """Everything post-processing needs to release an aggregate-mode answer."""

    epsilon: Decimal  # the per-query epsilon charged (>= the sum of the releases' epsilons)
    delta: Decimal  # charged delta: the table's delta if groups are selected, else 0
    max_groups_per_entity: int
    max_rows_per_entity: int
    releases: tuple[Release, ...]
    outputs: tuple[OutputPlan, ...]
    group_columns: tuple[str, ...]  # engine columns of the group keys
    threshold: int | None  # index of the threshold release (None without GROUP BY)
    having: tuple[HavingTerm, ...]
    order: tuple[SortTerm, ...]
    limit: int | None
    offset: int | None

    @property
    def epsilon_split(self) -> tuple[tuple[str, Decimal], ...]:
        """(release name, epsilon) for every release, in order."""
        return tuple((r.name, r.epsilon) for r in self.releases)


# The per-entity rollup of a prepared file (`sandbox.engine`): one row per (entity hash,
# dimension values) with these columns besides the dimensions and the entity hash.
ROLLUP_ROWS = "__sbx_n"  # the cell's row count
ROLLUP_COUNT_PREFIX = "__sbx_c:"  # + measure name: the cell's non-NULL count of the measure
ROLLUP_SUM_PREFIX = "__sbx_s:"  # + measure name: the cell's exact SUM of the measure


# The per-entity pivot of a rollup (`sandbox._worker.build_rollup`): per entity, each rollup
# column once per combination of the varying dimensions (`pivot_column`); the combinations
# file numbers them in PIVOT_INDEX.
PIVOT_INDEX = "__sbx_j"


def pivot_column(name: str, combination: int) -> str:
    """The pivot's column holding rollup column `name` of combination `combination`."""
    return f"{name}@{combination}"


@dataclass(frozen=True)
class PivotPlan:
    """The parts of a rollup question from which the engine writes it over the per-entity
    pivot of the rollup (`sandbox.sqlgen.pivot_template`), once it knows which dimensions of that
    rollup are constant per entity and which vary.

    - `keys`: (rendered key SQL, engine column) per group key;
    - `terms`: (rendered WHERE conjunct, the dimensions it reads) per conjunct;
    - `columns`: (engine column, per-entity kind, measure, final SQL over the per-entity
      column `__sbx_p<n>`) per bounded aggregate; kind is rows (COUNT(*)), count (COUNT(m)),
      sum (SUM(m)) or none (COUNT(DISTINCT entity): the final SQL alone).
    """

    keys: tuple[tuple[str, str], ...]
    terms: tuple[tuple[str, tuple[str, ...]], ...]
    columns: tuple[tuple[str, str, str | None, str], ...]


@dataclass(frozen=True)
class RollupPlan:
    """The same bounded SQL as `CheckedQuery.engine_sql`, written over the per-entity rollup.

    Valid only if the rollup of view `slug` has every column in `dimensions` as a dimension
    and every column in `measures` as an exact measure; the engine checks that and otherwise
    runs `engine_sql`. `sql` reads a view named `slug` over the rollup file. `constant_sql`
    is the same bounding without the group choice, valid only if every column of
    `key_dimensions` (those the group keys read) has one value per entity in the data (the
    rollup records which do): each entity is then in one group only.
    """

    slug: str
    sql: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    key_dimensions: tuple[str, ...] = ()
    constant_sql: str | None = None
    pivot: PivotPlan | None = None


@dataclass(frozen=True)
class CheckedQuery:
    """A query the policy accepted, rewritten for the engine.

    - `engine_sql`: DuckDB SQL over views named by slug. In aggregate mode it bounds each
      entity's contribution and returns every candidate group with its bounded aggregates;
      noise, the group threshold, HAVING, ORDER BY and LIMIT are applied by `postprocess`.
    - `canonical`: normalized SQL (aliases removed, AND terms and IN lists sorted, columns
      written as slug.column); equal for trivially rewritten queries. Hash it, do not run it.
    - `release_key`: a stable hash of the canonical text and every parameter that shapes the
      answer (privacy parameters, post-processing, row cap): the key of a release cache
      (the caller adds the data versions).
    - `engine_columns`: the columns `engine_sql` returns; `engine_row_cap` how many rows the
      engine must fetch (the row cap in rows mode, every candidate group in aggregate mode).
    - `epsilon_cost` / `delta_cost`: the privacy budget the query spends on EACH table in
      `charged_tables` (the conditional ones; sequential composition per dataset).
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
    engine_row_cap: int
    epsilon_cost: Decimal
    delta_cost: Decimal
    charged_tables: tuple[str, ...]
    release_key: str
    dp: DPPlan | None
    rollup: RollupPlan | None = None  # an equivalent form over the per-entity rollup
