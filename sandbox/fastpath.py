"""The hot path of a question already released: the caller's license, its workspace, the
cached policy check, the stored release, one unit of quota, the log row and the audit event,
in a handful of SQL statements and without loading ORM objects (issue 14: throughput).

It only ever *accepts*: every condition of :func:`sandbox.services.run_query` is checked
(the caller is a buyer's user and the license is its organization's, the license is active
and within its term, the organization is not blacklisted, a data product grants sandbox
access, the workspace has tables, the policy accepts the SQL on exactly this workspace, the
question was released over these data versions, a unit of quota is taken atomically). When
any of them does not hold, or the question is new, :func:`answer_cached` returns None before
it wrote anything, and the caller runs the full path, which refuses, expires, charges or runs
as before (and logs and audits that). What it writes is what the full path writes for a
cached answer: the same log row, the same ``sandbox.query`` event in the hash chain, in the
caller's transaction.

The workspace is rebuilt from the rows read on every request (two Core statements, the first
of which also reads the license and its buyer's standing); only the building itself is memoized, keyed by those exact rows and the settings, so any change to
what the license grants (items, columns, versions, privacy settings, grade) is a new key.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from licenses.models import License, LicenseItem
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.audit import services as audit
from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
from market.db import utcnow

from . import services
from .errors import PolicyViolation
from .models import QueryStatus, SandboxQuery, SandboxRelease
from .refusals import AUDIT_TYPE, Attempt, audit_data
from .workspace import SandboxSettings, Workspace, build_workspace

_lic = License.__table__
_items = LicenseItem.__table__
_datasets = Dataset.__table__
_versions = DatasetVersion.__table__
_columns = DatasetColumn.__table__
_releases = SandboxRelease.__table__
_queries = SandboxQuery.__table__


class _Statements:
    """Built once per process and reused: SQLAlchemy then memoizes each one's cache key, and
    building and hashing expressions was a large share of a cached query's CPU."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str, build) -> Any:
        stmt = self._built.get(name)
        if stmt is None:
            with self._lock:
                # Another thread may have built it meanwhile. Never `get(name) or build()`: a
                # SQLAlchemy statement has no truth value (TypeError), which made the first
                # concurrent requests of a fresh process fail with a 500.
                stmt = self._built.get(name)
                if stmt is None:
                    stmt = self._built[name] = build()
        return stmt


_stmts = _Statements()


def _usable(actor: Actor, row: Any, now: dt.datetime) -> bool:
    """Whether the full path's license checks would all pass (``_usable_license``), from the
    license's row (:func:`_license_rows`; None: no such license)."""
    from market.scenarios.models import ProductAccess

    if row is None or row.buyer_org_id != actor.org_id or row.blacklisted:
        return False
    if row.status != LicenseStatus.ACTIVE.value:
        return False
    if row.ends_at is not None and row.ends_at <= now:
        return False  # due to expire: the full path expires it, audited
    if row.product_id is not None and row.access is not None:
        if not ProductAccess(row.access).allows("sandbox"):
            return False
    return True


# ------------------------------------------------------------------------------ workspace

#: Every column the full path loads (``services._workspace`` defers the same large ones), so
#: that ``build_workspace`` reads here whatever it reads there, whatever it comes to read.
_DATASET_SKIP = {"description"}
_VERSION_SKIP = {"report", "quality", "refusal_reasons"}
_COLUMN_SKIP = {"profile"}
_WS_ITEMS = (
    _items.c.id.label("i_id"),
    _items.c.columns.label("i_columns"),
    *(c.label("d_" + c.name) for c in _datasets.c if c.name not in _DATASET_SKIP),
    *(c.label("v_" + c.name) for c in _versions.c if c.name not in _VERSION_SKIP),
)
_WS_COLUMNS = tuple(c for c in _columns.c if c.name not in _COLUMN_SKIP)


_LICENSE_FIELDS = 6  # the license's own columns, before the item's (_WS_ITEMS)


