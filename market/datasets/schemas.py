"""Marshmallow schemas for datasets: load schemas for publication, dump schemas shared with the
catalogue API (``DatasetSchema`` is what ``GET /api/v1/datasets/{id}`` answers).

Dump schemas take ORM objects. ``DatasetSchema`` describes the dataset through its *displayed*
version (:func:`displayed_version`): the current listed version when there is one, otherwise the
latest version (what the owner, the operator and the regulator see while it is processed or
reviewed).
"""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma

import pricing
from market.datasets import reasons
from market.datasets.models import Dataset, DatasetVersion, OpenGrade, Treatment
from market.pipeline import UPDATE_FREQUENCY_DAYS

#: Upload metadata arrives as one multipart text field; larger is refused before parsing.
MAX_METADATA_BYTES = 64 * 1024

UPDATE_FREQUENCIES = tuple(UPDATE_FREQUENCY_DAYS)


def displayed_version(dataset: Dataset) -> DatasetVersion | None:
    """The version whose content describes the dataset: current listed one, else the latest."""
    if dataset.current_version is not None:
        return dataset.current_version
    return dataset.versions[-1] if dataset.versions else None


def latest_version(dataset: Dataset) -> DatasetVersion | None:
    return dataset.versions[-1] if dataset.versions else None


# --- dump -------------------------------------------------------------------------------------


class ReasonsField(ma.fields.List):
    """Stored refusal/failure reasons (:mod:`market.datasets.reasons`), dumped as a list of
    strings in the caller's language (the API contract: a list of strings)."""

    def __init__(self, **kwargs: Any):
        super().__init__(ma.fields.String(), **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return reasons.render_all(value)



class DatasetDepartmentSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class DatasetColumnSchema(ma.Schema):
    """A published column: ``{name, type, pii_kind, treatment}`` plus sandbox role and bounds."""

    name = ma.fields.String()
    type = ma.fields.String()
    pii_kind = ma.fields.String(allow_none=True)
    treatment = ma.fields.String()
    role = ma.fields.String()
    position = ma.fields.Integer()
    lower_bound = ma.fields.Decimal(as_string=True, allow_none=True)
    upper_bound = ma.fields.Decimal(as_string=True, allow_none=True)


class DatasetQualitySchema(ma.Schema):
    score = ma.fields.Integer()
    dimensions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(allow_none=True))


class DatasetVersionSchema(ma.Schema):
    """One version of a dataset (no file paths, no raw values)."""

    id = ma.fields.Integer()
    version = ma.fields.Integer()
    status = ma.fields.String()
    filename = ma.fields.String()
    file_format = ma.fields.String(allow_none=True)
    encoding = ma.fields.String(allow_none=True)
    size_bytes = ma.fields.Integer()
    row_count = ma.fields.Integer(allow_none=True)
    parquet_sha256 = ma.fields.String(allow_none=True)
    quality = ma.fields.Nested(DatasetQualitySchema, allow_none=True)
    k_anonymity = ma.fields.Integer(allow_none=True)
    refusal_reasons = ReasonsField(allow_none=True)
    review_comment = ma.fields.String(allow_none=True)
    columns = ma.fields.List(ma.fields.Nested(DatasetColumnSchema))
    progress = ma.fields.Method("_progress")
    created_at = ma.fields.DateTime()
    processed_at = ma.fields.DateTime(allow_none=True)
    reviewed_at = ma.fields.DateTime(allow_none=True)

    def _progress(self, version: DatasetVersion) -> dict[str, int]:
        return progress_of(version)


