"""The dataset publication pipeline: pure (no Flask, no database), chunked, bounded memory.

Typical use::

    from market.pipeline import inspect, run_pipeline, pseudonym

    preview = inspect(upload_path, "社保缴费.csv", entity_key="统一社会信用代码")
    report = run_pipeline(
        upload_path, filename="社保缴费.csv", out_path=data_dir / "ds-1-v1.parquet",
        key=pseudonym_key, entity_key="统一社会信用代码", update_frequency="monthly",
        overrides={"联系人": "suppressed"},
    )
    report.to_dict()  # schema, treatments, quality, k-anonymity: no raw values

    pseudonym(pseudonym_key, "credit_code", "91310000MA1FL8XQ30")  # the joinable form
"""

from __future__ import annotations

from .desensitize import pseudonym
from .detect import Detection, header_hint
from .errors import (
    EncodingError,
    InvalidEntityKey,
    InvalidOverride,
    KAnonymityTooLow,
    LimitExceeded,
    MalformedFile,
    PipelineError,
    UnsupportedFormat,
)
from .kinds import DIRECT_IDENTIFIERS, PII_KINDS, TREATMENTS, UPDATE_FREQUENCY_DAYS
from .report import ColumnInspection, ColumnReport, InspectReport, PipelineReport
from .runner import inspect, run_pipeline
from .treatments import allowed_treatments, default_treatment, validate_overrides

__all__ = [
    "DIRECT_IDENTIFIERS",
    "PII_KINDS",
    "TREATMENTS",
    "UPDATE_FREQUENCY_DAYS",
    "ColumnInspection",
    "ColumnReport",
    "Detection",
    "EncodingError",
    "InspectReport",
    "InvalidEntityKey",
    "InvalidOverride",
    "KAnonymityTooLow",
    "LimitExceeded",
    "MalformedFile",
    "PipelineError",
    "PipelineReport",
    "UnsupportedFormat",
    "allowed_treatments",
    "default_treatment",
    "header_hint",
    "inspect",
    "pseudonym",
    "run_pipeline",
    "validate_overrides",
]
