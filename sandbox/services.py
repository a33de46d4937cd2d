"""Sandbox services: run a buyer's query under its license, with quota, privacy budget,
release cache, log and audit. The pure policy and the engine live in this package's other
modules.

The engine never runs inside a database transaction (a 10-second query must not hold a
connection, nor on SQLite the write lock that every transaction takes). One query is:

(a) a short transaction: the license must be the caller's (else 404) and usable now (else
    403); the policy checks the SQL (else 422 with ``errors.rule``; refusals here depend on
    the SQL, the license and the ledgers, never on the data); one unit of quota is taken by an
    atomic ``UPDATE … WHERE quota_remaining > 0 …`` (none left: 429). If the same question
    (release key) was already released over the same data versions, by any buyer, the stored
    release is the answer: no engine, no budget, nothing new revealed; the log row and the
    ``sandbox.query`` event are written and the request ends. Otherwise, for every
    differentially private dataset the query reads, its epsilon and delta are taken from the
    buyer organization's ledger and from the version's ledger by atomic ``UPDATE … WHERE
    spent + cost <= total`` (sequential composition; not enough left: 429
    ``privacy_budget_exhausted``); the log row in state ``running`` and its
    ``sandbox.query_started`` event are written; COMMIT (``end_transaction``);
(b) the engine runs, with no transaction open and no connection checked out;
(c) a second short transaction: the log row's outcome, the ``sandbox.query`` event, the
    release stored (for a DP answer). The request boundary commits it.

After (a) committed, nothing is given back: a timeout (rule ``timeout``), any runtime error
of the engine (one generic message, rule ``execution_error``), a resource limit or the
engine being unavailable all keep the unit of quota and the budget, so that an error can
never be a free yes/no answer about the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, defer, joinedload, lazyload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from licenses import services as licenses
from licenses.blacklist import is_blacklisted
from licenses.models import License, LicenseItem
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.audit import services as audit
from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
from market.datasets.privacy import effective_privacy
from market.db import utcnow
from market.errors import Forbidden, NotFound

from . import permissions as perm
from .engine import Engine
from .errors import EngineError, PolicyViolation
from .models import (
    PrivacySpending,
    QueryStatus,
    SandboxQuery,
    SandboxRelease,
    SandboxReleaseClaim,
    VersionSpending,
)
from .policy import check
from .query import CheckedQuery
from .refusals import (
    AUDIT_TYPE,
    BLACKLISTED,
    LICENSE_NOT_ACTIVE,
    NO_TABLES,
    NOT_BUYER,
    NOT_FOUND,
    PRIVACY_BUDGET_EXHAUSTED,
    PRODUCT_ACCESS,
    QUOTA_EXHAUSTED,
    RELEASE_IN_FLIGHT,
    STARTED_AUDIT_TYPE,
    Attempt,
    QueryRefused,
    audit_data,
    engine_refusal,
)
from .results import SandboxResult
from .runner import run_query as run_checked
from .workspace import SandboxSettings, Workspace, WorkspaceTable, build_workspace

_EPS = Decimal("0.0001")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """A released answer, JSON-native (what the API returns and a release stores)."""

    columns: list[str]
    column_kinds: list[str]
    rows: list[list[Any]]
    #: Per output column: its 95% error bound (``ErrorBound.as_dict``), or None (exact,
    #: dimension).
    error_bounds: list[dict[str, Any] | None]
    truncated: bool
    #: Groups withheld below k: only on non-DP (open) data; None on DP data (no oracle).
    suppressed_groups: int | None

    def payload(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "column_kinds": self.column_kinds,
            "rows": self.rows,
            "error_bounds": self.error_bounds,
            "truncated": self.truncated,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            list(data["columns"]),
            list(data["column_kinds"]),
            [list(r) for r in data["rows"]],
            list(data["error_bounds"]),
            bool(data["truncated"]),
            None,
        )


@dataclass(frozen=True)
class Budget:
    """One DP dataset's balances for one buyer organization."""

    dataset_id: int
    slug: str
    version: int
    epsilon_per_query: Decimal
    delta: Decimal
    epsilon_budget: Decimal
    epsilon_spent: Decimal
    version_budget: Decimal
    version_spent: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.epsilon_budget - self.epsilon_spent)

    @property
    def version_remaining(self) -> Decimal:
        return max(Decimal(0), self.version_budget - self.version_spent)

    def as_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "slug": self.slug,
            "version": self.version,
            "epsilon_per_query": _eps(self.epsilon_per_query),
            "delta": format(self.delta.normalize(), "f"),
            "epsilon_budget": _eps(self.epsilon_budget),
            "epsilon_spent": _eps(self.epsilon_spent),
            "budget_remaining": _eps(self.remaining),
            "version_budget": _eps(self.version_budget),
            "version_remaining": _eps(self.version_remaining),
        }


@dataclass(frozen=True)
class LoggedQuery:
    """What the API reads of a log row written by Core (``QueryRun.log``)."""

    id: int
    elapsed_ms: int


@dataclass(frozen=True)
class QueryRun:
    """An answered query: its log row, the answer and the balances after it."""

    log: SandboxQuery | LoggedQuery
    answer: Answer
    quota_remaining: int
    uses_dp: bool
    #: True when the answer is a stored release (no engine run, no budget spent).
    cached: bool
    epsilon_spent: Decimal
    budgets: list[Budget] = field(default_factory=list)

    @property
    def budget_remaining(self) -> Decimal | None:
        return min((b.remaining for b in self.budgets), default=None)


