"""Sandbox services: run a buyer's query under its license, with quota, privacy budget, log
and audit. The pure policy and the engine live in this package's other modules.

The order of one query, in the caller's transaction:

1. the license must be the caller's (else 404) and usable now (else 403; blacklisted: 403);
2. the policy checks the SQL (else 422 with ``errors.rule``) — nothing is charged yet;
3. one unit of quota is taken by an atomic ``UPDATE … WHERE quota_remaining > 0 AND status =
   'active' AND term not over`` (a revoked or suspended license stops here at once; no unit
   left: 429). On PostgreSQL that row lock also serializes the license's concurrent queries;
4. if a table needs differential privacy and this license never ran the same canonical query,
   the query's epsilon is taken by a second atomic ``UPDATE … WHERE remaining - cost >= 0``
   (not enough left: 429). A repeat is answered with the same noise and spends nothing;
5. the engine runs; the result is post-processed (k-suppression, DP noise, row cap);
6. the log row and the ``sandbox.query`` audit event are written.

A refusal at any step raises :class:`QueryRefused`; the request's work is rolled back and
:func:`record_refusal` writes the log row and the audit event in a transaction of their own.
Decisions on engine failures:

- timeout: 422, rule ``timeout``; the unit of quota *is* used (the query was accepted and
  held the engine for the whole limit), no privacy budget is spent (nothing was released);
- the engine's memory limit: 422, rule ``resource_limit``; a failed execution (a bad cast…):
  422, rule ``execution_error``; the engine's own file/network guard: 422, rule
  ``forbidden_access``; none of them uses quota;
- the engine unavailable or a data file missing: 503, rule ``engine_unavailable``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licenses import services as licenses
from licenses.blacklist import is_blacklisted
from licenses.models import License
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.audit import services as audit
from market.db import utcnow
from market.errors import Forbidden, NotFound

from . import permissions as perm
from .engine import Engine
from .errors import EngineError, PolicyViolation
from .models import QueryStatus, SandboxQuery
from .policy import check
from .query import CheckedQuery
from .refusals import (
    AUDIT_TYPE,
    BLACKLISTED,
    LICENSE_NOT_ACTIVE,
    MAX_LOGGED_SQL,
    NO_TABLES,
    NOT_BUYER,
    NOT_FOUND,
    PRIVACY_BUDGET_EXHAUSTED,
    QUOTA_EXHAUSTED,
    Attempt,
    QueryRefused,
    audit_data,
    engine_refusal,
)
from .results import SandboxResult
from .runner import run_query as run_checked
from .workspace import SandboxSettings, Workspace, build_workspace


@dataclass(frozen=True)
class QueryRun:
    """An answered query: its log row, the released result and the license's balances."""

    log: SandboxQuery
    checked: CheckedQuery
    result: SandboxResult
    quota_remaining: int
    privacy_budget_remaining: Decimal | None
    repeat: bool


@dataclass(frozen=True)
class CostEstimate:
    #: What running the query now would spend: 0 for a repeat or without a DP table.
    epsilon_cost: Decimal
    #: The query's own cost (what a first run spends).
    query_epsilon: Decimal
    #: True when this license already paid for the same canonical query (costs nothing now).
    repeat: bool
    privacy_budget_remaining: Decimal | None
    uses_dp: bool


def dp_secret(key: bytes, license_id: int, data_versions: str = "") -> str:
    """The secret that seeds a license's DP noise: derived from the platform's pseudonym key,
    the license id (one license's answers say nothing about another's noise) and the data
    versions of its tables (new data gets new noise: reusing the old noise on changed data
    would let a difference of two answers reveal the exact change)."""
    message = f"sandbox.dp:{license_id}:{data_versions}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _usable_license(session: Session, actor: Actor, attempt: Attempt, now: dt.datetime) -> License:
    """The caller's license if it may run queries now; otherwise raises QueryRefused."""
    try:
        lic = licenses.active_license_for(session, attempt.license_id, actor, now)
    except NotFound as exc:
        raise QueryRefused(404, NOT_FOUND, exc.message, attempt=attempt) from None
    except Forbidden as exc:
        lic = session.get(License, attempt.license_id)
        if lic is not None and actor.role == "buyer" and lic.buyer_org_id == actor.org_id:
            attempt.buyer_org_id = lic.buyer_org_id
        if not perm.can_run_queries(actor):
            rule = NOT_BUYER
        elif is_blacklisted(session, actor.org_id):
            rule = BLACKLISTED
        else:
            rule = LICENSE_NOT_ACTIVE
        raise QueryRefused(403, rule, exc.message, attempt=attempt, extra_audit=exc.audit) from None
    attempt.buyer_org_id = lic.buyer_org_id
    return lic


