"""What the pipeline tells its caller: JSON-ready dataclasses that hold no cell values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: A report warning as stored: an English msgid (marked ``N_``) without params, or
#: ``{"msgid": ..., "params": {...}}`` with JSON-native values (column names, counts, codes;
#: never a cell value). The app renders it in the reader's language
#: (:func:`market.datasets.reasons.render`); old reports hold formatted English text.
Note = str | dict[str, Any]


def note(msgid: str, params: Mapping[str, Any] | None = None, /, **values: Any) -> Note:
    """The stored form of ``msgid`` with its values (a plain string when there are none)."""
    merged = {**(params or {}), **values}
    if not merged:
        return msgid
    return {"msgid": msgid, "params": merged}


def note_text(stored: Any) -> str:
    """A stored note in English (logs, tests); the app renders it in the reader's language."""
    if isinstance(stored, Mapping):
        return str(stored.get("msgid") or "") % dict(stored.get("params") or {})
    return str(stored)


@dataclass(frozen=True)
class ColumnInspection:
    """One column as detection sees it, before the department chooses treatments."""

    name: str
    #: Logical type of the source values.
    type: str
    pii_kind: str | None
    #: The identifiers sit inside free text (the column is masked in place).
    embedded: bool
    #: Share (0-1) of the sampled values that validated as ``pii_kind``.
    detection_share: float
    #: The PII kind the header suggests, if any.
    header_hint: str | None
    default_treatment: str
    allowed_treatments: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["allowed_treatments"] = list(self.allowed_treatments)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnInspection:
        return cls(**{**data, "allowed_treatments": tuple(data["allowed_treatments"])})


@dataclass
class InspectReport:
    format: str
    encoding: str | None
    columns: list[ColumnInspection]
    #: Rows of the first chunk, on which types and kinds were decided.
    sampled_rows: int
    warnings: list[Note] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "columns": [c.to_dict() for c in self.columns],
            "sampled_rows": self.sampled_rows,
            "warnings": list(self.warnings),
        }


@dataclass
class ColumnReport:
    """One column of the published dataset."""

    name: str
    #: Logical type of the published values (string once pseudonymized, masked, generalized).
    type: str
    pii_kind: str | None
    treatment: str
    #: Name in the output Parquet file; None when the column is suppressed (dropped).
    output_name: str | None
    source_type: str
    quasi_identifier: bool = False
    embedded: bool = False
    #: The generalization level applied, e.g. "month", "district", "5-year band".
    generalization: str | None = None
    detection_share: float = 0.0
    #: Non-null share of the source values, 0-100.
    completeness: float = 100.0
    #: Share of checked values that were valid, 0-100; None for unchecked free text.
    validity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PipelineReport:
    format: str
    encoding: str | None
    row_count: int
    columns: list[ColumnReport]
    #: {"score": 0-100, "dimensions": {...}, "details": {...}}
    quality: dict[str, Any]
    k_anonymity: int | None
    k_min: int
    #: Output names of the quasi-identifier columns.
    quasi_identifiers: list[str]
    #: 0 when no further generalization was needed for k-anonymity.
    generalization_step: int = 0
    entity_key: str | None = None
    #: Whether the entity key was checked for uniqueness.
    key_unique: bool | None = None
    output_bytes: int = 0
    warnings: list[Note] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = [c.to_dict() for c in self.columns]
        return out
