"""What a license lets a query see: table and column specs (pure dataclasses)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Literal

ColumnKind = Literal["dimension", "measure", "identifier", "entity_key", "other"]
Grade = Literal["open", "conditional"]

COLUMN_KINDS: frozenset[str] = frozenset(
    {"dimension", "measure", "identifier", "entity_key", "other"}
)
# Identifiers the sandbox generates start with this prefix; user SQL may not use it.
RESERVED_PREFIX = "__sbx"
_SLUG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ColumnSpec:
    """One licensed column.

    - `dimension`: categorical or generalized, low cardinality; may be grouped and filtered on.
    - `measure`: numeric; in conditional tables it may only be aggregated.
    - `identifier` / `entity_key`: never output, grouped, transformed or compared with literals.
    - `other`: may be output from open tables; in conditional tables only counted.

    `lower`/`upper` are the department's declared range of ONE entity's contribution to one
    SUM: in aggregate mode each entity's total over its own rows of a group is clamped into
    them (public metadata; never percentiles of the data). Both or neither. A SUM or AVG of a
    column without them is refused.

    Raises ValueError for an unknown kind or inconsistent bounds.
    """

    name: str
    kind: ColumnKind
    lower: Decimal | None = None
    upper: Decimal | None = None

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")
        if not self.name:
            raise ValueError("column name is empty")
        if (self.lower is None) != (self.upper is None):
            raise ValueError(f"column {self.name!r}: give both bounds or neither")
        if self.lower is not None and self.upper is not None:
            lo, hi = _to_decimal(self.lower), _to_decimal(self.upper)
            if not (lo.is_finite() and hi.is_finite()) or lo > hi:
                raise ValueError(f"column {self.name!r}: bounds must be finite and lower <= upper")
            object.__setattr__(self, "lower", lo)
            object.__setattr__(self, "upper", hi)

    @property
    def is_identifying(self) -> bool:
        return self.kind in ("identifier", "entity_key")

    @property
    def bounded(self) -> bool:
        return self.lower is not None


@dataclass(frozen=True)
class TablePrivacy:
    """Entity-level differential privacy of a conditional table (public parameters).

    - `epsilon_per_query`: the epsilon one query spends on this table (split over the noisy
      group selection and the released measurements).
    - `delta`: the delta of the noisy group selection (tau-thresholding); `0 < delta <= 1e-4`.
    - `max_groups_per_entity`: how many groups of one query an entity may contribute to; its
      other groups are dropped (chosen by a hash, deterministically).
    - `max_rows_per_entity`: the most rows of one entity a COUNT counts in one group.

    Raises ValueError for values out of range, and for floats (use Decimal, int or str).
    """

    epsilon_per_query: Decimal
    delta: Decimal
    max_groups_per_entity: int = 1
    max_rows_per_entity: int = 12

    DEFAULT_EPSILON: ClassVar[Decimal] = Decimal("0.5")
    DEFAULT_DELTA: ClassVar[Decimal] = Decimal("1e-6")
    MAX_EPSILON: ClassVar[Decimal] = Decimal(10)
    MAX_DELTA: ClassVar[Decimal] = Decimal("1e-4")

    def __post_init__(self) -> None:
        eps, delta = _to_decimal(self.epsilon_per_query), _to_decimal(self.delta)
        if not eps.is_finite() or not Decimal(0) < eps <= self.MAX_EPSILON:
            raise ValueError(f"epsilon_per_query must be in (0, {self.MAX_EPSILON}]")
        if not delta.is_finite() or not Decimal(0) < delta <= self.MAX_DELTA:
            raise ValueError(f"delta must be in (0, {self.MAX_DELTA}]")
        for name, value, top in (
            ("max_groups_per_entity", self.max_groups_per_entity, 1000),
            ("max_rows_per_entity", self.max_rows_per_entity, 100_000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"{name} must be an integer in [1, {top}]")
        object.__setattr__(self, "epsilon_per_query", eps)
        object.__setattr__(self, "delta", delta)

    @classmethod
    def default(cls, epsilon_per_query: Decimal | None = None) -> TablePrivacy:
        """The platform's defaults (epsilon 0.5 per query, delta 1e-6, one group and 12 rows
        per entity), optionally with another epsilon."""
        return cls(
            epsilon_per_query if epsilon_per_query is not None else cls.DEFAULT_EPSILON,
            cls.DEFAULT_DELTA,
        )

    @staticmethod
    def combine(privacies: Sequence[TablePrivacy]) -> TablePrivacy:
        """The strictest of several tables' parameters (a join of conditional tables)."""
        return TablePrivacy(
            min(p.epsilon_per_query for p in privacies),
            min(p.delta for p in privacies),
            min(p.max_groups_per_entity for p in privacies),
            min(p.max_rows_per_entity for p in privacies),
        )


