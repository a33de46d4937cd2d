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

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        **params: object,
    ):
        # With ``params``, ``message`` is an English msgid (marked ``N_``) and ``.message`` the
        # formatted English text; the app translates ``msgid`` with ``params``.
        text = message % params if params else message
        super().__init__(text)
        self.message = text
        self.msgid = message
        self.params = params
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


class LimitExceeded(PipelineError):
    """The upload is larger than a configured cap (unpacked size, compression ratio, rows or
    cells): refused before it can exhaust memory or time. ``limit`` names the cap."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, limit: str, row: int | None = None, **params: object):
        super().__init__(message, row=row, **params)
        self.limit = limit

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["limit"] = self.limit
        return out


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
        **params: object,
    ):
        # ``k`` and ``k_min`` are also params of the message (``%(k)s``, ``%(k_min)s``).
        super().__init__(message, k=k, k_min=k_min, **params)
        self.k = k
        self.k_min = k_min
        self.quasi_identifiers = quasi_identifiers

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out.update(k=self.k, k_min=self.k_min, quasi_identifiers=self.quasi_identifiers)
        return out
