"""The catalogue: search with facets, per-object visibility, the synthetic preview and the DCAT
export, for the web pages and the API alike (read-only: nothing here changes state).

A dataset's searchable figures (quality, rows, last update) are those of its current listed
version. Facet counts are "disjunctive": each facet is counted with every filter applied except
its own, so picking one category still shows how many datasets the other categories hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, selectinload

from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.accounts.permissions import is_active_member
from market.datasets import dcat
from market.datasets.models import Dataset, DatasetColumn, DatasetVersion, OpenGrade, VersionStatus
from market.datasets.permissions import can_read_dataset, can_see_unlisted, can_view_versions
from market.datasets.preview import Preview, PreviewColumn, synthetic_preview
from market.datasets.schemas import displayed_version, latest_version
from market.errors import NotFound
from market.i18n import N_, translate

#: (key, lowest score, highest score) — inclusive bounds, best first.
QUALITY_BANDS: tuple[tuple[str, int, int], ...] = (
    ("excellent", 90, 100),
    ("good", 75, 89),
    ("fair", 60, 74),
    ("poor", 0, 59),
)
UNSCORED = "unscored"
SORTS = ("updated", "quality", "title", "rows")
MAX_TERMS = 8
DEFAULT_PER_PAGE = 12
FACETS = ("category", "department", "grade", "security_level", "quality_band")


@dataclass(frozen=True)
class CatalogQuery:
    """A catalogue search. Every filter is optional; ``q`` matches all of its words."""

    q: str | None = None
    category: str | None = None
    department_id: int | None = None
    min_quality: int | None = None
    open_grade: str | None = None
    quality_band: str | None = None
    security_level: str | None = None
    sort: str = "updated"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    @property
    def terms(self) -> list[str]:
        return (self.q or "").split()[:MAX_TERMS]

    def active(self) -> dict[str, Any]:
        """The filters in use (for links that keep them)."""
        keys = (
            "q", "category", "department_id", "min_quality", "open_grade", "quality_band",
            "security_level",
        )
        out = {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, "")}
        if self.sort != "updated":
            out["sort"] = self.sort
        return out


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    #: Display name where the value is an id (departments).
    label: str | None = None


@dataclass
class CatalogPage:
    items: list[Dataset]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def quality_band(score: int | None) -> str:
    if score is None:
        return UNSCORED
    for key, low, high in QUALITY_BANDS:
        if low <= score <= high:
            return key
    return UNSCORED


class _Search:
    """The joins and filter conditions of one query, so that each facet can drop its own."""

    def __init__(self, query: CatalogQuery):
        self.query = query
        #: Listed datasets left out (their authorization agreement ended: read-time expiry).
        self.excluded: list[int] = []
        self.version = aliased(DatasetVersion, name="current")
        self.department = aliased(Organization, name="dept")
        score = self.version.quality_score
        whens = [
            (sa.and_(score >= low, score <= high), sa.literal(key))
            for key, low, high in QUALITY_BANDS
        ]
        self.band = sa.case(*whens, else_=sa.literal(UNSCORED))

    def base(self, *columns: Any) -> sa.Select:
        return (
            sa.select(*columns)
            .select_from(Dataset)
            .join(self.department, self.department.id == Dataset.department_id)
            .outerjoin(self.version, self.version.id == Dataset.current_version_id)
        )

    def conditions(self, without: str | None = None) -> list[Any]:
        q = self.query
        conds: list[Any] = [Dataset.status == VersionStatus.listed]
        if self.excluded:
            conds.append(Dataset.id.not_in(self.excluded))
        for term in q.terms:
            column_match = (
                sa.select(DatasetColumn.id)
                .where(
                    DatasetColumn.version_id == Dataset.current_version_id,
                    DatasetColumn.name.icontains(term, autoescape=True),
                )
                .exists()
            )
            conds.append(
                sa.or_(
                    Dataset.title.icontains(term, autoescape=True),
                    Dataset.description.icontains(term, autoescape=True),
                    Dataset.category.icontains(term, autoescape=True),
                    self.department.name.icontains(term, autoescape=True),
                    column_match,
                )
            )
        if q.category and without != "category":
            conds.append(Dataset.category == q.category)
        if q.department_id is not None and without != "department":
            conds.append(Dataset.department_id == q.department_id)
        if q.open_grade and without != "grade":
            conds.append(Dataset.open_grade == q.open_grade)
        if q.security_level and without != "security_level":
            conds.append(Dataset.security_level == q.security_level)
        if q.min_quality is not None:
            conds.append(self.version.quality_score >= q.min_quality)
        if q.quality_band and without != "quality_band":
            conds.append(self.band == q.quality_band)
        return conds

    def order(self) -> list[Any]:
        v = self.version
        updated = sa.func.coalesce(v.processed_at, Dataset.listed_at, Dataset.created_at)
        by = {
            "quality": [sa.nulls_last(v.quality_score.desc())],
            "title": [Dataset.title.asc()],
            "rows": [sa.nulls_last(v.row_count.desc())],
        }.get(self.query.sort, [])
        return [*by, updated.desc(), Dataset.id.desc()]


def _facet(session: Session, search: _Search, key: str) -> list[FacetValue]:
    if key == "department":
        cols = (Dataset.department_id, search.department.name)
    elif key == "category":
        cols = (Dataset.category,)
    elif key == "grade":
        cols = (Dataset.open_grade,)
    elif key == "security_level":
        cols = (Dataset.security_level,)
    else:
        cols = (search.band,)
    count = sa.func.count(Dataset.id)
    stmt = search.base(*cols, count).where(*search.conditions(without=key)).group_by(*cols)
    rows = session.execute(stmt).all()
    if key == "department":
        values = [FacetValue(str(r[0]), r[2], r[1]) for r in rows]
    else:
        values = [FacetValue(str(r[0]), r[1]) for r in rows]
    if key == "quality_band":
        order = [b[0] for b in QUALITY_BANDS] + [UNSCORED]
        return sorted(values, key=lambda f: order.index(f.value) if f.value in order else 99)
    return sorted(values, key=lambda f: (-f.count, f.label or f.value))


def search(session: Session, query: CatalogQuery, *, facets: bool = True) -> CatalogPage:
    """Listed datasets matching ``query``, one page of them, with facet counts.

    Never raises for odd filters: an unknown category or band simply matches nothing.
    """
    if query.sort not in SORTS:
        query = replace(query, sort="updated")
    from market.agreements.services import lapsed_dataset_ids

    s = _Search(query)
    # Datasets whose agreement ended before the sweeper ran are delisted already.
    s.excluded = sorted(lapsed_dataset_ids(session))
    where = s.conditions()
    total = session.scalar(s.base(sa.func.count(Dataset.id)).where(*where)) or 0
    stmt = (
        s.base(Dataset)
        .where(*where)
        .order_by(*s.order())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
        .options(selectinload(Dataset.current_version))
    )
    items = list(session.scalars(stmt).unique())
    page = CatalogPage(items=items, total=total, page=query.page, per_page=query.per_page)
    if facets:
        page.facets = {key: _facet(session, s, key) for key in FACETS}
    return page


def updated_at(dataset: Dataset) -> dt.datetime | None:
    """When the dataset's current content was produced (its listed version's processing)."""
    v = dataset.current_version
    return (v.processed_at if v else None) or dataset.listed_at or dataset.created_at


# -- one dataset ------------------------------------------------------------------------------


def get_visible(session: Session, actor: Actor, dataset_id: int) -> Dataset:
    """The dataset if ``actor`` may read it.

    Raises:
        NotFound: there is no such dataset, or it is not listed and the actor is neither its
            department, the operator nor the regulator (who may not know it exists), nor,
            once it is withdrawn, a buyer holding a license on it (:func:`holder_licenses`).
    """
    from market.agreements.services import is_lapsed

    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(translate(N_("No such dataset.")))
    if not can_read_dataset(actor, dataset) and not (
        dataset.withdrawn_at is not None and holder_licenses(session, actor, dataset)
    ):
        raise NotFound(translate(N_("No such dataset.")))
    if not can_see_unlisted(actor, dataset) and is_lapsed(session, dataset):
        raise NotFound(translate(N_("No such dataset.")))  # its agreement ended: delisted already
    return dataset


#: License statuses of a buyer who holds (or held) a dataset: it was granted, so the buyer
#: knows the dataset exists and keeps reading its page after a withdrawal.
HOLDER_STATUSES = ("active", "suspended", "expired", "revoked")


def holder_licenses(session: Session, actor: Actor, dataset: Dataset) -> list[Any]:
    """The licenses of ``actor``'s buyer organization that were granted on ``dataset``, newest
    first (empty for anyone but a buyer)."""
    if actor.role != "buyer" or actor.org_id is None or not is_active_member(actor):
        return []
    from licenses.models import License, LicenseItem

    return list(session.scalars(
        sa.select(License)
        .join(LicenseItem, LicenseItem.license_id == License.id)
        .where(
            LicenseItem.dataset_id == dataset.id,
            License.buyer_org_id == actor.org_id,
            License.status.in_(HOLDER_STATUSES),
        )
        .order_by(License.id.desc())
    ))


def visible_versions(actor: Actor, dataset: Dataset) -> list[DatasetVersion]:
    """Version history, newest first: all versions for owner, operator and regulator; only the
    versions that were listed for everyone else."""
    versions = list(reversed(dataset.versions))
    if can_view_versions(actor, dataset):
        return versions
    shown = {VersionStatus.listed, VersionStatus.superseded}
    return [v for v in versions if v.status in shown]


def pending_version(dataset: Dataset) -> DatasetVersion | None:
    """The latest version if it waits for review (possibly after an older listed one)."""
    latest = latest_version(dataset)
    return latest if latest is not None and latest.status == VersionStatus.pending_review else None


def report_columns(version: DatasetVersion) -> dict[str, dict[str, Any]]:
    """The pipeline report's per-column entries (no values), by published column name."""
    report = version.report or {}
    out: dict[str, dict[str, Any]] = {}
    for entry in report.get("columns") or []:
        if isinstance(entry, dict):
            for key in ("output_name", "name"):
                if entry.get(key):
                    out.setdefault(str(entry[key]), entry)
    return out


