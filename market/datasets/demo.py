"""Demo seeding step: every demo department publishes its table, and the operator lists it.

The tables come from :mod:`market.demo` as CSV files in the departments' usual encodings
(GBK with CRLF for market supervision, UTF-8 with and without BOM for the others), written
to a ``.partial-…`` folder under the data folder and deleted once published. Each file goes
through the same service and pipeline as an upload, inline. Idempotent: a department whose
dataset (same title) already exists is skipped; one left pending review is approved.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import sqlalchemy as sa
from flask import current_app

from market.accounts.actor import Actor
from market.datasets import reasons as refusal
from market.datasets import services
from market.datasets.models import Dataset, VersionStatus
from market.extensions import db

DEMO_LABEL = "demo"


def _meta(dept: Any) -> services.PublishMeta:
    meta = dept.dataset
    return services.PublishMeta(
        title=meta.title,
        description=meta.description,
        category=meta.category,
        open_grade=meta.open_grade,
        confidential=False,
        entity_key=meta.entity_key,
        update_frequency=meta.update_frequency,
        costs=services.Costs(**meta.costs.as_dict()),
    )


def _actor(org: Any) -> Actor:
    return Actor(None, org.id, org.kind, org.status, DEMO_LABEL)


def publish_demo_datasets(demo: Any, report: Any) -> None:
    """Publishing the departments' datasets"""
    from market.datasets.processing import publish_inline
    from market.demo import write_csvs

    operator = _actor(report.orgs["operator"])
    todo = []
    for dept in demo.departments:
        org = report.orgs[dept.key]
        existing = db.session.scalar(
            sa.select(Dataset).where(
                Dataset.department_id == org.id, Dataset.title == dept.dataset.title
            )
        )
        if existing is None:
            todo.append(dept)
            continue
        if any(v.status == VersionStatus.pending_review for v in existing.versions):
            services.review(db.session, operator, existing, "approve", "demo")
            db.session.commit()
        report.notes.append(f"dataset {existing.title}: already seeded ({existing.status})")
    if not todo:
        return
    root = os.path.join(current_app.config["MARKET_DATA_DIR"], "uploads")
    os.makedirs(root, exist_ok=True)
    folder = os.path.join(root, f".partial-demo-{os.urandom(6).hex()}")
    try:
        files = write_csvs(demo, folder)
        for dept in todo:
            version = publish_inline(
                db.session, _actor(report.orgs[dept.key]), files[dept.key], meta=_meta(dept)
            )
            dataset = version.dataset
            if version.status != VersionStatus.pending_review:
                reasons = "; ".join(
                    refusal.render_all(version.refusal_reasons, english=True)
                )
                report.notes.append(f"dataset {dataset.title}: {version.status} ({reasons})")
                continue
            services.review(db.session, operator, dataset, "approve", "demo")
            db.session.commit()
            report.notes.append(
                f"dataset {dataset.title}: listed, {version.row_count} rows, "
                f"quality {version.quality_score}, k-anonymity {version.k_anonymity}"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
