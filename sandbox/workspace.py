"""A license's workspace: the tables and columns it grants, read from the database.

Each licensed dataset is one table named by its stable slug, over the dataset's *current*
version, exposing only the licensed columns plus the entity key (for joins and the k-threshold;
the policy never lets it be output). This module turns those rows into the pure
`sandbox.PolicyContext` and the slug -> Parquet file map the engine reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from market.datasets.models import ColumnRole, Dataset, OpenGrade, Treatment, VersionStatus
from market.datasets.privacy import PrivacySettings, effective_privacy

from . import specs
from .query import StoredTable
from .specs import ColumnSpec, PolicyContext, TableSpec

log = logging.getLogger(__name__)

#: Treatments after which a column still identifies someone (a pseudonym, a masked number):
#: whatever role the upload declared, the sandbox treats such a column as an identifier.
_IDENTIFYING_TREATMENTS = frozenset({Treatment.pseudonymized.value, Treatment.masked.value})


@dataclass(frozen=True)
class SandboxSettings:
    """What the app config decides for every workspace (see ``market.config``)."""

    row_cap: int = 1000
    timeout_s: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SandboxSettings:
        """Raises ValueError for a non-positive cap or timeout. (Privacy parameters are the
        dataset's own: ``market.datasets.privacy``.)"""
        settings = cls(
            row_cap=int(config.get("MARKET_SANDBOX_ROW_CAP", 1000)),
            timeout_s=float(config.get("MARKET_SANDBOX_TIMEOUT_S", 10)),
        )
        if settings.row_cap < 1 or settings.timeout_s <= 0:
            raise ValueError("sandbox settings must be positive")
        return settings


@dataclass(frozen=True)
class WorkspaceColumn:
    name: str
    type: str
    #: The role the department declared (dimension, measure, identifier, entity_key, other).
    role: str
    #: How the policy treats it: the role, or ``identifier`` for pseudonymized/masked columns.
    kind: str
    treatment: str
    lower: Decimal | None = None
    upper: Decimal | None = None


@dataclass(frozen=True)
class WorkspaceTable:
    dataset_id: int
    slug: str
    title: str
    grade: str
    k_min: int
    version: int
    #: The id of that version (the per-version privacy ledger's key).
    version_id: int
    entity_key: str
    columns: tuple[WorkspaceColumn, ...]
    #: The differential-privacy settings (every conditional dataset), else None.
    privacy: PrivacySettings | None
    #: The Parquet file's storage key (relative to MARKET_DATA_DIR).
    parquet_key: str
    #: Its SHA-256 as recorded at publication (a query host that fetches it checks it).
    parquet_sha256: str | None = None

    @property
    def dp_epsilon_per_query(self) -> Decimal | None:
        return None if self.privacy is None else self.privacy.epsilon_per_query

    def spec(self) -> TableSpec:
        kw: dict[str, Any] = {}
        if self.privacy is not None:
            kw["privacy"] = specs.TablePrivacy(
                epsilon_per_query=self.privacy.epsilon_per_query,
                delta=self.privacy.delta,
                max_groups_per_entity=self.privacy.max_groups_per_entity,
                max_rows_per_entity=self.privacy.max_rows_per_entity,
            )
        return TableSpec(
            slug=self.slug,
            grade=self.grade,  # type: ignore[arg-type]
            columns={
                c.name: ColumnSpec(c.name, c.kind, c.lower, c.upper)  # type: ignore[arg-type]
                for c in self.columns
            },
            entity_key=self.entity_key,
            k_min=self.k_min,
            **kw,
        )


@dataclass(frozen=True)
class Workspace:
    license_id: int
    tables: tuple[WorkspaceTable, ...]
    #: Titles of licensed datasets that cannot be queried now (no listed version, restricted…).
    unavailable: tuple[str, ...]
    row_cap: int

    def context(self) -> PolicyContext:
        return PolicyContext({t.slug: t.spec() for t in self.tables}, row_cap=self.row_cap)

    def files(self, local_path: Any) -> dict[str, str]:
        """slug -> local Parquet path, through ``local_path(key)`` (the app's storage)."""
        return {t.slug: str(local_path(t.parquet_key)) for t in self.tables}

    def stored(self) -> dict[str, StoredTable]:
        """slug -> the Parquet file's storage key and digest, for a query host that fetches
        the files itself from its own storage (``MARKET_SANDBOX_RUNNER=celery``)."""
        return {t.slug: StoredTable(t.parquet_key, t.parquet_sha256) for t in self.tables}

    @property
    def data_versions(self) -> str:
        """Which data the workspace reads, e.g. ``firms@2,loans@1``."""
        return ",".join(sorted(f"{t.slug}@{t.version}" for t in self.tables))

    @property
    def uses_dp(self) -> bool:
        return any(t.privacy is not None for t in self.tables)

    def table(self, slug: str) -> WorkspaceTable | None:
        low = slug.lower()
        return next((t for t in self.tables if t.slug.lower() == low), None)


def _tidy(value: Decimal | None) -> Decimal | None:
    """A bound without the column's trailing zeros: ``1000000.0000`` would make DuckDB clamp
    and sum an integer column as DECIMAL, which is slower and returns ``123.0000``."""
    if value is None:
        return None
    value = Decimal(value)
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


def _column(col: Any, ranges: Mapping[str, tuple[Decimal, Decimal]]) -> WorkspaceColumn:
    """A column; its clamp bounds are the department's declared range (public metadata),
    never figures derived from the data."""
    role = col.role
    kind = role
    if role != ColumnRole.entity_key and col.treatment in _IDENTIFYING_TREATMENTS:
        kind = ColumnRole.identifier.value
    lower = upper = None
    if col.name in ranges and kind == ColumnRole.measure.value:
        lower, upper = _tidy(ranges[col.name][0]), _tidy(ranges[col.name][1])
    return WorkspaceColumn(col.name, col.type, role, kind, col.treatment, lower, upper)


def table_for(
    dataset: Dataset, licensed: list[str], settings: SandboxSettings
) -> WorkspaceTable | None:
    """The table a license item grants, or None if the dataset cannot be queried now."""
    version = dataset.current_version
    if (
        version is None
        or version.status != VersionStatus.listed
        or not version.parquet_path
        or dataset.open_grade not in (OpenGrade.open.value, OpenGrade.conditional.value)
    ):
        return None  # only a reviewed, listed version is ever served
    privacy = effective_privacy(dataset)
    ranges = privacy.ranges if privacy is not None else {}
    granted, entity_key = _granted(version, set(licensed))
    if entity_key is None:
        return None
    columns = [_column(col, ranges) for col in granted]
    table = WorkspaceTable(
        dataset_id=dataset.id,
        slug=dataset.slug,
        title=dataset.title,
        grade=dataset.open_grade,
        k_min=max(int(dataset.k_min or 10), 2),
        version=version.version,
        version_id=version.id,
        entity_key=entity_key,
        columns=tuple(columns),
        privacy=privacy,
        parquet_key=version.parquet_path,
        parquet_sha256=version.parquet_sha256,
    )
    try:
        table.spec()  # refuses slugs and column sets the policy cannot serve
    except ValueError:
        log.warning("dataset %s cannot be served in the sandbox (invalid table spec)", dataset.id)
        return None
    return table


def _granted(version: Any, wanted: set[str] | None) -> tuple[list[Any], str | None]:
    """The version's columns a license of ``wanted`` (None: every column) sees, in the
    version's order (the entity key always, suppressed columns never), and the entity key."""
    columns: list[Any] = []
    entity_key: str | None = None
    for col in version.columns:
        if col.role == ColumnRole.entity_key:
            entity_key = col.name
            columns.append(col)
        elif (wanted is None or col.name in wanted) and col.treatment != Treatment.suppressed:
            columns.append(col)
    return columns, entity_key


def licensed_view(version: Any, licensed: list[str] | None) -> tuple[tuple[str, ...], str] | None:
    """The engine view's columns of a license of ``licensed`` (None: every column) over
    ``version`` (the same list and order as :func:`table_for` gives the engine through the
    policy's view), with the entity key; None if the version has no entity key. What the
    publication job prepares ahead of the first question (``sandbox.app_engine``)."""
    columns, entity_key = _granted(version, None if licensed is None else set(licensed))
    if entity_key is None:
        return None
    return tuple(c.name for c in columns), entity_key


def full_view(version: Any) -> tuple[tuple[str, ...], str] | None:
    """:func:`licensed_view` of a license of every column."""
    return licensed_view(version, None)


def build_workspace(lic: Any, settings: SandboxSettings) -> Workspace:
    """The workspace of license ``lic`` (its items' datasets at their current versions)."""
    tables: list[WorkspaceTable] = []
    unavailable: list[str] = []
    for item in lic.items:
        table = table_for(item.dataset, list(item.columns or []), settings)
        if table is None:
            unavailable.append(item.dataset.title)
        else:
            tables.append(table)
    return Workspace(lic.id, tuple(tables), tuple(unavailable), settings.row_cap)