def _require_tables(workspace: Workspace, attempt: Attempt) -> None:
    if not workspace.tables:
        raise QueryRefused(
            422,
            NO_TABLES,
            "None of this license's datasets can be queried right now (no listed version).",
            attempt=attempt,
        )


def _check(workspace: Workspace, sql: str, attempt: Attempt) -> CheckedQuery:
    _require_tables(workspace, attempt)
    try:
        return check(sql, workspace.context())
    except PolicyViolation as exc:
        raise QueryRefused(422, exc.rule, exc.message, attempt=attempt) from None


def _repeat_of(session: Session, license_id: int, canonical_hash: str) -> bool:
    """Whether this license already paid privacy budget for the same canonical query."""
    return (
        session.scalar(
            sa.select(SandboxQuery.id)
            .where(
                SandboxQuery.license_id == license_id,
                SandboxQuery.canonical_hash == canonical_hash,
                SandboxQuery.status == QueryStatus.ok.value,
                SandboxQuery.epsilon_spent > 0,
            )
            .limit(1)
        )
        is not None
    )


_licenses = License.__table__


def _take_quota(session: Session, license_id: int, now: dt.datetime) -> int | None:
    """One unit of quota, atomically; the remaining count, or None if none was taken."""
    row = session.execute(
        sa.update(_licenses)
        .where(
            _licenses.c.id == license_id,
            _licenses.c.quota_remaining > 0,
            _licenses.c.status == LicenseStatus.ACTIVE.value,
            sa.or_(_licenses.c.ends_at.is_(None), _licenses.c.ends_at > now),
        )
        .values(quota_remaining=_licenses.c.quota_remaining - 1)
        .returning(_licenses.c.quota_remaining)
    ).first()
    return None if row is None else int(row[0])


def _take_budget(session: Session, license_id: int, cost: Decimal) -> bool:
    """``cost`` epsilon from the license's privacy budget, atomically; False if not enough.

    Rounded to the column's four places in SQL, so SQLite's floating point cannot drift.
    """
    left = sa.func.round(_licenses.c.privacy_budget_remaining - cost, 4)
    row = session.execute(
        sa.update(_licenses)
        .where(
            _licenses.c.id == license_id,
            _licenses.c.privacy_budget_remaining.is_not(None),
            left >= 0,
        )
        .values(privacy_budget_remaining=left)
        .returning(_licenses.c.id)
    ).first()
    return row is not None


def _why_no_quota(
    session: Session, license_id: int, now: dt.datetime, attempt: Attempt
) -> QueryRefused:
    status, ends_at = session.execute(
        sa.select(_licenses.c.status, _licenses.c.ends_at).where(_licenses.c.id == license_id)
    ).one()
    if status != LicenseStatus.ACTIVE.value or (ends_at is not None and ends_at <= now):
        return QueryRefused(
            403,
            LICENSE_NOT_ACTIVE,
            f"License {license_id} cannot be used: it is "
            f"{status if status != LicenseStatus.ACTIVE.value else 'past its term'}.",
            attempt=attempt,
        )
    return QueryRefused(
        429,
        QUOTA_EXHAUSTED,
        f"License {license_id} has used its whole query quota; ask for a new license or an "
        "upgrade to run more queries.",
        attempt=attempt,
    )