def progress_of(version: DatasetVersion) -> dict[str, int]:
    done = int(version.progress_done or 0)
    total = int(version.progress_total or 0)
    if version.status not in ("processing", "failed", "refused"):
        percent = 100
    elif total > 0:
        percent = min(100, done * 100 // total)
    else:
        percent = 0
    return {"done": done, "total": total, "percent": percent}


class DatasetVersionBriefSchema(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    status = ma.fields.String()
    row_count = ma.fields.Integer(allow_none=True)
    quality_score = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    processed_at = ma.fields.DateTime(allow_none=True)


class DatasetCostsSchema(ma.Schema):
    collection = ma.fields.Integer(attribute="cost_collection_fen")
    processing = ma.fields.Integer(attribute="cost_processing_fen")
    storage_monthly = ma.fields.Integer(attribute="cost_storage_monthly_fen")
    currency = ma.fields.Constant("CNY")


class DatasetSchema(ma.Schema):
    """``GET /api/v1/datasets/{id}``: the dataset as described by its displayed version."""

    id = ma.fields.Integer()
    slug = ma.fields.String()
    title = ma.fields.String()
    description = ma.fields.String()
    category = ma.fields.String()
    open_grade = ma.fields.String()
    security_level = ma.fields.String()
    update_frequency = ma.fields.String(allow_none=True)
    entity_key = ma.fields.String(allow_none=True)
    k_min = ma.fields.Integer()
    status = ma.fields.String()
    department = ma.fields.Nested(DatasetDepartmentSchema)
    costs = ma.fields.Function(lambda d: DatasetCostsSchema().dump(d))
    version = ma.fields.Method("_version")
    row_count = ma.fields.Method("_row_count")
    columns = ma.fields.Method("_columns")
    quality = ma.fields.Method("_quality")
    k_anonymity = ma.fields.Method("_k_anonymity")
    refusal_reasons = ma.fields.Method("_refusal_reasons")
    latest_version = ma.fields.Method("_latest")
    privacy = ma.fields.Method(
        "_privacy",
        metadata={"description": "Differential privacy of a conditional dataset: budgets, "
                  "epsilon and delta per query, contribution bounds, declared ranges."},
    )
    created_at = ma.fields.DateTime()
    listed_at = ma.fields.DateTime(allow_none=True)

    def _version(self, d: Dataset) -> int | None:
        v = displayed_version(d)
        return v.version if v else None

    def _row_count(self, d: Dataset) -> int | None:
        v = displayed_version(d)
        return v.row_count if v else None

    def _columns(self, d: Dataset) -> list[dict[str, Any]]:
        v = displayed_version(d)
        if not v:
            return []
        out = DatasetColumnSchema(many=True).dump(v.columns)
        # The bounds shown are the declared ranges (public metadata), never figures derived
        # from the data.
        ranges = (d.dp_ranges or {}) if d.open_grade == "conditional" else {}
        for col in out:
            lo, hi = (ranges.get(col["name"]) or (None, None)) if col["role"] == "measure" else (
                None, None)
            col["lower_bound"], col["upper_bound"] = lo, hi
        return out

    def _privacy(self, d: Dataset) -> dict[str, Any] | None:
        from .privacy import effective_privacy

        settings = effective_privacy(d)
        return settings.as_json() if settings is not None else None

    def _quality(self, d: Dataset) -> dict[str, Any] | None:
        v = displayed_version(d)
        return DatasetQualitySchema().dump(v.quality) if v and v.quality else None

    def _k_anonymity(self, d: Dataset) -> int | None:
        v = displayed_version(d)
        return v.k_anonymity if v else None

    def _refusal_reasons(self, d: Dataset) -> list[str]:
        v = latest_version(d)
        return reasons.render_all(v.refusal_reasons) if v else []

    def _latest(self, d: Dataset) -> dict[str, Any] | None:
        v = latest_version(d)
        return DatasetVersionBriefSchema().dump(v) if v else None


class DatasetAcceptedSchema(ma.Schema):
    """The 202 answer to an upload: poll ``…/versions/{version}/status`` for progress."""

    id = ma.fields.Integer()
    version = ma.fields.Integer()
    status = ma.fields.String()


class DatasetVersionStatusSchema(ma.Schema):
    status = ma.fields.String()
    progress = ma.fields.Dict()
    refusal_reasons = ReasonsField()


# --- load -------------------------------------------------------------------------------------


class DatasetCostsLoadSchema(ma.Schema):
    collection = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    processing = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    storage_monthly = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=0)
    )


_TREATMENTS = [t.value for t in Treatment]


class TreatmentsField(ma.fields.Dict):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=ma.fields.String(validate=ma.validate.Length(min=1, max=128)),
            values=ma.fields.String(validate=ma.validate.OneOf(_TREATMENTS)),
            **kwargs,
        )


