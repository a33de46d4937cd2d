from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.accounts.models import Organization
from market.db import Base, UTCDateTime, utcnow


class OpenGrade(StrEnum):
    open = "open"  # 无条件开放
    conditional = "conditional"  # 有条件开放
    restricted = "restricted"  # 不予开放: never listed, refused at upload


class SecurityLevel(StrEnum):
    """Data grading of GB/T 43697-2024 (see ``market.governance.grading``)."""

    general = "general"  # 一般数据
    important = "important"  # 重要数据: stricter differential privacy, regulator approval
    core = "core"  # 核心数据: never operated, refused at upload


class VersionStatus(StrEnum):
    processing = "processing"
    pending_review = "pending_review"
    listed = "listed"
    rejected = "rejected"
    refused = "refused"  # restricted/confidential, or the pipeline refused it
    failed = "failed"  # malformed file; the reason names the row or column
    superseded = "superseded"  # a later version was listed


class Treatment(StrEnum):
    pseudonymized = "pseudonymized"
    masked = "masked"
    generalized = "generalized"
    suppressed = "suppressed"
    none = "none"


class ColumnRole(StrEnum):
    """How the sandbox may use a column (see sandbox.policy)."""

    dimension = "dimension"  # group and filter on
    measure = "measure"  # aggregate only
    identifier = "identifier"  # never output, grouped or filtered
    entity_key = "entity_key"  # the pseudonymized join key
    other = "other"


class Dataset(Base):
    """A listed (or to-be-listed) table from one department. Content lives in versions."""

    __tablename__ = "datasets"
    __table_args__ = (
        sa.CheckConstraint("open_grade IN ('open','conditional','restricted')", name="open_grade"),
        sa.CheckConstraint(
            "cost_collection_fen >= 0 AND cost_processing_fen >= 0 AND cost_storage_monthly_fen >= 0",
            name="costs_non_negative",
        ),
        sa.CheckConstraint("k_min >= 2", name="k_min"),
        sa.CheckConstraint(
            "security_level IN ('general','important','core')", name="security_level"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable table name in the sandbox, e.g. ``d7_tax_monthly``.
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    category: Mapped[str] = mapped_column(sa.String(64), index=True)
    open_grade: Mapped[str] = mapped_column(sa.String(16))
    update_frequency: Mapped[str | None] = mapped_column(sa.String(16))
    #: GB/T 43697-2024 grade, beside the open grade (``SecurityLevel``).
    security_level: Mapped[str] = mapped_column(
        sa.String(16), default="general", server_default="general", index=True
    )
    #: Name of the entity-key column as uploaded (e.g. 统一社会信用代码).
    entity_key: Mapped[str | None] = mapped_column(sa.String(128))
    #: Lifecycle of the dataset as a whole: ``listed`` once any version is listed,
    #: otherwise the latest version's status.
    status: Mapped[str] = mapped_column(sa.String(20), default=VersionStatus.processing, index=True)
    cost_collection_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    cost_processing_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    cost_storage_monthly_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Minimum distinct entities per output group in the sandbox (conditional data).
    k_min: Mapped[int] = mapped_column(default=10)
    #: Declared 涉密 at upload: such uploads are refused and only this metadata is kept.
    confidential: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Differential privacy of a conditional dataset (always on; see ``sandbox.privacy``).
    #: Null means the default for the dataset (``sandbox.privacy.default_privacy``).
    #: Epsilon each buyer organization may spend on this dataset, across all its licenses.
    dp_epsilon_budget: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 4))
    dp_epsilon_per_query: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 4))
    dp_delta: Mapped[Decimal | None] = mapped_column(sa.Numeric(20, 15))
    dp_max_groups_per_entity: Mapped[int | None] = mapped_column()
    dp_max_rows_per_entity: Mapped[int | None] = mapped_column()
    #: Epsilon all buyers together may spend on one version (pooled answers compose).
    dp_version_budget: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 4))
    #: Declared ranges of one entity's contribution to a SUM: ``{column: ["lo", "hi"]}``
    #: (public metadata, never derived from the data).
    dp_ranges: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    current_version_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("dataset_versions.id", use_alter=True, name="fk_datasets_current_version_id")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    listed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Withdrawn by its department: delisted for good (status ``withdrawn``); licenses already
    #: granted run to their end (see ``market.datasets.lifecycle``).
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)

    department: Mapped[Organization] = relationship(lazy="joined")
    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset", foreign_keys="DatasetVersion.dataset_id", order_by="DatasetVersion.version"
    )
    current_version: Mapped[DatasetVersion | None] = relationship(foreign_keys=[current_version_id], post_update=True)
    contributors: Mapped[list[DatasetContributor]] = relationship(back_populates="dataset", cascade="all, delete-orphan")


