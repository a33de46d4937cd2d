"""Factories for the catalogue tests: datasets, versions and columns created directly with the
ORM (publication is another area), with realistic profiles and pipeline reports."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

_seq = itertools.count(1)

XSS_TITLE = "<script>alert(1)</script>"
XSS_DESCRIPTION = '"><img src=x onerror=alert(1)>'


@dataclass(frozen=True)
class Col:
    name: str
    type: str = "string"
    pii_kind: str | None = None
    treatment: str = "none"
    role: str = "other"
    profile: dict[str, Any] | None = None


#: The shape of an enterprise-registry table after desensitization.
REGISTRY_COLUMNS: tuple[Col, ...] = (
    Col(
        "统一社会信用代码",
        pii_kind="credit_code",
        treatment="pseudonymized",
        role="entity_key",
        profile={"null_share": 0.0},
    ),
    Col(
        "法定代表人",
        pii_kind="person_name",
        treatment="masked",
        role="identifier",
        profile={"null_share": 0.0},
    ),
    Col(
        "联系电话",
        pii_kind="mobile",
        treatment="masked",
        role="identifier",
        profile={"null_share": 0.1},
    ),
    Col("法定代表人身份证号", pii_kind="resident_id", treatment="suppressed", role="identifier"),
    Col(
        "注册地址",
        pii_kind="address",
        treatment="generalized",
        role="dimension",
        profile={
            "null_share": 0.0,
            "distinct": 3,
            "top": [
                {"value": "浦东新区", "count": 40},
                {"value": "闵行区", "count": 25},
                {"value": "静安区", "count": 10},
            ],
        },
    ),
    Col(
        "行业",
        role="dimension",
        profile={
            "null_share": 0.0,
            "distinct": 2,
            "top": [{"value": "制造业", "count": 50}, {"value": "批发和零售业", "count": 25}],
        },
    ),
    Col(
        "注册资本",
        type="decimal",
        role="measure",
        profile={
            "null_share": 0.0,
            "min": 10.0,
            "max": 5000.0,
            "mean": 800.0,
            "std": 300.0,
            "scale": 2,
        },
    ),
    Col(
        "员工人数",
        type="integer",
        role="measure",
        profile={"null_share": 0.0, "min": 1, "max": 500, "mean": 40, "std": 30},
    ),
    Col(
        "成立日期",
        type="date",
        role="dimension",
        profile={"null_share": 0.0, "min": "2005-01-01", "max": "2024-06-30"},
    ),
    Col(
        "是否存续", type="boolean", role="dimension", profile={"null_share": 0.0, "true_share": 0.9}
    ),
)


@dataclass
class Made:
    dataset: Any
    versions: list[Any] = field(default_factory=list)


@pytest.fixture
def make_dataset(app, make_org) -> Callable[..., Any]:
    """``make_dataset(title=…, status="listed", quality=85, category=…, grade="open",
    department=None, columns=REGISTRY_COLUMNS, versions=None, row_count=1000, …)`` → Dataset.

    ``versions`` is a list of version statuses, oldest first (default ``[status]``); the last
    listed one becomes the current version.
    """
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db

    def make(
        *,
        title: str | None = None,
        description: str = "本市企业的登记注册信息。",
        status: str = "listed",
        quality: int | None = 85,
        dimensions: dict[str, float] | None = None,
        category: str = "enterprise_registry",
        grade: str = "open",
        department=None,
        columns: Sequence[Col] = REGISTRY_COLUMNS,
        versions: Sequence[str] | None = None,
        row_count: int = 1000,
        k_anonymity: int | None = 12,
        frequency: str = "monthly",
        processed_at: dt.datetime | None = None,
        report_warnings: Sequence[str] = (),
    ):
        n = next(_seq)
        department = department or make_org("department")
        statuses = list(versions or [status])
        dataset_status = "listed" if "listed" in statuses else statuses[-1]
        dataset = Dataset(
            slug=f"d{n}_{re.sub(r'[^a-z0-9_]', '_', category)}",
            department_id=department.id,
            title=title or f"企业登记注册信息 {n}",
            description=description,
            category=category,
            open_grade=grade,
            entity_key="统一社会信用代码",
            update_frequency=frequency,
            status=dataset_status,
            cost_collection_fen=60_000_000,
            cost_processing_fen=18_000_000,
            cost_storage_monthly_fen=350_000,
        )
        db.session.add(dataset)
        db.session.flush()
        base = processed_at or dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
        current = None
        for number, v_status in enumerate(statuses, start=1):
            dims = dimensions or {
                "completeness": 98.5,
                "validity": 91.0,
                "uniqueness": 100.0,
                "consistency": 88.0,
                "timeliness": 75.0,
            }
            version = DatasetVersion(
                dataset_id=dataset.id,
                version=number,
                status=v_status,
                filename=f"registry-v{number}.csv",
                file_format="csv",
                row_count=row_count if v_status not in ("refused", "processing") else None,
                quality_score=quality if v_status not in ("refused", "processing") else None,
                quality={"score": quality, "dimensions": dims} if quality is not None else None,
                k_anonymity=k_anonymity,
                created_at=base + dt.timedelta(days=number),
                processed_at=base + dt.timedelta(days=number, hours=1),
                report={
                    "columns": [
                        {
                            "name": c.name,
                            "output_name": None if c.treatment == "suppressed" else c.name,
                            "type": c.type,
                            "pii_kind": c.pii_kind,
                            "treatment": c.treatment,
                            "detection_share": 0.97 if c.pii_kind else 0.0,
                            "generalization": "district" if c.treatment == "generalized" else None,
                            "quasi_identifier": c.pii_kind == "address",
                        }
                        for c in columns
                    ],
                    "warnings": list(report_warnings),
                    "quasi_identifiers": [c.name for c in columns if c.pii_kind == "address"],
                },
                refusal_reasons=["open grade 'restricted' (不予开放)"]
                if v_status == "refused"
                else None,
            )
            db.session.add(version)
            db.session.flush()
            for i, c in enumerate(columns):
                db.session.add(
                    DatasetColumn(
                        version_id=version.id,
                        position=i,
                        name=c.name,
                        type=c.type,
                        pii_kind=c.pii_kind,
                        treatment=c.treatment,
                        role=c.role,
                        weight=Decimal(1),
                        profile=c.profile,
                    )
                )
            if v_status == "listed":
                current = version
        db.session.flush()
        if current is not None:
            dataset.current_version_id = current.id
            dataset.listed_at = current.processed_at
        db.session.commit()
        db.session.refresh(dataset)
        return dataset

    return make


@pytest.fixture
def member(app, make_org) -> Callable[..., Any]:
    """``member(kind, org=None)`` → a User of a new (or the given) organization.

    Created with the ORM and an unusable password hash: these tests exercise the catalogue,
    not argon2, which costs ~0.4 s per hash on the CI machine.
    """
    from market.accounts.models import User
    from market.extensions import db

    def make(kind: str, org=None):
        org = org or make_org(kind)
        user = User(
            email=f"cat{next(_seq)}@{kind}.example.cn",
            password_hash="!unusable",
            organization_id=org.id,
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def login(client):
    """``login(user)``: a browser session for ``user`` on ``client`` (as start_session makes)."""
    from market.auth import session_values
    from market.extensions import db

    def do(user):
        values = session_values(user)  # a server-side session, as start_session opens
        db.session.commit()
        with client.session_transaction() as session:
            session.clear()
            session.permanent = True
            session.update(values)
        return client

    return do


@pytest.fixture
def api_as(member, auth_header) -> Callable[..., dict[str, str]]:
    """``api_as(kind, org=None)`` → Bearer headers of a new member."""

    def make(kind: str, org=None) -> dict[str, str]:
        return auth_header(member(kind, org=org))

    return make


def registry_csv(rows: int = 40, *, encoding: str = "utf-8") -> bytes:
    """A small enterprise-registry CSV with real-looking identifiers (all synthetic)."""
    from tests.conftest import valid_uscc

    districts = ("浦东新区", "闵行区")
    surnames = "张王李赵刘陈杨黄周吴"
    lines = ["统一社会信用代码,企业名称,法定代表人,联系电话,注册地址,行业,注册资本(万元),成立日期"]
    for i in range(rows):
        lines.append(
            ",".join(
                [
                    valid_uscc(700_000 + i),
                    f"上海测试{i}号科技有限公司",
                    f"{surnames[i % 10]}{'伟芳娜敏静'[i % 5]}",
                    f"139{(10_000_000 + i * 7919) % 100_000_000:08d}",
                    f"上海市{districts[i % 2]}测试路{i + 1}号",
                    ("制造业", "批发和零售业", "信息技术")[i % 3],
                    f"{100 + i * 3}.50",
                    f"20{10 + i % 10}-0{1 + i % 9}-1{i % 9}",
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode(encoding)