def _build_license_stmt() -> sa.Select:
    """The license (with its product's access and whether its buyer is blacklisted) and its
    items with their datasets and current versions, in one statement: one row per item, or
    one row with empty item fields if it has none."""
    from licenses.blacklist import BlacklistEntry
    from market.scenarios.models import DataProduct

    products = DataProduct.__table__
    bl = BlacklistEntry.__table__
    now = sa.bindparam("now", type_=_lic.c.ends_at.type)
    blacklisted = (
        sa.select(bl.c.id)
        .where(bl.c.organization_id == _lic.c.buyer_org_id,
               sa.or_(bl.c.until.is_(None), bl.c.until > now))
        .exists()
    )
    items = _items.join(_datasets, _datasets.c.id == _items.c.dataset_id).outerjoin(
        _versions, _versions.c.id == _datasets.c.current_version_id
    )
    return (
        sa.select(
            _lic.c.buyer_org_id, _lic.c.status, _lic.c.ends_at, _lic.c.product_id,
            products.c.access, blacklisted.label("blacklisted"), *_WS_ITEMS,
        )
        .select_from(
            _lic.outerjoin(products, products.c.id == _lic.c.product_id)
            .outerjoin(items, _items.c.license_id == _lic.c.id)
        )
        .where(_lic.c.id == sa.bindparam("license_id"))
        .order_by(_items.c.id)
    )


def _license_rows(
    session: Session, license_id: int, now: dt.datetime
) -> tuple[Any, list[Any]]:
    """The license's row (None: no such license) and its items' rows (see above)."""
    rows = session.connection().execute(
        _stmts.get("license", _build_license_stmt), {"license_id": license_id, "now": now}
    ).all()
    if not rows:
        return None, []
    return rows[0], [r for r in rows if r.i_id is not None]


