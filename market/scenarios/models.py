"""Scenarios (场景机会清单) and data products (数据产品).

A scenario is a published use case (e.g. 普惠金融·小微企业信贷) with the datasets it may use
and the purposes it allows; the operator drafts and submits it, the regulator approves or
rejects it. A data product bundles datasets and columns with the allowed access (sandbox
queries, consented lookups or both) and fixed terms, so that it has one price computed by the
pricing model from its parts. A buyer applies for a product under an approved scenario; the
license records both (``licenses.scenario_id``, ``licenses.product_id``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.datasets.models import Dataset
from market.db import Base, UTCDateTime, utcnow


class ScenarioStatus(StrEnum):
    draft = "draft"
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    #: Taken back after approval (by the operator or the regulator): no new license under it;
    #: licenses granted before run to their end. Final.
    withdrawn = "withdrawn"


class ProductStatus(StrEnum):
    draft = "draft"
    published = "published"
    withdrawn = "withdrawn"


class ProductAccess(StrEnum):
    sandbox = "sandbox"
    lookups = "lookups"
    both = "both"

    def allows(self, use: str) -> bool:
        return self is ProductAccess.both or self.value == use


class Scenario(Base):
    __tablename__ = "scenarios"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('draft','pending','approved','rejected','withdrawn')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str | None] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    #: Allowed purposes (``pricing.Purpose`` values), sorted.
    purposes: Mapped[list[str]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default=ScenarioStatus.draft, index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(sa.Text)
    #: The term the regulator approves: new licenses only while it runs. NULL on scenarios
    #: approved before terms existed (open-ended, until withdrawn).
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)

    datasets: Mapped[list[ScenarioDataset]] = relationship(
        back_populates="scenario",
        cascade="all, delete-orphan",
        order_by="ScenarioDataset.dataset_id",
    )

    @property
    def dataset_ids(self) -> list[int]:
        return [d.dataset_id for d in self.datasets]


class ScenarioDataset(Base):
    __tablename__ = "scenario_datasets"
    __table_args__ = (
        sa.UniqueConstraint("scenario_id", "dataset_id", name="uq_scenario_datasets_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(sa.ForeignKey("scenarios.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)

    scenario: Mapped[Scenario] = relationship(back_populates="datasets")
    dataset: Mapped[Dataset] = relationship(lazy="joined")


class DataProduct(Base):
    __tablename__ = "data_products"
    __table_args__ = (
        sa.CheckConstraint("status IN ('draft','published','withdrawn')", name="status"),
        sa.CheckConstraint("access IN ('sandbox','lookups','both')", name="access"),
        sa.CheckConstraint("duration_months >= 1 AND duration_months <= 60", name="duration"),
        sa.CheckConstraint("query_quota >= 1", name="quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str | None] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    access: Mapped[str] = mapped_column(sa.String(16))
    #: The product's fixed terms: with its parts they give it one price.
    purpose: Mapped[str] = mapped_column(sa.String(32))
    duration_months: Mapped[int] = mapped_column()
    query_quota: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(16), default=ProductStatus.draft, index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    items: Mapped[list[DataProductItem]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="DataProductItem.dataset_id",
    )


class DataProductItem(Base):
    __tablename__ = "data_product_items"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "dataset_id", name="uq_data_product_items_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("data_products.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"), index=True)
    #: Column names (the entity key is always added), or ``None`` for every column.
    columns: Mapped[list[str] | None] = mapped_column(sa.JSON)

    product: Mapped[DataProduct] = relationship(back_populates="items")
    dataset: Mapped[Dataset] = relationship(lazy="joined")
