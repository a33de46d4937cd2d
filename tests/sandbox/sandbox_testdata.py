"""Synthetic data and specs shared by the sandbox tests (a uniquely named module, not conftest,
so that importing it cannot pick up another directory's conftest)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import numpy as np
import pandas as pd

from sandbox import ColumnSpec, TablePrivacy, TableSpec

K = 10
# Exact-value tests (with sandbox.dp.NoNoise): no entity has more than 9 rows or 3 industries,
# so these bounds drop nothing and only the per-entity SUM clamp changes values.
WIDE = TablePrivacy(Decimal(1), Decimal("1e-6"), max_groups_per_entity=3, max_rows_per_entity=12)
AMOUNT_HI = 100_000
OUTLIER = 10**9
DISTRICTS = ["Huangpu", "Xuhui", "Jingan", "Pudong", "Minhang"]


def pseudonym(i: int) -> str:
    return hashlib.sha256(f"entity-{i}".encode()).hexdigest()[:32]


def loans_frame() -> pd.DataFrame:
    """~1,700 loan rows over ~330 entities, with groups designed around k = 10:
    - five big districts;
    - "Rare": 3 entities with 6 rows each (18 rows >= k, but only 3 entities);
    - "Edge": exactly k entities, one row each (released);
    - "Short": k - 1 entities (suppressed);
    - one outlier amount of 1e9 in Pudong (clamped to AMOUNT_HI).
    """
    rng = np.random.default_rng(20240601)
    rows = []
    entity = 0
    for d in DISTRICTS:
        for _ in range(60):
            for _ in range(int(rng.integers(1, 10))):
                rows.append((d, str(rng.choice(["retail", "tech", "farm"])), entity))
            entity += 1
    for district, entities, per in (("Rare", 3, 6), ("Edge", K, 1), ("Short", K - 1, 1)):
        for _ in range(entities):
            rows.extend((district, "retail", entity) for _ in range(per))
            entity += 1
    df = pd.DataFrame(rows, columns=["district", "industry", "entity"])
    df["amount"] = rng.integers(0, 90_000, len(df)).astype("int64")
    df.loc[df.index[df["district"] == "Pudong"][0], "amount"] = OUTLIER
    df["ek"] = df["entity"].map(pseudonym)
    df["id_no"] = df["entity"].map(lambda e: f"3101151990{e:08d}")
    df["note"] = "n"
    df["secret"] = "unlicensed"
    return df.drop(columns=["entity"])


def firms_frame() -> pd.DataFrame:
    """An open table keyed by the same pseudonyms: 2,500 firms (more than the row cap)."""
    rng = np.random.default_rng(7)
    n = 2500
    return pd.DataFrame(
        {
            "fk": [pseudonym(i) for i in range(n)],
            "district": [DISTRICTS[i % 5] for i in range(n)],
            "name": [f"Firm {i}" for i in range(n)],
            "capital": rng.integers(1, 10_000, n).astype("int64"),
            "uscc": [f"91310000MA{i:08d}" for i in range(n)],
        }
    )


def loans_spec(**kw) -> TableSpec:
    return TableSpec(
        slug="loans",
        grade="conditional",
        columns={
            "district": ColumnSpec("district", "dimension"),
            "industry": ColumnSpec("industry", "dimension"),
            # declared range of ONE entity's total in a group
            "amount": ColumnSpec("amount", "measure", Decimal(0), Decimal(AMOUNT_HI)),
            "id_no": ColumnSpec("id_no", "identifier"),
            "note": ColumnSpec("note", "other"),
        },
        entity_key="ek",
        k_min=K,
        **kw,
    )


def firms_spec() -> TableSpec:
    return TableSpec(
        slug="firms",
        grade="open",
        columns={
            "district": ColumnSpec("district", "dimension"),
            "name": ColumnSpec("name", "other"),
            "capital": ColumnSpec("capital", "measure", Decimal(0), Decimal(10_000)),
            "uscc": ColumnSpec("uscc", "identifier"),
        },
        entity_key="fk",
    )