def preview_columns(version: DatasetVersion) -> list[PreviewColumn]:
    reported = report_columns(version)
    return [
        PreviewColumn(
            name=c.name,
            type=c.type,
            pii_kind=c.pii_kind,
            treatment=c.treatment,
            role=c.role,
            profile=c.profile,
            generalization=(reported.get(c.name) or {}).get("generalization"),
        )
        for c in version.columns
    ]


def preview(dataset: Dataset, rows: int = 10) -> Preview | None:
    """Synthetic rows for the dataset's displayed version (None before it has columns).

    Built from the column descriptions and profiles only: the stored Parquet is never read.
    """
    version = displayed_version(dataset)
    if version is None or not version.columns:
        return None
    # Stable per version, so that the page and the API show the same rows on every visit.
    return synthetic_preview(
        preview_columns(version), rows=rows, seed=dataset.id * 1009 + version.version
    )


# -- DCAT -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogUrls:
    """Absolute URLs the export publishes (built by the web layer)."""

    catalog: str
    homepage: str
    sandbox: str
    api_description: str
    #: ``dataset_page.format(id=…)`` is a dataset's landing page.
    dataset_page: str
    #: The theme taxonomy (``skos:ConceptScheme``) the catalogue's themes belong to.
    themes: str | None = None