def _charge(
    session: Session, lic: License, checked: CheckedQuery, attempt: Attempt, now: dt.datetime
) -> bool:
    """Steps 3 and 4: quota, then privacy budget. Returns whether the query is a DP repeat."""
    attempt.checked = checked
    if _take_quota(session, lic.id, now) is None:
        raise _why_no_quota(session, lic.id, now, attempt)
    attempt.quota_charged = True
    cost = checked.epsilon_cost
    if cost <= 0:
        return False
    canonical = attempt.canonical_hash
    assert canonical is not None
    if _repeat_of(session, lic.id, canonical):
        return True
    if not _take_budget(session, lic.id, cost):
        raise QueryRefused(
            429,
            PRIVACY_BUDGET_EXHAUSTED,
            f"License {lic.id} does not have enough privacy budget left for this query "
            f"(it costs epsilon {format(cost.normalize(), 'f')}). Repeating a question already "
            "answered costs nothing; new questions need a new license.",
            attempt=attempt,
        )
    attempt.epsilon_spent = cost
    return False


# ---------------------------------------------------------------------------- public API


def workspace_of(
    session: Session, actor: Actor, license_id: int, settings: SandboxSettings
) -> tuple[License, Workspace]:
    """The license (its buyer, the operator or the regulator) and the tables it grants,
    whatever its status. Raises NotFound for anyone else."""
    lic = licenses.get_license(session, actor, license_id)
    return lic, build_workspace(lic, settings)


