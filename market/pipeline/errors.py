"""Typed errors of the publication pipeline.

Every message names a row number and/or a column name, never a cell value: messages end up
in logs, job records and API answers, where raw personal data must not go.

Row numbers count as a spreadsheet does: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class. ``row`` is the 1-based row number (header = 1), ``column`` the column name."""

    #: A stable, machine-readable code for API error bodies.
    code = "pipeline_error"

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "row": self.row, "column": self.column}


class UnsupportedFormat(PipelineError):
    """The file is not CSV, XLSX or Parquet (by name or by content)."""

    code = "unsupported_format"


class EncodingError(PipelineError):
    """The text encoding could not be detected, or a row does not decode."""

    code = "encoding_error"


class MalformedFile(PipelineError):
    """The file is structurally broken: ragged rows, bad header, unreadable workbook..."""

    code = "malformed_file"


class InvalidOverride(PipelineError):
    """A treatment override is unknown, not applicable, or would publish an identifier."""

    code = "invalid_override"


class InvalidEntityKey(PipelineError):
    """The declared entity-key column does not exist."""

    code = "invalid_entity_key"


class KAnonymityTooLow(PipelineError):
    """Even the coarsest generalization leaves a quasi-identifier group below ``k_min``."""

    code = "k_anonymity_too_low"

    def __init__(
        self,
        message: str,
        *,
        k: int,
        k_min: int,
        quasi_identifiers: list[str],
    ):
        super().__init__(message)
        self.k = k
        self.k_min = k_min
        self.quasi_identifiers = quasi_identifiers

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out.update(k=self.k, k_min=self.k_min, quasi_identifiers=self.quasi_identifiers)
        return out
