"""Fixtures for the pipeline tests: a ``publish`` callable with sensible test defaults."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market.pipeline import PipelineReport, run_pipeline

KEY = b"pipeline-test-key"
NOW = dt.datetime(2025, 1, 15, 12, 0)


@pytest.fixture
def publish(tmp_path: Path) -> Callable[..., tuple[PipelineReport, pa.Table]]:
    """Run the pipeline on a file; return its report and the published table."""

    def run(source: Path, **kwargs: Any) -> tuple[PipelineReport, pa.Table]:
        out = kwargs.pop("out_path", tmp_path / "out" / f"{source.stem}.parquet")
        options: dict[str, Any] = {
            "filename": source.name,
            "key": KEY,
            "entity_key": None,
            "update_frequency": None,
            "k_min": 1,
            "now": NOW,
        }
        options.update(kwargs)
        report = run_pipeline(source, out_path=out, **options)
        return report, pq.read_table(out)

    return run