@dataclass(frozen=True)
class TableSpec:
    """A licensed table: a stable slug over one desensitized Parquet file.

    `columns` holds only the licensed columns. The entity key (the pseudonymized subject id) is
    always available for COUNT(DISTINCT ...) and joins, even when it is not in `columns`; it is
    the privacy unit of a conditional table.

    `privacy` is the entity-level differential privacy of a conditional table (every answer
    on conditional data is noisy; there is no k-only mode). Open tables have none.

    Legacy inputs, kept so that older callers still build specs: `k_min` is validated and
    ignored; `dp_epsilon_per_query`, when `privacy` is None, sets the epsilon of
    `TablePrivacy.default()`. A conditional table without `privacy` gets those defaults.

    Raises ValueError for an invalid slug, grade, k_min, epsilon, privacy or entity-key spec.
    """

    slug: str
    grade: Grade
    columns: Mapping[str, ColumnSpec]
    entity_key: str
    k_min: int = 10
    dp_epsilon_per_query: Decimal | None = None
    privacy: TablePrivacy | None = None
    # Filled in by __post_init__: the entity key's spec and every visible column by lower name.
    _by_lower: Mapping[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug) or self.slug.lower().startswith(RESERVED_PREFIX):
            raise ValueError(f"invalid table slug {self.slug!r}")
        if self.grade not in ("open", "conditional"):
            raise ValueError(f"unknown grade {self.grade!r}")
        if isinstance(self.k_min, bool) or not isinstance(self.k_min, int) or self.k_min < 2:
            raise ValueError("k_min must be an integer >= 2")
        if self.dp_epsilon_per_query is not None:
            eps = _to_decimal(self.dp_epsilon_per_query)
            if not eps.is_finite() or eps <= 0:
                raise ValueError("dp_epsilon_per_query must be positive")
            object.__setattr__(self, "dp_epsilon_per_query", eps)
        if self.privacy is not None and not isinstance(self.privacy, TablePrivacy):
            raise ValueError("privacy must be a TablePrivacy")
        if self.grade == "open" and self.privacy is not None:
            raise ValueError("open tables have no privacy parameters")
        if self.grade == "conditional" and self.privacy is None:
            object.__setattr__(self, "privacy", TablePrivacy.default(self.dp_epsilon_per_query))
        if not self.entity_key:
            raise ValueError("entity_key is required")
        by_lower: dict[str, ColumnSpec] = {}
        for key, spec in self.columns.items():
            if key != spec.name:
                raise ValueError(f"column key {key!r} differs from its spec name {spec.name!r}")
            low = key.lower()
            if low in by_lower:
                raise ValueError(f"duplicate column {key!r} (names are case-insensitive)")
            if low.startswith(RESERVED_PREFIX):
                raise ValueError(f"column name {key!r} uses the reserved prefix")
            if spec.kind == "entity_key" and low != self.entity_key.lower():
                raise ValueError(f"column {key!r} is marked entity_key but is not the entity key")
            by_lower[low] = spec
        ek = by_lower.get(self.entity_key.lower())
        if ek is None:
            by_lower[self.entity_key.lower()] = ColumnSpec(self.entity_key, "entity_key")
        elif ek.kind != "entity_key":
            raise ValueError("the entity key column must have kind 'entity_key'")
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "_by_lower", MappingProxyType(by_lower))

    def column(self, name: str) -> ColumnSpec | None:
        """The visible column called `name` (case-insensitive, like DuckDB), or None."""
        return self._by_lower.get(name.lower())

    @property
    def visible_columns(self) -> tuple[ColumnSpec, ...]:
        """Licensed columns plus the entity key, in spec order (the engine view's columns)."""
        return tuple(self._by_lower.values())

    @property
    def entity_key_spec(self) -> ColumnSpec:
        return self._by_lower[self.entity_key.lower()]


@dataclass(frozen=True)
class PolicyContext:
    """The tables one license grants, keyed by slug, and the result row cap."""

    tables: Mapping[str, TableSpec]
    row_cap: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.row_cap, bool) or not isinstance(self.row_cap, int) or self.row_cap < 1:
            raise ValueError("row_cap must be a positive integer")
        by_lower: dict[str, TableSpec] = {}
        for slug, spec in self.tables.items():
            if slug != spec.slug:
                raise ValueError(f"table key {slug!r} differs from its slug {spec.slug!r}")
            if slug.lower() in by_lower:
                raise ValueError(f"duplicate table slug {slug!r}")
            by_lower[slug.lower()] = spec
        object.__setattr__(self, "tables", MappingProxyType(by_lower))

    def table(self, name: str) -> TableSpec | None:
        return self.tables.get(name.lower())


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        # Floats are refused: a bound like 0.1 would silently become 0.1000000000000000055...
        raise ValueError("bounds, epsilon and delta must be Decimal, int or str")
    try:
        return Decimal(value)
    except ArithmeticError as exc:  # decimal.InvalidOperation for "abc"
        raise ValueError(f"not a number: {value!r}") from exc