def listed_datasets(session: Session) -> Sequence[Dataset]:
    from market.agreements.services import lapsed_dataset_ids

    lapsed = sorted(lapsed_dataset_ids(session))
    stmt = (
        sa.select(Dataset)
        .where(Dataset.status == VersionStatus.listed, Dataset.id.not_in(lapsed))
        .order_by(Dataset.id)
        .options(selectinload(Dataset.current_version).selectinload(DatasetVersion.columns))
    )
    return session.scalars(stmt).unique().all()


def dcat_catalog(session: Session, urls: CatalogUrls, publisher_name: str | None) -> dict[str, Any]:
    """The DCAT JSON-LD document of every listed dataset (nothing unlisted)."""
    from market.governance.services import reference_offer

    entries = []
    latest: dt.datetime | None = None
    for d in listed_datasets(session):
        v = d.current_version
        modified = (v.processed_at if v else None) or d.listed_at
        if modified and (latest is None or modified > latest):
            latest = modified
        quality = (v.quality or {}) if v else {}
        entries.append(
            dcat.DcatDataset(
                id=d.id,
                slug=d.slug,
                title=d.title,
                description=d.description or "",
                category=d.category,
                open_grade=d.open_grade,
                update_frequency=d.update_frequency,
                department_id=d.department_id,
                department_name=d.department.name,
                landing_page=urls.dataset_page.format(id=d.id),
                version=v.version if v else None,
                issued=d.listed_at,
                modified=modified,
                row_count=v.row_count if v else None,
                quality_score=v.quality_score if v else None,
                quality_dimensions=dict(quality.get("dimensions") or {}),
                k_anonymity=v.k_anonymity if v else None,
                columns=tuple(c.name for c in v.columns if c.treatment != "suppressed")
                if v
                else (),
                security_level=d.security_level,
                created=d.created_at,
                offer=reference_offer(session, d),
            )
        )
    return dcat.catalog_jsonld(
        dcat.DcatCatalog(
            uri=urls.catalog,
            title="公共数据授权运营目录 · Public data catalogue",
            description=(
                "Datasets opened by public departments for authorized operation: desensitized, "
                "quality-scored and licensed for use in the data sandbox."
            ),
            homepage=urls.homepage,
            sandbox_url=urls.sandbox,
            api_description_url=urls.api_description,
            publisher_name=publisher_name,
            datasets=entries,
            modified=latest,
            themes_uri=urls.themes,
        )
    )


GRADES_LISTED = (OpenGrade.open.value, OpenGrade.conditional.value)