@dataclass(frozen=True)
class CostEstimate:
    #: What running the query now would spend: 0 when cached or without a DP table.
    epsilon_cost: Decimal
    #: The query's own cost (what a new release spends).
    query_epsilon: Decimal
    delta_cost: Decimal
    #: True when the same question over the same data was already released (free now).
    cached: bool
    uses_dp: bool
    #: The balances of every DP dataset the query reads.
    budgets: list[Budget]
    #: Whether it could run now (enough organization and version budget, or cached).
    affordable: bool

    @property
    def budget_remaining(self) -> Decimal | None:
        return min((b.remaining for b in self.budgets), default=None)


def _eps(value: Decimal) -> str:
    return format(Decimal(value).quantize(_EPS), "f")


def _dec(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _usable_license(
    session: Session, actor: Actor, attempt: Attempt, now: dt.datetime, sql: Any
) -> License:
    """The caller's license if it may run queries now, with ``attempt.sql`` read from ``sql``;
    otherwise raises QueryRefused.

    Role and object come first (#14.8): ``sql`` is not looked at until the caller is known
    to be the license's buyer. A request body that failed validation reaches the services as
    ``market.auth.InvalidArguments`` values, which raise their 422 when first used: here,
    for the license's buyer only. Another caller's refusal (404, 403) records no SQL at all;
    the buyer's own refusal (license not active, blacklisted) records it if it is text.
    """
    try:
        lic = licenses.active_license_for(session, attempt.license_id, actor, now)
    except NotFound as exc:
        raise QueryRefused(404, NOT_FOUND, exc.message, attempt=attempt) from None
    except Forbidden as exc:
        lic = session.get(License, attempt.license_id)
        if lic is not None and actor.role == "buyer" and lic.buyer_org_id == actor.org_id:
            attempt.buyer_org_id = lic.buyer_org_id
            if type(sql) is str:  # never an invalid argument's stand-in (it would raise)
                attempt.sql = sql
        if not perm.can_run_queries(actor):
            rule = NOT_BUYER
        elif is_blacklisted(session, actor.org_id):
            rule = BLACKLISTED
        else:
            rule = LICENSE_NOT_ACTIVE
        raise QueryRefused(403, rule, exc.message, attempt=attempt, extra_audit=exc.audit) from None
    attempt.buyer_org_id = lic.buyer_org_id
    from market.scenarios.services import ensure_use_allowed  # a data product's access

    try:
        ensure_use_allowed(session, lic, "sandbox")
    except Forbidden as exc:
        raise QueryRefused(403, PRODUCT_ACCESS, exc.message, attempt=attempt) from None
    # The caller holds the license: an invalid body's 422 may be raised now (str() of the
    # stand-in raises it).
    attempt.sql = sql if type(sql) is str else str(sql)
    return lic


def _require_tables(workspace: Workspace, attempt: Attempt) -> None:
    if not workspace.tables:
        raise QueryRefused(
            422,
            NO_TABLES,
            _("None of this license's datasets can be queried right now (no listed version)."),
            attempt=attempt,
        )


class _CheckCache:
    """Accepted queries by (SQL text, workspace): the policy check is a pure function of the
    two, and it is most of a repeated question's CPU (sqlglot parse, rewrite, canonical form).

    The key holds the whole workspace (every table's version, columns, kinds, bounds, privacy
    settings and the row cap), so any change to what a license grants is a different key.
    Only accepted queries are kept (a refusal is checked again, and logged, each time);
    bounded, least recently used first out. Per process; thread-safe.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, int], CheckedQuery] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, sql: str, workspace: Workspace, tables_key: str | None = None) -> CheckedQuery:
        """Raises PolicyViolation like ``sandbox.policy.check``. ``tables_key``: the caller's
        ``repr(workspace.tables)``, if it has it already (``sandbox.fastpath`` memoizes it)."""
        key = (sql, tables_key if tables_key is not None else repr(workspace.tables),
               workspace.row_cap)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        checked = check(sql, workspace.context())
        with self._lock:
            self._items[key] = checked
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return checked

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


checks = _CheckCache()


def _check(workspace: Workspace, sql: str, attempt: Attempt) -> CheckedQuery:
    _require_tables(workspace, attempt)
    try:
        return checks.check(sql, workspace)
    except PolicyViolation as exc:
        raise QueryRefused(422, exc.rule, _policy_message(exc), attempt=attempt) from None


def _policy_message(exc: PolicyViolation) -> str:
    params = getattr(exc, "params", None)
    if params:
        from market.i18n import translate

        return translate(exc.message, params)
    return _(exc.message)


_licenses = License.__table__
_spending = PrivacySpending.__table__
_version_spending = VersionSpending.__table__


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
            _("License %(id)s cannot be used now (not active or past its term).", id=license_id),
            attempt=attempt,
        )
    return QueryRefused(
        429,
        QUOTA_EXHAUSTED,
        _(
            "License %(id)s has used its whole query quota; ask for a new license or an "
            "upgrade to run more queries.",
            id=license_id,
        ),
        attempt=attempt,
    )


# ------------------------------------------------------------------------ the privacy ledger


def _charge_ledger(
    session: Session, t: sa.Table, keys: dict[str, Any], conflict: list[str], cost: Decimal,
    delta: Decimal, total: Decimal,
) -> Decimal | None:
    """``cost`` epsilon from one ledger row, atomically, in one statement: the row is made
    with ``cost`` spent if it does not exist yet, else ``UPDATE … WHERE spent + cost <= total``
    (``INSERT … ON CONFLICT DO UPDATE … WHERE``: no read-modify-write; PostgreSQL's row lock
    orders concurrent charges, and a concurrent first charge waits for the other's insert and
    then takes the update branch; SQLite's write lock serializes them). Rounded to four places
    in SQL so that SQLite's floating point cannot drift. Returns the epsilon spent after the
    charge, or None when the ledger has not enough left (nothing changed)."""
    first = cost.quantize(_EPS, rounding=ROUND_HALF_UP)
    if first > total:  # not even an empty ledger could pay it (and no row is made)
        return None
    after = sa.func.round(t.c.epsilon_spent + cost, 4)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    row = session.execute(
        insert(t)
        .values(**keys, epsilon_spent=first, delta_spent=delta, releases=1)
        .on_conflict_do_update(
            index_elements=conflict,
            set_={
                "epsilon_spent": after,
                "delta_spent": t.c.delta_spent + delta,
                "releases": t.c.releases + 1,
            },
            where=after <= total,
        )
        .returning(t.c.epsilon_spent)
    ).first()
    return None if row is None else _dec(row[0])


def _dp_tables(workspace: Workspace, checked: CheckedQuery) -> list[WorkspaceTable]:
    """The differentially private tables the query reads (each is charged)."""
    used = {s.lower() for s in checked.charged_tables}
    return [t for t in workspace.tables if t.privacy is not None and t.slug.lower() in used]


def _charge_budget(
    session: Session,
    org_id: int,
    tables: Sequence[WorkspaceTable],
    checked: CheckedQuery,
    attempt: Attempt,
) -> tuple[Decimal, list[Budget] | None]:
    """Charge every DP table's organization and version ledgers; raises QueryRefused (429)
    when one of them has not enough left (the caller's transaction is then rolled back).
    Returns the cost and the balances right after the charge (None when nothing was
    charged)."""
    cost = Decimal(checked.epsilon_cost)
    delta = Decimal(checked.delta_cost)
    if cost <= 0:
        return Decimal(0), None
    budgets = []
    for table in tables:
        privacy = table.privacy
        assert privacy is not None
        spent = _charge_ledger(
            session,
            _spending,
            {"buyer_org_id": org_id, "dataset_id": table.dataset_id},
            ["buyer_org_id", "dataset_id"],
            cost,
            delta,
            privacy.epsilon_budget,
        )
        if spent is None:
            raise QueryRefused(
                429,
                PRIVACY_BUDGET_EXHAUSTED,
                _(
                    "Your organization does not have enough privacy budget left on %(table)s "
                    "for a new question (it costs epsilon %(cost)s). Questions already "
                    "answered cost nothing.",
                    table=table.slug,
                    cost=_eps(cost),
                ),
                attempt=attempt,
            )
        vspent = _charge_ledger(
            session,
            _version_spending,
            {"version_id": table.version_id, "dataset_id": table.dataset_id},
            ["version_id"],
            cost,
            delta,
            privacy.version_budget,
        )
        if vspent is None:
            raise QueryRefused(
                429,
                PRIVACY_BUDGET_EXHAUSTED,
                _(
                    "This version of %(table)s has released all the new answers it may; only "
                    "questions already answered can be asked until a new version is published.",
                    table=table.slug,
                ),
                attempt=attempt,
            )
        budgets.append(
            Budget(
                table.dataset_id, table.slug, table.version, privacy.epsilon_per_query,
                privacy.delta, privacy.epsilon_budget, spent, privacy.version_budget, vspent,
            )
        )
    return cost, budgets


def budgets_of(session: Session, org_id: int, tables: Sequence[WorkspaceTable]) -> list[Budget]:
    """The organization's and the versions' balances for the given DP tables."""
    out = []
    for t in tables:
        if t.privacy is None:
            continue
        spent = session.scalar(
            sa.select(_spending.c.epsilon_spent).where(
                _spending.c.buyer_org_id == org_id, _spending.c.dataset_id == t.dataset_id
            )
        )
        vspent = session.scalar(
            sa.select(_version_spending.c.epsilon_spent).where(
                _version_spending.c.version_id == t.version_id
            )
        )
        out.append(
            Budget(
                t.dataset_id,
                t.slug,
                t.version,
                t.privacy.epsilon_per_query,
                t.privacy.delta,
                t.privacy.epsilon_budget,
                _dec(spent),
                t.privacy.version_budget,
                _dec(vspent),
            )
        )
    return out


def organization_budget_remaining(session: Session, lic: License) -> Decimal | None:
    """A license's ``privacy_budget_remaining``: the smallest remaining epsilon of its buyer
    organization over the license's DP datasets (shared by all the organization's licenses);
    None if no licensed dataset is differentially private."""
    remaining: list[Decimal] = []
    for item in lic.items:
        privacy = effective_privacy(item.dataset)
        if privacy is None:
            continue
        spent = session.scalar(
            sa.select(_spending.c.epsilon_spent).where(
                _spending.c.buyer_org_id == lic.buyer_org_id,
                _spending.c.dataset_id == item.dataset_id,
            )
        )
        remaining.append(max(Decimal(0), privacy.epsilon_budget - _dec(spent)))
    return min(remaining).quantize(_EPS) if remaining else None


# ------------------------------------------------------------------------------- releases


def release_hash(checked: CheckedQuery, data_versions: str) -> str:
    """The identity of a release: the policy's release key (canonical question and privacy
    parameters) over these data versions."""
    key = checked.release_key
    text = f"sandbox.release:v1\n{data_versions}\n{key}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_releases = SandboxRelease.__table__
_FIND_RELEASE_ID = sa.select(_releases.c.id).where(
    _releases.c.release_hash == sa.bindparam("key")
)


def _find_release(session: Session, key: str) -> SandboxRelease | None:
    """The stored release ``key``, if any (its id by Core first: a new question, the usual
    case here, then costs no ORM load)."""
    found = session.execute(_FIND_RELEASE_ID, {"key": key}).scalar()
    return None if found is None else session.get(SandboxRelease, found)


def _store_release(
    session: Session, key: str, versions: str, answer: Answer, eps: Decimal, delta: Decimal,
    org_id: int, now: dt.datetime,
) -> tuple[int, dict[str, Any], bool]:
    """Store the release; if the same question was released meanwhile (a claim taken over
    from a holder that was still running), the earlier release stands and is returned (both
    callers see the same answer). Returns (release id, its payload as stored, whether it is
    this caller's)."""
    table = SandboxRelease.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT row.
    payload = answer.payload()
    mine = session.execute(
        insert(table)
        .values(
            release_hash=key, data_versions=versions[:1000], payload=payload,
            epsilon=eps, delta=delta, buyer_org_id=org_id, created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["release_hash"])
        .returning(table.c.id)
    ).first()
    if mine is not None:
        # What a reader of the row gets back: the JSON column's round trip, done here.
        return int(mine[0]), json.loads(json.dumps(payload)), True
    release = _find_release(session, key)
    assert release is not None
    return release.id, release.payload, False


def _refund_budget(
    session: Session, org_id: int, tables: Sequence[WorkspaceTable], cost: Decimal, delta: Decimal
) -> None:
    """Give back exactly what `_charge_budget` took, when the draw it paid for is discarded
    unseen (another request's release of the same question was stored first)."""
    for table in tables:
        ledgers = (
            (_spending, sa.and_(_spending.c.buyer_org_id == org_id,
                                _spending.c.dataset_id == table.dataset_id)),
            (_version_spending, _version_spending.c.version_id == table.version_id),
        )
        for t, where in ledgers:
            session.execute(
                sa.update(t)
                .where(where)
                .values(
                    epsilon_spent=sa.func.round(t.c.epsilon_spent - cost, 4),
                    delta_spent=t.c.delta_spent - delta,
                    releases=t.c.releases - 1,
                )
            )


def _answer(checked: CheckedQuery, result: SandboxResult, dp: bool) -> Answer:
    bounds = result.error_bounds or (None,) * len(result.columns)
    return Answer(
        list(result.columns),
        [o.kind for o in checked.outputs],
        json_rows(result.rows),
        [b.as_dict() if b is not None else None for b in bounds],
        bool(result.truncated),
        None if dp else result.suppressed_groups,
    )


class _Cached(Exception):
    """Raised from the pre-run hook to answer from a stored release (no engine run)."""

    def __init__(self, release: SandboxRelease) -> None:
        super().__init__("cached")
        self.release = release


class _InFlight(Exception):
    """Raised from the pre-run hook: another request holds the claim on this release."""

    def __init__(self, key: str, attempt: Attempt) -> None:
        super().__init__("in flight")
        self.key = key
        self.attempt = attempt


# ----------------------------------------------------------------- release claims (flights)
#
# A new DP question is released once however many requests ask it at the same moment. The
# first asker takes the claim row (primary key = release hash) in step (a), in the same
# transaction as its charge; everyone else finds the claim and, with nothing charged (their
# transaction is rolled back), waits for it to go: then the stored release answers them, free.
#
# Why no second release can slip through: the claim is inserted BEFORE the release is looked
# up, in the same transaction. SQLite serializes whole transactions (BEGIN IMMEDIATE). On
# PostgreSQL (READ COMMITTED) the INSERT … ON CONFLICT DO NOTHING waits for a concurrent
# uncommitted insert of the same key and then does nothing; if it succeeds, the holder before
# it has committed (release stored, claim deleted) before this INSERT ran, so the following
# SELECT, a new statement with a new snapshot, sees the release.

#: A claim outlives its holder's time limit by this much before it may be taken over (the
#: holder's process was killed between its charge and its answer).
CLAIM_GRACE_S = 60.0
#: A waiter gives up (409, ``release_in_flight``, nothing charged) this long after the engine's
#: own time limit (the holder still has to store its answer, on a machine that may be busy).
WAIT_MARGIN_S = 20.0
#: Polling starts at 20 ms and backs off to 0.5 s: fifty waiters must not starve the holder.
_POLL_FIRST_S, _POLL_MAX_S = 0.02, 0.5

_claims = SandboxReleaseClaim.__table__


def _claim(session: Session, key: str, timeout_s: float) -> bool:
    """Take the claim on release ``key``: True if this transaction now holds it (a new claim,
    or one whose holder is past its expiry); False if another request holds it."""
    now = utcnow()
    expires = now + dt.timedelta(seconds=timeout_s + CLAIM_GRACE_S)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports -1 for a skipped ON CONFLICT row here.
    inserted = session.execute(
        insert(_claims)
        .values(release_hash=key, claimed_at=now, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["release_hash"])
        .returning(_claims.c.release_hash)
    ).first()
    if inserted is not None:
        return True
    taken = session.execute(
        sa.update(_claims)
        .where(_claims.c.release_hash == key, _claims.c.expires_at < now)
        .values(claimed_at=now, expires_at=expires, query_id=None)
        .returning(_claims.c.release_hash)
    ).first()
    return taken is not None


def _drop_claim(session: Session, key: str) -> None:
    session.execute(sa.delete(_claims).where(_claims.c.release_hash == key))


def _await_claim(session: Session, key: str, deadline: float) -> bool:
    """Poll (short read transactions, no write lock) until the claim on ``key`` is gone or
    expired: True; or until ``deadline`` (``time.monotonic``): False."""
    pause = _POLL_FIRST_S
    while True:
        session.connection(execution_options={"market_read_only": True})
        expires = session.scalar(
            sa.select(_claims.c.expires_at).where(_claims.c.release_hash == key)
        )
        session.rollback()
        if expires is None or expires < utcnow():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, _POLL_MAX_S)


# ---------------------------------------------------------------------------- public API


def _workspace(session: Session, lic: License, settings: SandboxSettings) -> Workspace:
    """``build_workspace`` with its rows loaded in two queries (the items with their datasets
    and current versions; the versions' columns) instead of a lazy load per attribute and
    item, and without the large fields it does not read (reports, quality, profiles,
    descriptions): this runs on every query."""
    items = session.scalars(
        sa.select(LicenseItem)
        .where(LicenseItem.license_id == lic.id)
        .order_by(LicenseItem.id)
        .options(
            joinedload(LicenseItem.dataset).options(
                defer(Dataset.description),
                lazyload(Dataset.department),
                joinedload(Dataset.current_version).options(
                    defer(DatasetVersion.report),
                    defer(DatasetVersion.quality),
                    defer(DatasetVersion.refusal_reasons),
                    selectinload(DatasetVersion.columns).defer(DatasetColumn.profile),
                ),
            )
        )
    ).unique().all()
    set_committed_value(lic, "items", list(items))
    return build_workspace(lic, settings)


def workspace_of(
    session: Session, actor: Actor, license_id: int, settings: SandboxSettings
) -> tuple[License, Workspace]:
    """The license (its buyer, the operator or the regulator) and the tables it grants,
    whatever its status. Raises NotFound for anyone else."""
    lic = licenses.get_license(session, actor, license_id)
    return lic, _workspace(session, lic, settings)


_queries = SandboxQuery.__table__
_LOG_FIELDS = (
    "license_id", "buyer_org_id", "user_id", "sql_text", "sql_hash", "canonical_hash", "status",
    "quota_charged", "created_at", "epsilon_spent",
)
#: Built once (SQLAlchemy memoizes their cache keys): a new question's ``running`` log row
#: and its outcome.
_INSERT_RUNNING = sa.insert(_queries).values(
    {name: sa.bindparam(name, type_=_queries.c[name].type) for name in _LOG_FIELDS}
).returning(_queries.c.id)
_OUTCOME_FIELDS = (
    "status", "rows_returned", "suppressed_groups", "truncated", "elapsed_ms", "release_id",
    "epsilon_spent",
)
_UPDATE_OUTCOME = (
    sa.update(_queries)
    .where(_queries.c.id == sa.bindparam("log_id"))
    .values({name: sa.bindparam("o_" + name, type_=_queries.c[name].type)
             for name in _OUTCOME_FIELDS})
)


def _log_entry(
    attempt: Attempt, lic_id: int, org_id: int, actor: Actor, status: str, now: dt.datetime,
    **kw: Any,
) -> SandboxQuery:
    return SandboxQuery(
        license_id=lic_id,
        buyer_org_id=org_id,
        user_id=actor.user_id,
        sql_text=attempt.logged_sql,
        sql_hash=attempt.sql_hash,
        canonical_hash=attempt.canonical_hash,
        status=status,
        quota_charged=True,
        created_at=now,
        **kw,
    )


def run_query(
    session: Session,
    actor: Actor,
    license_id: int,
    sql: str,
    *,
    engine: Engine,
    local_path: Callable[[str], Any],
    settings: SandboxSettings,
    end_transaction: Callable[[], None],
    noise: Any = None,
    now: dt.datetime | None = None,
    known: Any = None,
) -> QueryRun:
    """Run ``sql`` in the workspace of license ``license_id`` for its buyer (steps above).

    ``known``: what ``sandbox.fastpath.answer_cached`` established about this very request
    (a ``fastpath.Known``: the license usable by the caller, its workspace, the accepted
    check, no release a moment ago); the first pass then starts from it instead of loading
    the license and the workspace again. A pass after waiting for another request's release
    checks everything again.

    When another request is releasing the same new question right now, this one rolls its
    step (a) back (nothing charged), waits for that release and answers it from the cache;
    if the other request does not finish within the engine's time limit plus a margin, it
    raises QueryRefused (409, ``release_in_flight``), still with nothing charged.

    ``local_path`` maps a storage key to a local Parquet file (``storage().local_path``);
    ``end_transaction`` commits step (a) and leaves no transaction open (the caller owns the
    transaction boundary); ``noise`` is the core's noise seam (tests only; None: OpenDP).
    Flushes step (c); never commits it.

    Raises QueryRefused (404, 403, 422, 429 or 503, with its rule) for every query it does
    not answer; call :func:`record_refusal` after rolling back. When the refusal comes after
    step (a) committed, ``refusal.attempt.log_id`` names the ``running`` log row.
    """
    deadline = time.monotonic() + settings.timeout_s + WAIT_MARGIN_S
    while True:
        try:
            return _run_once(
                session, actor, license_id, sql, engine=engine, local_path=local_path,
                settings=settings, end_transaction=end_transaction, noise=noise, now=now,
                known=known,
            )
        except _InFlight as busy:
            known = None
            session.rollback()
            if not _await_claim(session, busy.key, deadline):
                raise QueryRefused(
                    409,
                    RELEASE_IN_FLIGHT,
                    _(
                        "The same question is being answered for another request right now. "
                        "Ask again in a few seconds: you will get that answer, free."
                    ),
                    attempt=busy.attempt,
                ) from None


def _run_once(
    session: Session,
    actor: Actor,
    license_id: int,
    sql: str,
    *,
    engine: Engine,
    local_path: Callable[[str], Any],
    settings: SandboxSettings,
    end_transaction: Callable[[], None],
    noise: Any,
    now: dt.datetime | None,
    known: Any = None,
) -> QueryRun:
    """One pass of :func:`run_query`; raises _InFlight when another request holds the claim."""
    now = now or utcnow()
    attempt = Attempt(license_id)
    checked: CheckedQuery | None = None
    if (
        known is not None
        and known.license_id == license_id
        and known.org_id == actor.org_id
        and known.sql == sql
    ):
        # The fast path checked this request's license, caller and SQL just now, in this
        # transaction (see fastpath.Known).
        attempt.buyer_org_id = known.org_id
        attempt.sql = known.sql
        workspace = known.workspace
        checked = known.checked
        lic_id, org_id = license_id, known.org_id
    else:
        known = None
        lic = _usable_license(session, actor, attempt, now, sql)
        workspace = _workspace(session, lic, settings)
        lic_id, org_id = lic.id, lic.buyer_org_id
    sql = attempt.sql
    attempt.data_versions = workspace.data_versions
    _require_tables(workspace, attempt)
    state: dict[str, Any] = {}

    def before_run(checked: CheckedQuery) -> None:
        attempt.checked = checked
        dp_tables = _dp_tables(workspace, checked)
        key = release_hash(checked, workspace.data_versions)
        # Reads before the first lock: the quota UPDATE locks the license row and the audit
        # append the chain's head until COMMIT, so whatever runs between them and the commit
        # is serial for every query of the license (the chain: of the platform). With
        # ``known`` the fast path looked the release up a moment ago (not found).
        release = _find_release(session, key) if dp_tables and known is None else None
        if release is not None:
            state["budgets"] = budgets_of(session, org_id, dp_tables)
        state.update(dp_tables=dp_tables, key=key, quota=_take_quota(session, lic_id, now))
        if state["quota"] is None:
            raise _why_no_quota(session, lic_id, now, attempt)
        attempt.quota_charged = True
        if dp_tables:
            if release is not None:  # found before the locks: no claim needed
                raise _Cached(release)
            claimed = _claim(session, key, settings.timeout_s)  # first: see _claim's note
            release = _find_release(session, key)
            if release is not None:
                if claimed:
                    _drop_claim(session, key)
                state["budgets"] = budgets_of(session, org_id, dp_tables)
                raise _Cached(release)
            if not claimed:
                raise _InFlight(key, attempt)
            attempt.claim_key = key
            attempt.epsilon_spent, state["charged"] = _charge_budget(
                session, org_id, dp_tables, checked, attempt
            )
        attempt.log_id = session.execute(
            _INSERT_RUNNING,
            {
                "license_id": lic_id,
                "buyer_org_id": org_id,
                "user_id": actor.user_id,
                "sql_text": attempt.logged_sql,
                "sql_hash": attempt.sql_hash,
                "canonical_hash": attempt.canonical_hash,
                "status": QueryStatus.running.value,
                "quota_charged": True,
                "created_at": now,
                "epsilon_spent": attempt.epsilon_spent,
            },
        ).scalar_one()
        if attempt.claim_key is not None:
            session.execute(
                sa.update(_claims)
                .where(_claims.c.release_hash == attempt.claim_key)
                .values(query_id=attempt.log_id)
            )
        audit.append(
            session,
            STARTED_AUDIT_TYPE,
            actor,
            ("license", lic_id),
            {
                "query_id": attempt.log_id,
                "sql_hash": attempt.sql_hash,
                "epsilon": _eps(attempt.epsilon_spent),
                "datasets": [t.dataset_id for t in dp_tables],
            },
        )
        end_transaction()  # (a) ends: the engine runs with no transaction open

    if checked is None:
        checked = _check(workspace, sql, attempt)
    try:
        outcome = run_checked(
            sql,
            None,
            # A queue engine's host fetches the files itself, by key and digest.
            workspace.stored() if getattr(engine, "reads_storage_keys", False)
            else workspace.files(local_path),
            engine,
            timeout_s=settings.timeout_s,
            before_run=before_run,
            noise=noise,
            checked=checked,
        )
    except _Cached as hit:
        return _answer_cached(session, actor, attempt, lic_id, org_id, hit.release, state, now)
    except PolicyViolation as exc:
        raise QueryRefused(422, exc.rule, _policy_message(exc), attempt=attempt) from None
    except EngineError as exc:
        raise engine_refusal(exc, attempt) from None
    except Exception as exc:
        if attempt.log_id is None:
            raise
        # After the charge, any failure (in the engine or in the noise step) is charged and
        # answers the generic message: its cause could depend on the data.
        log.exception("sandbox query %s failed after its charge", attempt.log_id)
        raise engine_refusal(EngineError(kind="engine", detail=type(exc).__name__), attempt) from None
    # (c) the outcome, in a new short transaction
    dp_tables = state["dp_tables"]
    answer = _answer(outcome.checked, outcome.result, bool(dp_tables))
    release_id = None
    lost = False
    budgets: list[Budget] | None = state.get("charged")
    if dp_tables:
        delta_cost = Decimal(outcome.checked.delta_cost)
        release_id, payload, mine = _store_release(
            session, state["key"], workspace.data_versions, answer, attempt.epsilon_spent,
            delta_cost, org_id, now,
        )
        answer = Answer.from_payload(payload)
        lost = not mine
        if lost and attempt.epsilon_spent > 0:
            # This request took over an expired claim while its holder was still running, and
            # the holder's release landed first: our draw is discarded unseen, and so is its
            # charge (one release, one charge). The answer is the stored one, as for a repeat.
            _refund_budget(session, org_id, dp_tables, attempt.epsilon_spent, delta_cost)
            attempt.epsilon_spent = Decimal(0)
            budgets = None
        _drop_claim(session, state["key"])  # the release answers the waiters from now on
    elapsed = attempt.elapsed_ms()
    session.execute(
        _UPDATE_OUTCOME,
        {
            "log_id": attempt.log_id,
            "o_status": QueryStatus.ok.value,
            "o_rows_returned": len(answer.rows),
            "o_suppressed_groups": answer.suppressed_groups,
            "o_truncated": answer.truncated,
            "o_elapsed_ms": elapsed,
            "o_release_id": release_id,
            "o_epsilon_spent": attempt.epsilon_spent,
        },
    )
    # The quota left and the balances right after this query's own charges (step (a)); read
    # again only when no charge returned them.
    quota = int(state["quota"])
    if budgets is None:
        budgets = budgets_of(session, org_id, _dp_or_all(workspace, dp_tables))
    data = audit_data(
        attempt, QueryStatus.ok, None, len(answer.rows), answer.suppressed_groups, elapsed,
        attempt.epsilon_spent,
    )
    # Last: the chain's lock is held from here to the commit.
    audit.append(
        session, AUDIT_TYPE, actor, ("license", lic_id),
        {**data, "query_id": attempt.log_id, "release_id": release_id, "cached": False},
    )
    return QueryRun(
        LoggedQuery(attempt.log_id, elapsed), answer, quota,
        bool(dp_tables) or workspace.uses_dp, lost, attempt.epsilon_spent, budgets,
    )


def _dp_or_all(workspace: Workspace, dp_tables: list[WorkspaceTable]) -> list[WorkspaceTable]:
    return dp_tables or [t for t in workspace.tables if t.privacy is not None]


def _answer_cached(
    session: Session, actor: Actor, attempt: Attempt, lic_id: int, org_id: int,
    release: SandboxRelease, state: Mapping[str, Any], now: dt.datetime,
) -> QueryRun:
    """A question already released over the same data: the stored answer, one unit of quota,
    no budget (all in step (a)'s transaction; the request boundary commits)."""
    answer = Answer.from_payload(release.payload)
    elapsed = attempt.elapsed_ms()
    entry = _log_entry(
        attempt, lic_id, org_id, actor, QueryStatus.ok.value, now,
        epsilon_spent=Decimal(0), rows_returned=len(answer.rows), suppressed_groups=None,
        truncated=answer.truncated, elapsed_ms=elapsed, release_id=release.id,
    )
    session.add(entry)
    session.flush()
    data = audit_data(attempt, QueryStatus.ok, None, len(answer.rows), None, elapsed, Decimal(0))
    # Last (the budgets were read before the quota was taken): the chain's lock is held from
    # here to the commit.
    audit.record(
        session, AUDIT_TYPE, actor, ("license", lic_id),
        {**data, "query_id": entry.id, "release_id": release.id, "cached": True},
    )
    return QueryRun(
        entry, answer, int(state["quota"]), True, True, Decimal(0), state["budgets"],
    )


def record_refusal(session: Session, actor: Actor, refusal: QueryRefused) -> SandboxQuery | None:
    """Write a refused query's log row and audit event; call it after the rollback, then commit.

    The log row is written only when the caller is the license's buyer (another buyer's probe
    of a license id is audited, but kept out of that license's history). A refusal after step
    (a) committed (timeout, engine error) completes the ``running`` row instead: its quota and
    budget stay spent. A license found past its term is expired here too (the rolled-back
    request could not keep that change).
    """
    attempt = refusal.attempt
    now = utcnow()
    entry = None
    if attempt.log_id is not None:
        entry = session.get(SandboxQuery, attempt.log_id)
    if entry is not None:
        entry.status = str(refusal.query_status)
        entry.rule = refusal.rule
        entry.elapsed_ms = refusal.elapsed_ms
        session.flush()
        if attempt.claim_key is not None:
            # No release was made: the next asker of this question may make it (and pays).
            _drop_claim(session, attempt.claim_key)
    else:
        lic = session.get(License, attempt.license_id)
        if lic is not None and refusal.rule == LICENSE_NOT_ACTIVE:
            licenses.expire_if_due(session, lic, now)
        if (
            lic is not None
            and attempt.buyer_org_id == lic.buyer_org_id
            and attempt.sql is not None
        ):
            entry = SandboxQuery(
                license_id=lic.id,
                buyer_org_id=lic.buyer_org_id,
                user_id=actor.user_id,
                sql_text=attempt.logged_sql,
                sql_hash=attempt.sql_hash,
                canonical_hash=attempt.canonical_hash,
                status=str(refusal.query_status),
                rule=refusal.rule,
                elapsed_ms=refusal.elapsed_ms,
                quota_charged=False,
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
    """What ``sql`` would cost, by the policy and the ledgers alone: nothing is run, charged
    or logged. Tells whether the question is already released (free), and the organization's
    and the versions' balances. Raises QueryRefused (404, 403, 422) like :func:`run_query`."""
    attempt = Attempt(license_id)
    lic = _usable_license(session, actor, attempt, now or utcnow(), sql)
    sql = attempt.sql
    workspace = _workspace(session, lic, settings)
    attempt.data_versions = workspace.data_versions
    checked = _check(workspace, sql, attempt)
    dp_tables = _dp_tables(workspace, checked)
    cost = Decimal(checked.epsilon_cost) if dp_tables else Decimal(0)
    delta = Decimal(checked.delta_cost) if dp_tables else Decimal(0)
    cached = bool(dp_tables) and (
        _find_release(session, release_hash(checked, workspace.data_versions)) is not None
    )
    budgets = budgets_of(session, lic.buyer_org_id, dp_tables)
    affordable = cached or all(
        b.epsilon_spent + cost <= b.epsilon_budget and b.version_spent + cost <= b.version_budget
        for b in budgets
    )
    return CostEstimate(
        Decimal(0) if cached else cost, cost, delta, cached, bool(dp_tables), budgets, affordable
    )


def privacy_spending(session: Session, actor: Actor, dataset_id: int | None) -> list[dict[str, Any]]:
    """Privacy spending per buyer organization and dataset, with each version's total: the
    regulator and the operator see all, a department its own datasets. Raises Forbidden for
    anyone else, NotFound for a dataset the caller may not see."""
    from market.accounts.models import Organization

    if actor.role not in ("regulator", "operator", "department"):
        raise Forbidden(_("Only the regulator, the operator and departments can see privacy "
                          "spending."))
    datasets = sa.select(Dataset).where(Dataset.open_grade == "conditional")
    if actor.role == "department":
        datasets = datasets.where(Dataset.department_id == actor.org_id)
    if dataset_id is not None:
        datasets = datasets.where(Dataset.id == dataset_id)
    rows = list(session.scalars(datasets.order_by(Dataset.id)))
    if dataset_id is not None and not rows:
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    out = []
    for ds in rows:
        privacy = effective_privacy(ds)
        assert privacy is not None
        buyers = session.execute(
            sa.select(PrivacySpending, Organization.name)
            .join(Organization, Organization.id == PrivacySpending.buyer_org_id)
            .where(PrivacySpending.dataset_id == ds.id)
            .order_by(PrivacySpending.epsilon_spent.desc(), PrivacySpending.buyer_org_id)
        ).all()
        versions = session.execute(
            sa.select(VersionSpending, DatasetVersion.version)
            .join(DatasetVersion, DatasetVersion.id == VersionSpending.version_id)
            .where(VersionSpending.dataset_id == ds.id)
            .order_by(DatasetVersion.version)
        ).all()
        out.append(
            {
                "dataset_id": ds.id,
                "slug": ds.slug,
                "title": ds.title,
                "settings": privacy.as_json(),
                "buyers": [
                    {
                        "buyer_org_id": sp.buyer_org_id,
                        "buyer": name,
                        "epsilon_spent": _eps(_dec(sp.epsilon_spent)),
                        "delta_spent": format(_dec(sp.delta_spent).normalize(), "f"),
                        "releases": sp.releases,
                        "budget_remaining": _eps(
                            max(Decimal(0), privacy.epsilon_budget - _dec(sp.epsilon_spent))
                        ),
                    }
                    for sp, name in buyers
                ],
                "versions": [
                    {
                        "version": number,
                        "epsilon_spent": _eps(_dec(vs.epsilon_spent)),
                        "releases": vs.releases,
                        "version_remaining": _eps(
                            max(Decimal(0), privacy.version_budget - _dec(vs.epsilon_spent))
                        ),
                    }
                    for vs, number in versions
                ],
            }
        )
    return out


def query_history(session: Session, actor: Actor, license_id: int) -> sa.Select:
    """The license's query log, newest first: for its buyer, the operator and the regulator.

    Raises NotFound for anyone else.
    """
    lic = session.get(License, license_id)
    if lic is None or not perm.can_read_history(actor, lic.buyer_org_id):
        raise NotFound(_("No such license."))
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
    "Answer",
    "Budget",
    "CostEstimate",
    "QueryRefused",
    "QueryRun",
    "SandboxSettings",
    "budgets_of",
    "estimate_cost",
    "organization_budget_remaining",
    "privacy_spending",
    "json_rows",
    "json_value",
    "query_history",
    "record_refusal",
    "run_query",
    "usable_licenses",
    "workspace_of",
]
