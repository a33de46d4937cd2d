"""Synthetic desensitized tables and the rows that license them, for the sandbox app tests.

``seed_license`` makes everything a query needs (parties, datasets over Parquet files in the
app's MARKET_DATA_DIR, a quote, an active license) with the ORM and commits, so the same
helper serves the rolled-back ``app`` fixture, ``live_app`` and the browser's live server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

K = 5
AMOUNT_HI = 100_000
OUTLIER = 10**9
DISTRICTS = ["黄浦", "徐汇", "静安", "浦东"]
SMALL = "崇明"  # K - 2 entities: always suppressed
FORMULA = "=1+1"
_serial = itertools.count(1)


def pseudonym(i: int) -> str:
    return hashlib.sha256(f"sandbox-app-entity-{i}".encode()).hexdigest()[:32]


def loans_frame() -> pd.DataFrame:
    """Loan rows of ~100 entities in four big districts and one small one (K - 2 entities)."""
    rng = np.random.default_rng(20261122)
    rows = []
    entity = 0
    for d in DISTRICTS:
        for _ in range(25):
            for _ in range(int(rng.integers(1, 5))):
                rows.append((d, str(rng.choice(["retail", "tech", "farm"])), entity))
            entity += 1
    for _ in range(K - 2):
        rows.extend((SMALL, "retail", entity) for _ in range(3))
        entity += 1
    df = pd.DataFrame(rows, columns=["district", "industry", "entity"])
    df["amount"] = rng.integers(0, 90_000, len(df)).astype("int64")
    df.loc[df.index[df["district"] == "浦东"][0], "amount"] = OUTLIER
    df["ek"] = df["entity"].map(pseudonym)
    df["id_no"] = df["entity"].map(lambda e: f"310115199001{e:06d}")
    df["secret"] = "unlicensed"
    return df.drop(columns=["entity"])


def firms_frame() -> pd.DataFrame:
    """An open table of 60 firms keyed by the same pseudonyms. One district value looks like a
    spreadsheet formula (for the CSV export)."""
    n = 60
    return pd.DataFrame(
        {
            "fk": [pseudonym(i) for i in range(n)],
            "district": [FORMULA if i == 0 else DISTRICTS[i % 4] for i in range(n)],
            "capital": [(i * 37) % 1000 + 1 for i in range(n)],
            "uscc": [f"91310000MA{i:08d}" for i in range(n)],
        }
    )


TAX_HI = 100_000  # declared range of one enterprise's tax total in a group: [0, TAX_HI]
TAX_DISTRICTS = ["黄浦", "徐汇", "静安"]
TAX_PER_DISTRICT = 150
#: The attack target: the only enterprise of its district (``TARGET_DISTRICT``) in
#: ``TARGET_INDUSTRY``, 12 monthly rows of ``TARGET_MONTHLY`` tax each.
TARGET_DISTRICT, TARGET_INDUSTRY, TARGET_MONTHLY = "黄浦", "mining", 3_000


def tax_frame() -> pd.DataFrame:
    """Monthly tax of 450 enterprises (12 rows each) in three districts of 150, two common
    industries, and one target enterprise alone in its (district, industry) cell."""
    rng = np.random.default_rng(20261207)
    rows = []
    entity = 10_000
    for d in TAX_DISTRICTS:
        for j in range(TAX_PER_DISTRICT):
            industry = "retail" if j % 2 else "tech"
            if d == TARGET_DISTRICT and j == 0:
                industry = TARGET_INDUSTRY
            for month in range(1, 13):
                tax = TARGET_MONTHLY if industry == TARGET_INDUSTRY else int(rng.integers(0, 6000))
                rows.append((d, industry, month, tax, entity))
            entity += 1
    df = pd.DataFrame(rows, columns=["district", "industry", "month", "tax", "entity"])
    df["ek"] = df["entity"].map(pseudonym)
    return df.drop(columns=["entity"])


#: name -> (frame, grade, entity key, [(column, type, role, treatment, bounds)])
TABLES: dict[str, tuple[Any, str, str, list[tuple[str, str, str, str, tuple | None]]]] = {
    "loans": (
        loans_frame,
        "conditional",
        "ek",
        [
            ("ek", "string", "entity_key", "pseudonymized", None),
            ("district", "string", "dimension", "generalized", None),
            ("industry", "string", "dimension", "none", None),
            ("amount", "integer", "measure", "none", (0, AMOUNT_HI)),
            ("id_no", "string", "identifier", "masked", None),
            ("secret", "string", "other", "none", None),
        ],
    ),
    "tax": (
        tax_frame,
        "conditional",
        "ek",
        [
            ("ek", "string", "entity_key", "pseudonymized", None),
            ("district", "string", "dimension", "none", None),
            ("industry", "string", "dimension", "none", None),
            ("month", "integer", "dimension", "none", None),
            ("tax", "integer", "measure", "none", (0, TAX_HI)),
        ],
    ),
    "firms": (
        firms_frame,
        "open",
        "fk",
        [
            ("fk", "string", "entity_key", "pseudonymized", None),
            ("district", "string", "dimension", "none", None),
            ("capital", "integer", "measure", "none", (0, 1000)),
            ("uscc", "string", "identifier", "pseudonymized", None),
        ],
    ),
}


def write_parquet(data_dir: Path, name: str) -> str:
    """The table's Parquet file under ``data_dir`` (written once); returns its storage key."""
    key = f"sandbox-tests/{name}.parquet"
    path = Path(data_dir) / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        TABLES[name][0]().to_parquet(tmp, index=False)
        tmp.replace(path)
    return key


