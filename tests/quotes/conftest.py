"""Factories for pricing tests: listed datasets (created directly with the ORM, since
publication is another area) and licenses built from quotes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest

_seq = itertools.count(1)

#: (name, role, weight, treatment)
DEFAULT_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("enterprise_pseudonym", "entity_key", "1", "pseudonymized"),
    ("industry", "dimension", "2", "none"),
    ("district", "dimension", "1.5", "generalized"),
    ("registered_capital", "measure", "3", "none"),
    ("legal_rep_name", "identifier", "1", "suppressed"),
)


@pytest.fixture
def make_dataset(app, make_org) -> Callable:
    """``make_dataset(category=…, quality=…, status="listed", columns=…, department=None,
    costs=(collection, processing, storage_monthly))`` → a Dataset with one listed version."""
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db

    def make(
        *,
        category: str = "market_supervision",
        quality: int | None = 85,
        status: str = "listed",
        columns: Sequence[tuple[str, str, str, str]] = DEFAULT_COLUMNS,
        department=None,
        costs: tuple[int, int, int] = (12_000_000, 3_000_000, 50_000),
        title: str | None = None,
    ):
        n = next(_seq)
        department = department or make_org("department")
        dataset = Dataset(
            slug=f"d{n}_test_{category}",
            department_id=department.id,
            title=title or f"企业登记信息 {n}",
            description="test dataset",
            category=category,
            open_grade="open",
            entity_key="统一社会信用代码",
            status=status,
            cost_collection_fen=costs[0],
            cost_processing_fen=costs[1],
            cost_storage_monthly_fen=costs[2],
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id,
            version=1,
            status=status if status != "refused" else "refused",
            filename="data.csv",
            quality_score=quality,
            row_count=1000,
        )
        db.session.add(version)
        db.session.flush()
        for i, (name, role, weight, treatment) in enumerate(columns):
            db.session.add(
                DatasetColumn(
                    version_id=version.id,
                    position=i,
                    name=name,
                    type="string",
                    role=role,
                    weight=Decimal(weight),
                    treatment=treatment,
                )
            )
        dataset.current_version_id = version.id
        db.session.commit()
        return dataset

    return make


@pytest.fixture
def make_license(app) -> Callable:
    """``make_license(quote, status="active", starts_at=None, price=None)`` → a License row
    built from a stored quote, as the licensing area would."""
    from licenses.models import License, LicenseItem
    from market.extensions import db

    def make(
        quote,
        *,
        status: str = "active",
        starts_at: dt.datetime | None = None,
        price: int | None = None,
    ):
        starts_at = starts_at or dt.datetime.now(dt.UTC)
        lic = License(
            buyer_org_id=quote.buyer_org_id,
            quote_id=quote.id,
            status=status,
            purpose=quote.purpose,
            purpose_statement="风控模型",
            duration_months=quote.duration_months,
            query_quota=quote.query_quota,
            quota_remaining=quote.query_quota,
            price_total_fen=quote.total_fen if price is None else price,
            starts_at=starts_at,
            ends_at=starts_at + dt.timedelta(days=30 * quote.duration_months),
        )
        for item in quote.items:
            lic.items.append(
                LicenseItem(
                    dataset_id=item["dataset_id"],
                    dataset_version=item["dataset_version"],
                    columns=item["columns"],
                    amount_fen=item["amount"],
                )
            )
        db.session.add(lic)
        db.session.commit()
        return lic

    return make


@pytest.fixture
def quote_body() -> Callable:
    def make(
        *datasets, columns=None, duration=12, purpose="internal_risk_control", quota=1000, **extra
    ):
        return {
            "items": [{"dataset_id": d.id, "columns": columns} for d in datasets],
            "duration_months": duration,
            "purpose": purpose,
            "query_quota": quota,
            **extra,
        }

    return make