class PrivacyField(ma.fields.Field):
    """``metadata.privacy`` of a conditional dataset (``market.datasets.privacy``); errors
    name the setting, e.g. ``privacy.epsilon_budget``. Ranges name columns of the file, which
    are only known once processed: a range on a column that is not a measure is unused."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        from market.errors import ValidationFailed

        from .privacy import parse_privacy

        try:
            return parse_privacy(value)
        except ValidationFailed as exc:
            raise ma.ValidationError(
                {k.removeprefix("privacy."): v for k, v in (exc.errors or {}).items()}
            ) from None


class DatasetPublishMetadataSchema(ma.Schema):
    """The ``metadata`` JSON of ``POST /api/v1/datasets``."""

    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=10_000))
    category = ma.fields.String(
        required=True,
        # The one category vocabulary: pricing, facets and the demo use the same keys.
        validate=ma.validate.OneOf(
            pricing.CATEGORIES, error="Unknown category; use one of: {choices}."
        ),
    )
    open_grade = ma.fields.String(
        required=True, validate=ma.validate.OneOf([g.value for g in OpenGrade])
    )
    confidential = ma.fields.Boolean(required=True)
    #: GB/T 43697-2024 grade: ``core`` is refused like a confidential upload.
    security_level = ma.fields.String(
        load_default="general", validate=ma.validate.OneOf(["general", "important", "core"])
    )
    entity_key = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=128))
    update_frequency = ma.fields.String(
        required=True, validate=ma.validate.OneOf(UPDATE_FREQUENCIES)
    )
    costs = ma.fields.Nested(DatasetCostsLoadSchema, required=True)
    k_min = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=2, max=1000)
    )
    treatments = TreatmentsField(load_default=dict)
    privacy = PrivacyField(load_default=None, allow_none=True)

    class Meta:
        unknown = ma.RAISE


class DatasetVersionMetadataSchema(ma.Schema):
    """Optional ``metadata`` of ``POST /api/v1/datasets/{id}/versions``."""

    treatments = TreatmentsField(load_default=dict)
    costs = ma.fields.Nested(DatasetCostsLoadSchema, load_default=None, allow_none=True)
    k_min = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=2, max=1000)
    )

    class Meta:
        unknown = ma.RAISE


class DatasetReviewSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(["approve", "reject"]))
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))


class DatasetUploadFormSchema(ma.Schema):
    """Multipart parts (documented for OpenAPI; the view reads the stream itself)."""

    file = ma.fields.Raw(metadata={"type": "string", "format": "binary"})
    metadata = ma.fields.String()


def parse_metadata(raw: str | bytes | None, schema: ma.Schema) -> dict[str, Any]:
    """Parse and validate a JSON metadata field.

    Raises:
        ValueError: with ``errors`` dict as ``args[0]`` (the API maps it to 422).
    """
    if raw is None or raw == "" or raw == b"":
        raw = "{}"
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_METADATA_BYTES:
        raise MetadataInvalid({"metadata": [f"Metadata is larger than {MAX_METADATA_BYTES} bytes."]})
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MetadataInvalid({"metadata": ["Metadata is not valid JSON."]}) from None
    if not isinstance(data, dict):
        raise MetadataInvalid({"metadata": ["Metadata must be a JSON object."]})
    try:
        return schema.load(data)
    except ma.ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"metadata": exc.messages}
        raise MetadataInvalid({k: _flatten(v) for k, v in errors.items()}) from None


class MetadataInvalid(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, list):
        return [str(m) for m in messages]
    if isinstance(messages, dict):
        out: list[str] = []
        for key, val in messages.items():
            out.extend(f"{key}: {m}" for m in _flatten(val))
        return out
    return [str(messages)]


# Short names (the OpenAPI component names above are prefixed to stay unique in the app).
ColumnSchema = DatasetColumnSchema
QualitySchema = DatasetQualitySchema
VersionSchema = DatasetVersionSchema
VersionBriefSchema = DatasetVersionBriefSchema
VersionStatusSchema = DatasetVersionStatusSchema
PublishMetadataSchema = DatasetPublishMetadataSchema
VersionMetadataSchema = DatasetVersionMetadataSchema
ReviewSchema = DatasetReviewSchema


class InspectColumnSchema(ma.Schema):
    name = ma.fields.String()
    type = ma.fields.String()
    pii_kind = ma.fields.String(allow_none=True)
    embedded = ma.fields.Boolean()
    detection_share = ma.fields.Float()
    header_hint = ma.fields.String(allow_none=True)
    default_treatment = ma.fields.String()
    allowed_treatments = ma.fields.List(ma.fields.String())


class InspectReportSchema(ma.Schema):
    format = ma.fields.String()
    encoding = ma.fields.String(allow_none=True)
    sampled_rows = ma.fields.Integer()
    #: Stored notes (:mod:`market.datasets.reasons`), as strings in the caller's language.
    warnings = ReasonsField()
    columns = ma.fields.List(ma.fields.Nested(InspectColumnSchema))
