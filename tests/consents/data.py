"""Synthetic desensitized tables about three enterprises, and the rows that license them.

The entity-key column holds ``pseudonym(key, "credit_code", code)``, exactly what the pipeline
writes, so a lookup finds an enterprise by computing the pseudonym of its code. Everything is
made with the ORM and committed by the caller, so the helpers serve the rolled-back ``app``
fixture, ``live_app`` and the browser's live server alike.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import valid_uscc

#: The three enterprises of the tables (valid USCCs) and one nobody has records about.
CODES = [valid_uscc(880_001 + i, prefix="91310115") for i in range(3)]
UNKNOWN_CODE = valid_uscc(880_999, prefix="91310115")
NAMES = ["上海甲乙科技有限公司", "上海丙丁贸易有限公司", "上海戊己制造有限公司"]
PERIODS = ["2025-01", "2025-02", "2025-03"]
KEY = "统一社会信用代码"
_serial = itertools.count(1)


def tax(i: int, month: int) -> Decimal:
    return Decimal(10_000 * (i + 1) + 100 * month) + Decimal("0.50")


def headcount(i: int, month: int) -> int:
    return 10 * (i + 1) + month


def frames(pseudonym_key: bytes) -> dict[str, pd.DataFrame]:
    from market.pipeline import pseudonym

    ent = [pseudonym(pseudonym_key, "credit_code", c) for c in CODES]
    rid = [pseudonym(pseudonym_key, "resident_id", f"31011519900101{i:03d}X") for i in range(3)]
    tax_rows, hrss_rows = [], []
    for i in range(3):
        for m, period in enumerate(PERIODS):
            tax_rows.append(
                {
                    KEY: ent[i],
                    "所属期": period,
                    "纳税额(元)": tax(i, m),
                    "纳税信用等级": "ABC"[i],
                    "法定代表人身份证号": rid[i],
                    "联系电话": f"138****{i:04d}",
                    "备注": f"internal-{i}",
                }
            )
            hrss_rows.append({KEY: ent[i], "所属期": period, "参保人数": headcount(i, m)})
    registry = pd.DataFrame(
        {KEY: ent, "企业名称": NAMES, "所属区": ["浦东新区", "徐汇区", "静安区"]}
    )
    env = pd.DataFrame({"处罚编号": ["E1", "E2"], "罚款金额": [1000, 2000]})
    return {
        "tax": pd.DataFrame(tax_rows),
        "hrss": pd.DataFrame(hrss_rows),
        "registry": registry,
        "env": env,
    }


#: name -> [(column, type, role, treatment, pii_kind)]
COLUMNS: dict[str, list[tuple[str, str, str, str, str | None]]] = {
    "tax": [
        (KEY, "string", "entity_key", "pseudonymized", "credit_code"),
        ("所属期", "string", "dimension", "none", None),
        ("纳税额(元)", "decimal", "measure", "none", None),
        ("纳税信用等级", "string", "dimension", "none", None),
        ("法定代表人身份证号", "string", "identifier", "pseudonymized", "resident_id"),
        ("联系电话", "string", "identifier", "masked", "mobile"),
        ("备注", "string", "other", "none", None),
    ],
    "hrss": [
        (KEY, "string", "entity_key", "pseudonymized", "credit_code"),
        ("所属期", "string", "dimension", "none", None),
        ("参保人数", "integer", "measure", "none", None),
    ],
    "registry": [
        (KEY, "string", "entity_key", "pseudonymized", "credit_code"),
        ("企业名称", "string", "dimension", "none", None),
        ("所属区", "string", "dimension", "generalized", "address"),
    ],
    # Keyed by a penalty number, not by enterprise: lookups cannot read it.
    "env": [
        ("处罚编号", "string", "entity_key", "none", None),
        ("罚款金额", "integer", "measure", "none", None),
    ],
}

#: What test licenses grant by default: everything but 备注.
LICENSED = {name: [c[0] for c in cols if c[0] != "备注"] for name, cols in COLUMNS.items()}


def write_parquet(data_dir: Path, name: str, pseudonym_key: bytes) -> str:
    """The table's Parquet under ``data_dir`` (written once per folder); its storage key."""
    key = f"consents-tests/{name}.parquet"
    path = Path(data_dir) / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Small row groups, so the key filter is exercised across several of them.
        pq.write_table(pa.Table.from_pandas(frames(pseudonym_key)[name], preserve_index=False),
                       tmp, row_group_size=4)
        tmp.replace(path)
    return key


