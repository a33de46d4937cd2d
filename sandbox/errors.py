"""Typed errors of the data sandbox.

Every message here is generic on purpose: a message never carries a data value, a literal
from the query or the engine's own error text (which can quote data, for example in a failed
cast). At most it names an identifier the caller typed.
"""

from __future__ import annotations

# Stable rule codes. API clients key on these (API.md: `errors.rule`), so never rename one.
PARSE_ERROR = "parse_error"
MULTIPLE_STATEMENTS = "multiple_statements"
NOT_SELECT = "not_select"
FORBIDDEN_FUNCTION = "forbidden_function"
FORBIDDEN_TABLE = "forbidden_table"
NOT_LICENSED = "not_licensed"
AMBIGUOUS_COLUMN = "ambiguous_column"
STAR_EXPANSION = "star_expansion"
NOT_AGGREGATED = "not_aggregated"
IDENTIFIER_OUTPUT = "identifier_output"
IDENTIFIER_FILTER = "identifier_filter"
FORBIDDEN_CONSTRUCT = "forbidden_construct"
FORBIDDEN_OPERATOR = "forbidden_operator"
FORBIDDEN_JOIN = "forbidden_join"
NOT_DIMENSION = "not_dimension"
UNBOUNDED_AGGREGATE = "unbounded_aggregate"
# HAVING on conditional data that is not a filter on released (noisy) outputs.
HAVING_NOT_RELEASED = "having_not_released"

RULES: frozenset[str] = frozenset(
    {
        PARSE_ERROR,
        MULTIPLE_STATEMENTS,
        NOT_SELECT,
        FORBIDDEN_FUNCTION,
        FORBIDDEN_TABLE,
        NOT_LICENSED,
        AMBIGUOUS_COLUMN,
        STAR_EXPANSION,
        NOT_AGGREGATED,
        IDENTIFIER_OUTPUT,
        IDENTIFIER_FILTER,
        FORBIDDEN_CONSTRUCT,
        FORBIDDEN_OPERATOR,
        FORBIDDEN_JOIN,
        NOT_DIMENSION,
        UNBOUNDED_AGGREGATE,
        HAVING_NOT_RELEASED,
    }
)


class SandboxError(Exception):
    """Base class of every error the sandbox raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PolicyViolation(SandboxError):
    """The query breaks the policy; `rule` is one of `RULES` (answer 422).

    `message` is an English msgid (marked with N_ where new); `params` are its `%(name)s`
    values, kept apart so that the app can translate (`market.i18n.translate`).
    """

    def __init__(self, rule: str, message: str, **params: object) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown policy rule {rule!r}")
        super().__init__(message % params if params else message)
        self.rule = rule
        self.msgid = message
        self.params = dict(params)

    def __repr__(self) -> str:
        return f"PolicyViolation({self.rule!r}, {self.message!r})"


class EngineError(SandboxError):
    """The engine failed. `kind` is a short category and `detail` at most an exception class
    name (for operators' logs); the engine's own text is never kept."""

    def __init__(
        self,
        message: str = "the query could not be executed",
        *,
        kind: str = "engine",
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


class QueryTimeout(EngineError):
    """The query ran past its wall-clock limit and was stopped (its worker may be killed)."""

    def __init__(self, message: str = "the query ran too long and was stopped") -> None:
        super().__init__(message, kind="timeout")


class ResourceLimit(EngineError):
    """The query hit a memory, temp-space or concurrency limit."""

    def __init__(self, message: str = "the query needed more resources than allowed") -> None:
        super().__init__(message, kind="resource")
