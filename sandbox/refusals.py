"""Why the sandbox did not answer a query: stable rule codes, the typed refusal and the audit
payload of every query (shared by the services and the API).

Rule codes beyond the SQL policy's own (``sandbox.errors.RULES``) are listed here; API clients
key on them (``errors.rule``), so never rename one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _

from market.errors import DomainError

from .errors import EngineError, QueryTimeout, ResourceLimit
from .models import QueryStatus
from .query import CheckedQuery

log = logging.getLogger(__name__)

AUDIT_TYPE = "sandbox.query"
#: Written with the ``running`` log row, in the transaction that charges quota and budget.
STARTED_AUDIT_TYPE = "sandbox.query_started"
MAX_LOGGED_SQL = 4000

# Rule codes of refusals outside the SQL policy (the policy's own are sandbox.errors.RULES).
NOT_FOUND = "not_found"
NOT_BUYER = "not_buyer"
BLACKLISTED = "blacklisted"
LICENSE_NOT_ACTIVE = "license_not_active"
QUOTA_EXHAUSTED = "quota_exhausted"
PRIVACY_BUDGET_EXHAUSTED = "privacy_budget_exhausted"
TIMEOUT = "timeout"
RESOURCE_LIMIT = "resource_limit"
EXECUTION_ERROR = "execution_error"
FORBIDDEN_ACCESS = "forbidden_access"
ENGINE_UNAVAILABLE = "engine_unavailable"
NO_TABLES = "no_tables"
#: A data-product license whose product grants consented lookups only (market.scenarios).
PRODUCT_ACCESS = "product_access"
#: The same new question is being released for another request; ask again (it will be free).
RELEASE_IN_FLIGHT = "release_in_flight"


class QueryRefused(DomainError):
    """A query the sandbox did not answer. ``status`` is the HTTP code, ``errors["rule"]`` the
    stable rule code; ``audit`` is its ``sandbox.query`` event (so that even a caller that
    forgets :func:`sandbox.services.record_refusal` leaves a trace)."""

    def __init__(
        self,
        status: int,
        rule: str,
        message: str,
        *,
        attempt: Attempt,
        query_status: str = QueryStatus.refused,
        charge_quota: bool = False,
        extra_audit: tuple[str, Any, dict[str, Any]] | None = None,
    ) -> None:
        self.status = status
        self.rule = rule
        self.query_status = query_status
        self.attempt = attempt
        self.charge_quota = charge_quota
        self.extra_audit = extra_audit
        self.elapsed_ms = attempt.elapsed_ms()
        super().__init__(
            message,
            {"rule": rule},
            audit=(
                AUDIT_TYPE,
                ("license", attempt.license_id),
                audit_data(
                    attempt, query_status, rule, 0, None, self.elapsed_ms, attempt.epsilon_spent
                ),
            ),
        )


@dataclass
class Attempt:
    """What is known about a query as it goes through the steps (for the log and audit)."""

    license_id: int
    #: The query text, once the caller is known to hold the license; None until then, so
    #: that a refusal of a caller who may not use the license never reads (nor records) what
    #: they sent (#14.8: authorization before validation).
    sql: str | None = None
    started: float = field(default_factory=time.perf_counter)
    #: The license's buyer, once we know the caller is that buyer (only then is it logged).
    buyer_org_id: int | None = None
    checked: CheckedQuery | None = None
    #: ``slug@version`` of every table in the workspace (see Workspace.data_versions).
    data_versions: str = ""
    quota_charged: bool = False
    epsilon_spent: Decimal = Decimal(0)
    #: The ``running`` log row, once step (a) committed (quota and budget are then spent).
    log_id: int | None = None
    #: The release claim this attempt holds (a new DP release in flight), if any.
    claim_key: str | None = None

    def elapsed_ms(self) -> int:
        return max(0, math.ceil((time.perf_counter() - self.started) * 1000))

    @property
    def sql_hash(self) -> str | None:
        if self.sql is None:
            return None
        return hashlib.sha256(self.sql.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def logged_sql(self) -> str | None:
        """The SQL as the log and audit keep it (None: not read, see ``sql``)."""
        return None if self.sql is None else self.sql[:MAX_LOGGED_SQL]

    @property
    def canonical_hash(self) -> str | None:
        """The question's identity: its canonical form over these data versions."""
        if self.checked is None:
            return None
        text = f"{self.data_versions}\n{self.checked.canonical}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audit_data(
    attempt: Attempt,
    decision: str,
    rule: str | None,
    rows: int,
    suppressed_groups: int | None,
    elapsed_ms: int,
    epsilon: Decimal,
) -> dict[str, Any]:
    """The ``sandbox.query`` payload. ``suppressed_groups`` is None on DP data: how many
    groups fell below the threshold is never recorded where it could be read back."""
    return {
        "license": attempt.license_id,
        "sql_hash": attempt.sql_hash,
        "sql": attempt.logged_sql,
        "decision": QueryStatus.error.value if decision == QueryStatus.timeout else str(decision),
        "rule": rule,
        "rows": rows,
        "suppressed_groups": suppressed_groups,
        "elapsed_ms": elapsed_ms,
        "epsilon": format(epsilon.normalize(), "f") if epsilon else "0",
        "charged": attempt.log_id is not None,
    }


# --------------------------------------------------------------------------- the license


def engine_refusal(exc: EngineError, attempt: Attempt) -> QueryRefused:
    """The refusal of an accepted query that the engine did not answer. Its quota and budget
    were committed before the run and stay spent (``attempt.log_id``).

    Every runtime failure of the query itself (a failed cast, a division, a memory or file
    guard) answers the same generic message and rule ``execution_error``: which one it was can
    depend on the data, and on DP data even telling them apart would be an oracle. A timeout
    keeps its rule (its duration is public anyway); an unavailable engine answers 503.
    """
    if isinstance(exc, QueryTimeout):
        return QueryRefused(
            422,
            TIMEOUT,
            _("The query ran too long and was stopped; narrow it down and try again."),
            attempt=attempt,
            query_status=QueryStatus.timeout,
        )
    if isinstance(exc, ResourceLimit) or exc.kind in ("engine", "permission"):
        if exc.kind == "permission":
            log.warning(
                "sandbox engine refused access for license %s (query %s)",
                attempt.license_id,
                (attempt.sql_hash or "")[:16],
            )
        return QueryRefused(
            422,
            EXECUTION_ERROR,
            _(
                "The query could not be executed. It was charged like an answer; check the "
                "expressions and try again."
            ),
            attempt=attempt,
            query_status=QueryStatus.error,
        )
    log.error(
        "sandbox engine unavailable (%s %s) for license %s",
        exc.kind,
        exc.detail,
        attempt.license_id,
    )
    return QueryRefused(
        503,
        ENGINE_UNAVAILABLE,
        _(
            "The sandbox could not run this query right now; the incident has been logged. "
            "Try again later."
        ),
        attempt=attempt,
        query_status=QueryStatus.error,
    )