@dataclass
class Seeded:
    license_id: int
    buyer_org_id: int
    dataset_ids: dict[str, int]


def org(session, kind: str, name: str | None = None):
    from market.accounts.models import Organization
    from tests.conftest import valid_uscc

    n = next(_serial)
    o = Organization(
        name=name or f"sbx-{kind}-{n}",
        kind=kind,
        credit_code=valid_uscc(700_000 + n),
        status="active",
    )
    session.add(o)
    session.flush()
    return o


def dataset(
    session,
    data_dir: Path,
    name: str,
    *,
    slug: str | None = None,
    department=None,
    dp_budget: str | None = "100",
    version_budget: str | None = "1000",
    eps_per_query: str | None = None,
    delta: str | None = None,
    k_min: int = K,
    grade: str | None = None,
):
    """A listed dataset over table ``name`` (see TABLES), slug ``name`` unless given. Its
    measure bounds are declared ranges (``dp_ranges``); the test budgets are large unless
    given (None: the dataset's defaults)."""
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion

    _, default_grade, _, columns = TABLES[name]
    department = department or org(session, "department")
    ds = Dataset(
        slug=slug or name,
        department_id=department.id,
        title=f"Test {name}",
        description="",
        category="enterprise",
        open_grade=grade or default_grade,
        status="listed",
        k_min=k_min,
        dp_epsilon_budget=Decimal(dp_budget) if dp_budget else None,
        dp_version_budget=Decimal(version_budget) if version_budget else None,
        dp_epsilon_per_query=Decimal(eps_per_query) if eps_per_query else None,
        dp_delta=Decimal(delta) if delta else None,
        dp_ranges={c[0]: [str(c[4][0]), str(c[4][1])] for c in columns if c[4]} or None,
    )
    session.add(ds)
    session.flush()
    version = DatasetVersion(
        dataset_id=ds.id,
        version=1,
        status="listed",
        filename=f"{name}.csv",
        parquet_path=write_parquet(data_dir, name),
    )
    version.columns = [
        DatasetColumn(
            position=i,
            name=col,
            type=typ,
            role=role,
            treatment=treatment,
        )
        for i, (col, typ, role, treatment, _bounds) in enumerate(columns)
    ]
    session.add(version)
    session.flush()
    ds.current_version_id = version.id
    session.flush()
    return ds


def license_for(
    session,
    buyer_org_id: int,
    datasets: Sequence[tuple[Any, Sequence[str] | None]],
    *,
    quota: int = 100,
    status: str = "active",
    budget: str | None = None,
    ends_in: dt.timedelta = dt.timedelta(days=180),
):
    """A license of ``buyer_org_id`` over ``[(dataset, columns or None for all)]``."""
    from licenses.models import License, LicenseItem
    from market.quotes.models import Quote

    now = dt.datetime.now(dt.UTC)
    quote = Quote(
        buyer_org_id=buyer_org_id,
        params_version=1,
        model_version="test",
        purpose="research",
        duration_months=6,
        query_quota=quota,
        total_fen=0,
        items=[],
        document={},
        signature="s",
        key_id="k",
        expires_at=now + dt.timedelta(days=7),
    )
    session.add(quote)
    session.flush()
    lic = License(
        buyer_org_id=buyer_org_id,
        quote_id=quote.id,
        status=status,
        purpose="research",
        purpose_statement="sandbox tests",
        duration_months=6,
        query_quota=quota,
        quota_remaining=quota,
        price_total_fen=0,
        privacy_budget_total=Decimal(budget) if budget else None,
        privacy_budget_remaining=Decimal(budget) if budget else None,
        starts_at=now - dt.timedelta(days=1),
        ends_at=now + ends_in,
    )
    lic.items = [
        LicenseItem(
            dataset_id=ds.id,
            dataset_version=1,
            columns=list(cols) if cols is not None else default_columns(_table(ds)),
            amount_fen=0,
        )
        for ds, cols in datasets
    ]
    session.add(lic)
    session.flush()
    return lic


def default_columns(name: str) -> list[str]:
    """Every column but ``secret`` (which no test license grants)."""
    return [c[0] for c in TABLES[name][3] if c[0] != "secret"]


def _table(ds) -> str:
    return ds.current_version.filename.removesuffix(".csv")