class DatasetContributor(Base):
    """Departments that share a dataset's revenue, by declared weight (owner: weight 1)."""

    __tablename__ = "dataset_contributors"
    __table_args__ = (sa.CheckConstraint("weight > 0", name="weight_positive"),)

    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), primary_key=True)
    weight: Mapped[int] = mapped_column(default=1)

    dataset: Mapped[Dataset] = relationship(back_populates="contributors")


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
        sa.CheckConstraint(
            "status IN ('processing','pending_review','listed','rejected','refused','failed','superseded')",
            name="status",
        ),
        sa.CheckConstraint("quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 100)", name="quality_score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(20), default=VersionStatus.processing, index=True)
    #: Sanitized original file name (never a path).
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str | None] = mapped_column(sa.String(16))
    encoding: Mapped[str | None] = mapped_column(sa.String(32))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    row_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Desensitized Parquet, relative to MARKET_DATA_DIR. Raw uploads are never kept.
    parquet_path: Mapped[str | None] = mapped_column(sa.String(500))
    parquet_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    quality_score: Mapped[int | None] = mapped_column(index=True)
    #: ``{"score": int, "dimensions": {completeness, validity, uniqueness, consistency, timeliness}}``
    quality: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    k_anonymity: Mapped[int | None] = mapped_column()
    #: The pipeline report (no raw values): warnings, quasi-identifiers, detection summary.
    report: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Entries are msgid strings or ``{"msgid", "params"}``: see :mod:`market.datasets.reasons`.
    refusal_reasons: Mapped[list[str | dict[str, Any]] | None] = mapped_column(sa.JSON)
    #: Treatments the department chose at upload (``{column: treatment}``), applied by the job.
    treatment_overrides: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)
    progress_done: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    review_comment: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    dataset: Mapped[Dataset] = relationship(back_populates="versions", foreign_keys=[dataset_id])
    columns: Mapped[list[DatasetColumn]] = relationship(
        back_populates="version", order_by="DatasetColumn.position", cascade="all, delete-orphan"
    )


class DatasetColumn(Base):
    __tablename__ = "dataset_columns"
    __table_args__ = (
        sa.UniqueConstraint("version_id", "name", name="uq_dataset_columns_version_name"),
        sa.CheckConstraint(
            "treatment IN ('pseudonymized','masked','generalized','suppressed','none')", name="treatment"
        ),
        sa.CheckConstraint("role IN ('dimension','measure','identifier','entity_key','other')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("dataset_versions.id"), index=True)
    position: Mapped[int] = mapped_column()
    #: Column name in the desensitized Parquet and the sandbox.
    name: Mapped[str] = mapped_column(sa.String(128))
    type: Mapped[str] = mapped_column(sa.String(16))
    pii_kind: Mapped[str | None] = mapped_column(sa.String(32))
    treatment: Mapped[str] = mapped_column(sa.String(16), default=Treatment.none)
    role: Mapped[str] = mapped_column(sa.String(16), default=ColumnRole.other)
    #: Pricing weight of the column (the entity key is always included).
    weight: Mapped[Decimal] = mapped_column(sa.Numeric(8, 4), default=Decimal(1))
    #: Clamping bounds for SUM/AVG in the sandbox.
    lower_bound: Mapped[Decimal | None] = mapped_column(sa.Numeric(20, 4))
    upper_bound: Mapped[Decimal | None] = mapped_column(sa.Numeric(20, 4))
    #: Distribution summary for the synthetic preview (never values of identifying columns).
    profile: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

    version: Mapped[DatasetVersion] = relationship(back_populates="columns")


class ChangeStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"  # the dataset was withdrawn before the review


class DatasetChangeRequest(Base):
    """Metadata changes a department proposed that change what buyers get (category, costs):
    they apply only once the operator approves them (``market.datasets.lifecycle``)."""

    __tablename__ = "dataset_change_requests"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending','approved','rejected','withdrawn')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=ChangeStatus.pending, index=True)
    #: ``{field: new value}`` (JSON-native: fen as integers).
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: The values in force when proposed, for the reviewer's comparison.
    before: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    proposed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    review_comment: Mapped[str | None] = mapped_column(sa.Text)
