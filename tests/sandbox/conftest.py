"""Fixtures for the sandbox tests: specs, synthetic Parquet files and one shared engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sandbox_testdata import WIDE, firms_frame, firms_spec, loans_frame, loans_spec

from sandbox import DuckDBEngine, PolicyContext


@pytest.fixture(scope="session")
def ctx() -> PolicyContext:
    return PolicyContext({"loans": loans_spec(), "firms": firms_spec()}, row_cap=1000)


@pytest.fixture(scope="session")
def dp_ctx() -> PolicyContext:
    """The platform defaults (epsilon 0.5, delta 1e-6, one group and 12 rows per entity)."""
    return PolicyContext({"loans": loans_spec(dp_epsilon_per_query=Decimal("0.5"))})


@pytest.fixture(scope="session")
def wide_ctx() -> PolicyContext:
    """Contribution bounds that drop nothing in the test data (for exact NoNoise checks)."""
    return PolicyContext({"loans": loans_spec(privacy=WIDE), "firms": firms_spec()}, row_cap=1000)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sandbox-data")
    loans_frame().to_parquet(root / "loans.parquet", index=False)
    firms_frame().to_parquet(root / "firms.parquet", index=False)
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(root / "other.parquet", index=False)
    return root


@pytest.fixture(scope="session")
def tables(data_dir) -> dict[str, str]:
    return {"loans": str(data_dir / "loans.parquet"), "firms": str(data_dir / "firms.parquet")}


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox-engine")
    eng = DuckDBEngine(
        threads=2,
        memory_limit="256MB",
        temp_dir=root,
        max_temp_size="64MB",
        projection_dir=root / "projections",
    ).start()
    yield eng
    eng.close()