def org(session, kind: str, *, code: str | None = None, name: str | None = None,
        status: str = "active"):
    from market.accounts.models import Organization

    n = next(_serial)
    o = Organization(
        name=name or f"consent-{kind}-{n}",
        kind=kind,
        credit_code=code or valid_uscc(890_000 + n, prefix="91310104"),
        status=status,
    )
    session.add(o)
    session.flush()
    return o


def dataset(session, data_dir: Path, name: str, pseudonym_key: bytes, *, slug: str | None = None):
    """A listed dataset over table ``name`` at version 1."""
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion

    department = org(session, "department")
    ds = Dataset(
        slug=slug or f"ct_{name}",
        department_id=department.id,
        title=f"测试 {name}",
        description="",
        category="enterprise",
        open_grade="conditional" if name == "tax" else "open",
        status="listed",
        entity_key=COLUMNS[name][0][0],
    )
    session.add(ds)
    session.flush()
    version = DatasetVersion(
        dataset_id=ds.id,
        version=1,
        status="listed",
        filename=f"{name}.csv",
        parquet_path=write_parquet(data_dir, name, pseudonym_key),
    )
    version.columns = [
        DatasetColumn(position=i, name=col, type=typ, role=role, treatment=treatment,
                      pii_kind=pii)
        for i, (col, typ, role, treatment, pii) in enumerate(COLUMNS[name])
    ]
    session.add(version)
    session.flush()
    ds.current_version_id = version.id
    session.flush()
    return ds


def license_for(
    session,
    buyer_org_id: int,
    datasets: list[tuple[Any, list[str]]],
    *,
    quota: int = 100,
    status: str = "active",
    ends_in: dt.timedelta = dt.timedelta(days=180),
):
    """A license of ``buyer_org_id`` over ``[(dataset, columns)]`` (no quote flow)."""
    from licenses.models import License, LicenseItem
    from market.quotes.models import Quote

    now = dt.datetime.now(dt.UTC)
    quote = Quote(
        buyer_org_id=buyer_org_id, params_version=1, model_version="test",
        purpose="internal_risk_control", duration_months=6, query_quota=quota, total_fen=0,
        items=[], document={}, signature="s", key_id="k", expires_at=now + dt.timedelta(days=7),
    )
    session.add(quote)
    session.flush()
    lic = License(
        buyer_org_id=buyer_org_id, quote_id=quote.id, status=status,
        purpose="internal_risk_control", purpose_statement="consent tests", duration_months=6,
        query_quota=quota, quota_remaining=quota, price_total_fen=0,
        starts_at=now - dt.timedelta(days=1), ends_at=(now + ends_in).replace(microsecond=0),
    )
    lic.items = [
        LicenseItem(dataset_id=ds.id, dataset_version=1, columns=list(cols), amount_fen=0)
        for ds, cols in datasets
    ]
    session.add(lic)
    session.flush()
    return lic


def consent(session, lic, code: str, *, status: str = "granted", subject=None,
            valid_for: dt.timedelta = dt.timedelta(days=30)):
    """A consent row straight in the database (for lookup tests that need one)."""
    from market.consents.models import Consent

    now = dt.datetime.now(dt.UTC)
    c = Consent(
        license_id=lic.id, buyer_org_id=lic.buyer_org_id, subject_credit_code=code,
        subject_org_id=subject.id if subject is not None else None, purpose="loan check",
        valid_until=now + valid_for, status=status,
        decided_at=now if status != "requested" else None, created_at=now,
    )
    session.add(c)
    session.flush()
    return c