def run_query(
    session: Session,
    actor: Actor,
    license_id: int,
    sql: str,
    *,
    engine: Engine,
    local_path: Callable[[str], Any],
    settings: SandboxSettings,
    dp_key: bytes,
    now: dt.datetime | None = None,
) -> QueryRun:
    """Run ``sql`` in the workspace of license ``license_id`` for its buyer (steps above).

    ``local_path`` maps a storage key to a local Parquet file (``storage().local_path``);
    ``dp_key`` is the platform's pseudonym key (seeds the DP noise with :func:`dp_secret`).
    Flushes the log row and the audit event; never commits.

    Raises QueryRefused (404, 403, 422, 429 or 503, with its rule) for every query it does
    not answer; call :func:`record_refusal` after rolling back.
    """
    now = now or utcnow()
    attempt = Attempt(license_id, sql)
    lic = _usable_license(session, actor, attempt, now)
    workspace = build_workspace(lic, settings)
    attempt.data_versions = workspace.data_versions
    _require_tables(workspace, attempt)
    repeat = False

    def before_run(checked: CheckedQuery) -> None:
        nonlocal repeat
        repeat = _charge(session, lic, checked, attempt, now)

    try:
        outcome = run_checked(
            sql,
            workspace.context(),
            workspace.files(local_path),
            engine,
            timeout_s=settings.timeout_s,
            dp_secret=dp_secret(dp_key, lic.id, workspace.data_versions)
            if workspace.uses_dp
            else None,
            before_run=before_run,
        )
    except PolicyViolation as exc:
        raise QueryRefused(422, exc.rule, exc.message, attempt=attempt) from None
    except EngineError as exc:
        raise engine_refusal(exc, attempt) from None
    result = outcome.result
    elapsed = attempt.elapsed_ms()
    entry = SandboxQuery(
        license_id=lic.id,
        buyer_org_id=lic.buyer_org_id,
        user_id=actor.user_id,
        sql_text=sql[:MAX_LOGGED_SQL],
        sql_hash=attempt.sql_hash,
        canonical_hash=attempt.canonical_hash,
        status=QueryStatus.ok.value,
        rule=None,
        rows_returned=len(result.rows),
        suppressed_groups=result.suppressed_groups,
        truncated=result.truncated,
        elapsed_ms=elapsed,
        quota_charged=True,
        epsilon_spent=attempt.epsilon_spent,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    data = audit_data(attempt, QueryStatus.ok, None, result, elapsed, attempt.epsilon_spent)
    audit.record(session, AUDIT_TYPE, actor, ("license", lic.id), {**data, "query_id": entry.id})
    quota, budget = session.execute(
        sa.select(_licenses.c.quota_remaining, _licenses.c.privacy_budget_remaining).where(
            _licenses.c.id == lic.id
        )
    ).one()
    return QueryRun(entry, outcome.checked, result, int(quota), _decimal(budget), repeat)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(Decimal("0.0001"))


def record_refusal(session: Session, actor: Actor, refusal: QueryRefused) -> SandboxQuery | None:
    """Write a refused query's log row and audit event; call it after the rollback, then commit.

    The log row is written only when the caller is the license's buyer (another buyer's probe
    of a license id is audited, but kept out of that license's history). A timeout uses its
    unit of quota here. A license found past its term is expired here too (the rolled-back
    request could not keep that change).
    """
    attempt = refusal.attempt
    now = utcnow()
    lic = session.get(License, attempt.license_id)
    if lic is not None and refusal.rule == LICENSE_NOT_ACTIVE:
        licenses.expire_if_due(session, lic, now)
    charged = False
    if refusal.charge_quota and lic is not None:
        charged = _take_quota(session, lic.id, now) is not None
    entry = None
    if lic is not None and attempt.buyer_org_id == lic.buyer_org_id:
        entry = SandboxQuery(
            license_id=lic.id,
            buyer_org_id=lic.buyer_org_id,
            user_id=actor.user_id,
            sql_text=attempt.sql[:MAX_LOGGED_SQL],
            sql_hash=attempt.sql_hash,
            canonical_hash=attempt.canonical_hash,
            status=str(refusal.query_status),
            rule=refusal.rule,
            elapsed_ms=refusal.elapsed_ms,
            quota_charged=charged,
            epsilon_spent=Decimal(0),
            created_at=now,
        )
        session.add(entry)
        session.flush()
    if refusal.extra_audit is not None:
        type_, subject, data = refusal.extra_audit
        audit.record(session, type_, actor, subject, data)
    type_, subject, data = refusal.audit  # type: ignore[misc]
    extra = {"query_id": entry.id} if entry is not None else {}
    audit.record(session, type_, actor, subject, {**data, **extra})
    return entry


def estimate_cost(
    session: Session,
    actor: Actor,
    license_id: int,
    sql: str,
    *,
    settings: SandboxSettings,
    now: dt.datetime | None = None,
) -> CostEstimate:
    """What ``sql`` would cost in privacy budget, by the policy alone: nothing is run, charged
    or logged. Raises QueryRefused (404, 403, 422) like :func:`run_query`."""
    attempt = Attempt(license_id, sql)
    lic = _usable_license(session, actor, attempt, now or utcnow())
    workspace = build_workspace(lic, settings)
    attempt.data_versions = workspace.data_versions
    checked = _check(workspace, sql, attempt)
    attempt.checked = checked
    repeat = checked.epsilon_cost > 0 and _repeat_of(session, lic.id, attempt.canonical_hash or "")
    return CostEstimate(
        Decimal(0) if repeat else checked.epsilon_cost,
        checked.epsilon_cost,
        bool(repeat),
        _decimal(lic.privacy_budget_remaining),
        workspace.uses_dp,
    )


def query_history(session: Session, actor: Actor, license_id: int) -> sa.Select:
    """The license's query log, newest first: for its buyer, the operator and the regulator.

    Raises NotFound for anyone else.
    """
    lic = session.get(License, license_id)
    if lic is None or not perm.can_read_history(actor, lic.buyer_org_id):
        raise NotFound("No such license.")
    return (
        sa.select(SandboxQuery)
        .where(SandboxQuery.license_id == license_id)
        .order_by(SandboxQuery.created_at.desc(), SandboxQuery.id.desc())
    )


def usable_licenses(session: Session, actor: Actor) -> list[License]:
    """The caller's organization's licenses that can run queries now, newest first (buyers);
    expires those that are due first."""
    if not perm.can_run_queries(actor):
        return []
    licenses.expire_due(session, buyer_org_id=actor.org_id)
    return list(
        session.scalars(
            sa.select(License)
            .where(
                License.buyer_org_id == actor.org_id,
                License.status == LicenseStatus.ACTIVE.value,
            )
            .order_by(License.created_at.desc(), License.id.desc())
        )
    )


def json_value(value: Any) -> Any:
    """A result cell as JSON: exact decimals as strings, times in ISO 8601, non-finite floats
    as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)


def json_rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[json_value(v) for v in row] for row in rows]


__all__ = [
    "AUDIT_TYPE",
    "CostEstimate",
    "QueryRefused",
    "QueryRun",
    "SandboxSettings",
    "dp_secret",
    "estimate_cost",
    "json_rows",
    "json_value",
    "query_history",
    "record_refusal",
    "run_query",
    "usable_licenses",
    "workspace_of",
]