class _WorkspaceMemo:
    """Built workspaces by the exact rows they were built from (bounded, per process)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[Workspace, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[Workspace, str] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, entry: tuple[Workspace, str]) -> None:
        with self._lock:
            self._items[key] = entry
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


workspaces = _WorkspaceMemo()


def _build_columns_stmt() -> sa.Select:
    return (
        sa.select(*_WS_COLUMNS)
        .where(_columns.c.version_id.in_(sa.bindparam("version_ids", expanding=True)))
        .order_by(_columns.c.version_id, _columns.c.position, _columns.c.id)
    )


def load_workspace(session: Session, license_id: int, settings: SandboxSettings) -> Workspace:
    """The license's workspace, equal to ``build_workspace`` over its ORM rows, from two Core
    statements (the license with its items, their datasets and current versions; those
    versions' columns)."""
    _, items = _license_rows(session, license_id, utcnow())
    return _load_workspace(session, license_id, items, settings)[0]


def _load_workspace(
    session: Session, license_id: int, items: list[Any], settings: SandboxSettings
) -> tuple[Workspace, str]:
    """The workspace of the license's ``items`` rows (:func:`_license_rows`) and
    ``repr(workspace.tables)`` (the policy-check cache's key part)."""
    conn = session.connection()
    version_ids = sorted({r.v_id for r in items if r.v_id is not None})
    columns = (
        conn.execute(_stmts.get("ws_columns", _build_columns_stmt), {"version_ids": version_ids})
        .all()
        if version_ids
        else []
    )
    key = repr((
        license_id, settings, [tuple(r)[_LICENSE_FIELDS:] for r in items],
        [tuple(r) for r in columns],
    ))
    hit = workspaces.get(key)
    if hit is not None:
        return hit
    workspace = build_workspace(_namespace(license_id, items, columns), settings)
    entry = (workspace, repr(workspace.tables))
    workspaces.put(key, entry)
    return entry


def _namespace(license_id: int, items: list[Any], columns: list[Any]) -> SimpleNamespace:
    """The rows in the shape ``build_workspace`` reads (the ORM objects' attribute names)."""
    by_version: dict[int, list[SimpleNamespace]] = {}
    for col in columns:
        by_version.setdefault(col.version_id, []).append(SimpleNamespace(**col._mapping))
    out = []
    for row in items:
        fields = row._mapping
        version = None
        if row.v_id is not None:
            version = SimpleNamespace(
                **{k[2:]: v for k, v in fields.items() if k.startswith("v_")},
                columns=by_version.get(row.v_id, []),
            )
        dataset = SimpleNamespace(
            **{k[2:]: v for k, v in fields.items() if k.startswith("d_")},
            current_version=version,
        )
        out.append(SimpleNamespace(dataset=dataset, columns=row.i_columns))
    return SimpleNamespace(id=license_id, items=out)


# ------------------------------------------------------------------------------ the answer


@dataclass(frozen=True)
class Known:
    """A new question that passed every check the fast path makes (the caller is the buyer of
    a license it may use now, the workspace has tables, the policy accepted the SQL on exactly
    this workspace), whose release was not found a moment ago. The full path of a new question
    starts from it instead of loading the license and the workspace a second time
    (``services.run_query``'s ``known``); it still takes the quota, the claim and the budget,
    and looks the release up again after the claim."""

    license_id: int
    org_id: int
    sql: str
    workspace: Workspace
    checked: Any  # sandbox.query.CheckedQuery


LoggedQuery = services.LoggedQuery  # the API reads it of the log row written by Core


def _build_release_stmt(tables: int) -> sa.Select:
    """The stored release by its hash, with the spending of each of ``tables`` tables (the
    buyer's on the dataset, everyone's on the version; ``services.budgets_of``'s two reads per
    table) in the same statement."""
    spending = services._spending
    versions = services._version_spending
    spent = []
    for n in range(tables):
        spent.append(
            sa.select(spending.c.epsilon_spent)
            .where(spending.c.buyer_org_id == sa.bindparam("org_id"),
                   spending.c.dataset_id == sa.bindparam(f"dataset_id_{n}"))
            .scalar_subquery()
        )
        spent.append(
            sa.select(versions.c.epsilon_spent)
            .where(versions.c.version_id == sa.bindparam(f"version_id_{n}"))
            .scalar_subquery()
        )
    return sa.select(_releases.c.id, _releases.c.payload, *spent).where(
        _releases.c.release_hash == sa.bindparam("key")
    )


def _release_and_budgets(
    conn: sa.Connection, key: str, org_id: int, tables: list[Any]
) -> tuple[Any, list[services.Budget]]:
    """The release stored under ``key`` (None: none) and ``services.budgets_of`` for
    ``tables``, in one statement."""
    params: dict[str, Any] = {"key": key, "org_id": org_id}
    for n, t in enumerate(tables):
        params[f"dataset_id_{n}"] = t.dataset_id
        params[f"version_id_{n}"] = t.version_id
    stmt = _stmts.get(f"release_{len(tables)}", lambda: _build_release_stmt(len(tables)))
    release = conn.execute(stmt, params).first()
    if release is None:
        return None, []
    out = []
    for n, t in enumerate(tables):
        spent, vspent = release[2 + 2 * n], release[3 + 2 * n]
        p = t.privacy
        out.append(
            services.Budget(
                t.dataset_id, t.slug, t.version, p.epsilon_per_query, p.delta, p.epsilon_budget,
                services._dec(spent), p.version_budget, services._dec(vspent),
            )
        )
    return release, out


def _build_quota_stmt(dialect_name: str) -> sa.Update:
    """``services._take_quota``'s atomic UPDATE, built once; where one is needed, it also
    takes the audit chain's lock once it holds the license's row (the order of the full path:
    the quota row, then the chain), instead of a statement of its own."""
    now = sa.bindparam("now", type_=_lic.c.ends_at.type)
    lock = audit.head_lock_column(dialect_name)
    return (
        sa.update(_lic)
        .where(
            _lic.c.id == sa.bindparam("license_id"),
            _lic.c.quota_remaining > 0,
            _lic.c.status == LicenseStatus.ACTIVE.value,
            sa.or_(_lic.c.ends_at.is_(None), _lic.c.ends_at > now),
        )
        .values(quota_remaining=_lic.c.quota_remaining - 1)
        .returning(_lic.c.quota_remaining, *([lock] if lock is not None else []))
    )


_LOG_FIELDS = (
    "license_id", "buyer_org_id", "user_id", "sql_text", "sql_hash", "canonical_hash", "status",
    "quota_charged", "created_at", "epsilon_spent", "rows_returned", "suppressed_groups",
    "truncated", "elapsed_ms", "release_id",
)


def _build_log_stmt(dialect_name: str) -> sa.Insert:
    """The log row's INSERT; where the quota's UPDATE took the chain's lock (a statement
    before this one, so this one reads the head as of after the lock), it also reads the
    chain's head for the event appended right after it."""
    head = audit.head_columns() if audit.head_lock_column(dialect_name) is not None else ()
    return (
        sa.insert(_queries)
        .values({name: sa.bindparam(name, type_=_queries.c[name].type) for name in _LOG_FIELDS})
        .returning(_queries.c.id, *head)
    )


def answer_cached(
    session: Session,
    actor: Actor,
    license_id: int,
    sql: Any,
    *,
    settings: SandboxSettings,
    now: dt.datetime | None = None,
    new: list[Known] | None = None,
) -> services.QueryRun | None:
    """The stored answer to ``sql`` if every check passes and it was released over the
    license's current data (one unit of quota taken, log row and audit event written, in the
    caller's transaction, not committed); None, with nothing written, in every other case.

    ``new``: when every check passed but the question was not released yet (a new DP
    question), a :class:`Known` is appended to it for the full path."""
    if type(sql) is not str:  # an invalid body's stand-in: the full path answers its 422
        return None
    now = now or utcnow()
    attempt = Attempt(license_id)
    if not (actor.is_user and actor.role == "buyer"):
        return None
    license_row, items = _license_rows(session, license_id, now)
    if not _usable(actor, license_row, now):
        return None
    workspace, tables_key = _load_workspace(session, license_id, items, settings)
    if not workspace.tables:
        return None
    try:
        checked = services.checks.check(sql, workspace, tables_key)
    except PolicyViolation:
        return None  # refused: the full path checks again, logs and audits the refusal
    dp_tables = services._dp_tables(workspace, checked)
    if not dp_tables:
        return None  # only differentially private answers are stored releases
    key = services.release_hash(checked, workspace.data_versions)
    conn = session.connection()
    # Reads before the first lock (the quota row, then the chain's head, until COMMIT).
    release, budgets = _release_and_budgets(conn, key, actor.org_id, dp_tables)
    if release is None:
        if new is not None:
            new.append(Known(license_id, actor.org_id, sql, workspace, checked))
        return None
    dialect = conn.dialect.name
    # From here the chain's lock is held (PostgreSQL) until the commit: after the quota row's.
    quota = conn.execute(
        _stmts.get("quota_" + dialect, lambda: _build_quota_stmt(dialect)),
        {"license_id": license_id, "now": now},
    ).scalar()
    if quota is None:
        return None  # nothing was written: the full path says why (403 or 429), logged
    attempt.sql = sql
    attempt.buyer_org_id = actor.org_id
    attempt.checked = checked
    attempt.data_versions = workspace.data_versions
    attempt.quota_charged = True
    answer = services.Answer.from_payload(release.payload)
    elapsed = attempt.elapsed_ms()
    logged = conn.execute(
        _stmts.get("log_" + dialect, lambda: _build_log_stmt(dialect)),
        {
            "license_id": license_id,
            "buyer_org_id": actor.org_id,
            "user_id": actor.user_id,
            "sql_text": attempt.logged_sql,
            "sql_hash": attempt.sql_hash,
            "canonical_hash": attempt.canonical_hash,
            "status": QueryStatus.ok.value,
            "quota_charged": True,
            "created_at": now,
            "epsilon_spent": Decimal(0),
            "rows_returned": len(answer.rows),
            "suppressed_groups": None,
            "truncated": answer.truncated,
            "elapsed_ms": elapsed,
            "release_id": release.id,
        },
    ).first()
    query_id = logged[0]
    data = audit_data(attempt, QueryStatus.ok, None, len(answer.rows), None, elapsed, Decimal(0))
    audit.append(
        session, AUDIT_TYPE, actor, ("license", license_id),
        {**data, "query_id": query_id, "release_id": release.id, "cached": True},
        # Locked by the quota's UPDATE, the head read by the log's INSERT (PostgreSQL); on
        # SQLite the transaction began with BEGIN IMMEDIATE and append reads the head itself.
        head_locked=True, head=tuple(logged[1:]) if len(logged) > 1 else None,
    )
    return services.QueryRun(
        LoggedQuery(query_id, elapsed),
        answer, int(quota), True, True, Decimal(0), budgets,
    )
