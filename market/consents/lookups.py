"""Consented lookups and the enterprise's access log.

A lookup needs the caller's active license and a granted, unexpired, unrevoked consent for
(license, enterprise); it takes one unit of the license's quota atomically, reads the
enterprise's rows from every licensed table (only licensed columns; the Parquet is already
desensitized) and is logged and audited. An enterprise the platform knows nothing about is
refused with the same message as one that did not consent, so a bank cannot probe which
enterprises exist.

Where the enterprise's rows are: the pipeline stored the keyed pseudonym of each credit code
(``market.pipeline.pseudonym(key, "credit_code", code)``); the lookup computes it from the
code at lookup time and never stores it (nor any pseudonym → code mapping).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from licenses import blacklist
from licenses import services as licenses
from licenses.models import License
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.audit.models import AuditEvent
from market.consents import permissions as perm
from market.consents import records
from market.consents.errors import RecordsUnavailable, ServiceUnavailable
from market.consents.models import Consent, ConsentStatus, Lookup
from market.consents.services import (
    CREDIT_CODE_KIND,
    audit_data,
    normalize_credit_code,
    registered_subject,
    require_admitted_subject,
    subject_code_of,
    subject_ref,
)
from market.datasets.models import ColumnRole, Treatment
from market.db import utcnow
from market.errors import Forbidden, RateLimited
from market.pipeline import pseudonym
from market.scenarios.services import ensure_use_allowed
from market.web import labels

#: One message for "no consent" and "no such enterprise": a bank cannot probe existence.
NO_CONSENT_MESSAGE = _l(
    "No granted, unexpired consent of this enterprise covers this license. Ask the enterprise "
    "to grant a consent request, or the operator to record its authorization letter."
)
CONSENT_EVENTS = (
    "consent.requested",
    "consent.granted",
    "consent.denied",
    "consent.recorded",
    "consent.revoked",
)
ACCESS_LOG_EVENTS = (*CONSENT_EVENTS, "lookup.performed")


@dataclass(frozen=True)
class LookupTable:
    """One licensed table in a lookup answer."""

    slug: str
    dataset_id: int
    title: str
    columns: tuple[str, ...]
    #: Licensed columns left out: pseudonymized identifiers are join keys, and handing them
    #: out next to a known enterprise would let the holder re-link them elsewhere.
    omitted_columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    truncated: bool


@dataclass(frozen=True)
class LookupResult:
    lookup: Lookup
    consent: Consent
    subject_credit_code: str
    subject_name: str | None
    tables: list[LookupTable]
    #: Licensed tables a lookup cannot read (no data version; not keyed by credit code).
    unavailable: list[dict[str, Any]]
    quota_remaining: int
    row_limit: int
    performed_at: dt.datetime
    chart: dict[str, Any] | None = field(default=None)

    @property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {t.slug: t.rows for t in self.tables}


@dataclass(frozen=True)
class _Plan:
    spec: records.TableSpec
    dataset_id: int
    title: str
    omitted: tuple[str, ...]


@dataclass(frozen=True)
class ItemScope:
    """What a lookup reads from one licensed dataset: the columns, or why it reads nothing.

    The one rule for both the lookup and the consent page that tells the enterprise, before
    it grants, exactly what the bank will read."""

    dataset_id: int
    slug: str
    title: str
    #: ``None`` when the table is read; else ``no_data_version`` or ``not_keyed_by_credit_code``.
    reason: str | None
    key_column: str | None = None
    columns: tuple[str, ...] = ()
    omitted: tuple[str, ...] = ()


def item_scope(item) -> ItemScope:
    """The scope of one license item (``LicenseItem``) for consented lookups."""
    dataset = item.dataset
    version = dataset.current_version
    base = {"dataset_id": dataset.id, "slug": dataset.slug, "title": dataset.title}
    if version is None or not version.parquet_path:
        return ItemScope(**base, reason="no_data_version")
    key = next((c for c in version.columns if c.role == ColumnRole.entity_key), None)
    if key is None or key.pii_kind != CREDIT_CODE_KIND or key.treatment != Treatment.pseudonymized:
        return ItemScope(**base, reason="not_keyed_by_credit_code")
    licensed = set(item.columns or [])
    columns: list[str] = []
    omitted: list[str] = []
    for column in version.columns:
        if column.name == key.name or column.name not in licensed:
            continue
        if column.treatment == Treatment.suppressed:
            continue
        if column.treatment == Treatment.pseudonymized:
            omitted.append(column.name)
            continue
        columns.append(column.name)
    return ItemScope(**base, reason=None, key_column=key.name, columns=tuple(columns),
                     omitted=tuple(omitted))


def _plan_tables(
    lic: License, local_path: Callable[[str], Path]
) -> tuple[list[_Plan], list[dict[str, Any]]]:
    plans: list[_Plan] = []
    unavailable: list[dict[str, Any]] = []
    for item in lic.items:
        dataset = item.dataset
        version = dataset.current_version
        scope = item_scope(item)
        if scope.reason is not None:
            unavailable.append(
                {"slug": dataset.slug, "dataset_id": dataset.id, "reason": scope.reason}
            )
            continue
        key_name, columns, omitted = scope.key_column, scope.columns, scope.omitted
        spec = records.TableSpec(
            slug=dataset.slug,
            path=Path(local_path(version.parquet_path)),
            key_column=key_name,
            columns=columns,
        )
        plans.append(_Plan(spec, dataset.id, dataset.title, omitted))
    return plans, unavailable


def _take_quota(session: Session, lic: License, now: dt.datetime) -> int | None:
    """One unit of the license's quota, atomically; the units left, or None if none was
    taken. On PostgreSQL the UPDATE's row lock makes concurrent lookups wait and re-check the
    condition; on SQLite every transaction is ``BEGIN IMMEDIATE``."""
    table = License.__table__
    result = session.execute(
        sa.update(table)
        .where(
            table.c.id == lic.id,
            table.c.quota_remaining > 0,
            table.c.status == LicenseStatus.ACTIVE.value,
            sa.or_(table.c.ends_at.is_(None), table.c.ends_at > now),
        )
        .values(quota_remaining=table.c.quota_remaining - 1)
    )
    session.expire(lic, ["quota_remaining", "status"])
    if result.rowcount != 1:
        return None
    return int(session.scalar(sa.select(table.c.quota_remaining).where(table.c.id == lic.id)))


def _refusal(lic: License, code: str, reason: str) -> tuple[str, tuple[str, Any], dict[str, Any]]:
    return (
        "lookup.refused",
        ("license", lic.id),
        {"subject_ref": subject_ref(code), "reason": reason},
    )


def perform_lookup(
    session: Session,
    actor: Actor,
    *,
    license_id: int,
    subject_credit_code: str,
    key: bytes,
    local_path: Callable[[str], Path],
    row_limit: int = records.DEFAULT_ROW_LIMIT,
    now: dt.datetime | None = None,
) -> LookupResult:
    """A bank reads one consenting enterprise's rows from every table of its license.

    ``key`` is the platform pseudonym key; ``local_path`` maps a storage key to a local
    Parquet file (``market.storage.storage().local_path``).

    Raises Forbidden (not a buyer; not admitted; blacklisted; the license is not active; no
    granted, unexpired consent — the same message for an enterprise nobody knows), NotFound
    (no such license, or another buyer's), ValidationFailed (a malformed credit code),
    RateLimited (the quota is used up), ServiceUnavailable (a table's data cannot be read).
    """
    now = now or utcnow()
    if not perm.can_look_up(actor):
        raise Forbidden(_("Only buyers make lookups."))
    if not perm.is_active(actor):
        raise Forbidden(str(perm.AWAITING_ADMISSION))
    blacklist.ensure_not_blacklisted(session, actor, "lookup")
    lic = licenses.active_license_for(session, license_id, actor, now)
    ensure_use_allowed(session, lic, "lookups")  # a data product's access (场景/数据产品)
    code = normalize_credit_code(subject_credit_code)
    consent = session.scalar(
        sa.select(Consent)
        .where(
            Consent.license_id == lic.id,
            Consent.subject_credit_code == code,
            Consent.status == ConsentStatus.granted.value,
            Consent.valid_until > now,
        )
        .order_by(Consent.valid_until.desc())
        .limit(1)
    )
    if consent is None:
        raise Forbidden(str(NO_CONSENT_MESSAGE), audit=_refusal(lic, code, "no_valid_consent"))

    left = _take_quota(session, lic, now)
    if left is None:
        if lic.status != LicenseStatus.ACTIVE:
            raise Forbidden(
                _(
                    "License %(id)s cannot be used: it is %(status)s.",
                    id=lic.id,
                    status=labels.name("license_status", lic.status),
                ),
                {
                    "license_id": [
                        _(
                            "The license is %(status)s.",
                            status=labels.name("license_status", lic.status),
                        )
                    ]
                },
            )
        raise RateLimited(
            _("The lookup quota of license %(id)s is used up.", id=lic.id),
            {"license_id": [_("No quota left.")]},
            audit=_refusal(lic, code, "quota_exhausted"),
        )

    target = pseudonym(key, CREDIT_CODE_KIND, code)
    plans, unavailable = _plan_tables(lic, local_path)
    tables: list[LookupTable] = []
    try:
        read = records.read_subject_tables([plan.spec for plan in plans], target, row_limit)
    except RecordsUnavailable as exc:
        raise ServiceUnavailable(
            _(
                "The data of table %(slug)s cannot be read right now; no quota was used. Try again later.",
                slug=exc.slug,
            )
        ) from None
    for plan, rows in zip(plans, read, strict=True):
        tables.append(
            LookupTable(
                plan.spec.slug,
                plan.dataset_id,
                plan.title,
                rows.columns,
                plan.omitted,
                rows.rows,
                rows.truncated,
            )
        )

    counts = {t.slug: len(t.rows) for t in tables}
    entry = Lookup(
        consent_id=consent.id,
        license_id=lic.id,
        buyer_org_id=actor.org_id,
        user_id=actor.user_id,
        subject_org_id=consent.subject_org_id,
        tables=[t.slug for t in tables],
        row_counts=counts,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        "lookup.performed",
        actor,
        ("consent", consent.id),
        audit_data(
            consent,
            lookup_id=entry.id,
            tables=[t.slug for t in tables],
            row_counts=counts,
            truncated=[t.slug for t in tables if t.truncated],
        ),
    )
    subject = consent.subject_org or registered_subject(session, code)
    return LookupResult(
        lookup=entry,
        consent=consent,
        subject_credit_code=code,
        subject_name=subject.name if subject is not None else None,
        tables=tables,
        unavailable=unavailable,
        quota_remaining=left,
        row_limit=row_limit,
        performed_at=now,
        chart=records.profile_series(read),
    )


def list_lookups(session: Session, actor: Actor) -> sa.Select:
    """Lookups, newest first: a bank its own, the operator and the regulator all.

    Raises Forbidden for other roles (an enterprise reads its access log instead).
    """
    stmt = sa.select(Lookup).order_by(Lookup.created_at.desc(), Lookup.id.desc())
    if perm.sees_all(actor):
        return stmt
    if perm.is_buyer(actor):
        return stmt.where(Lookup.buyer_org_id == actor.org_id)
    raise Forbidden(_("Only buyers, the operator and the regulator list lookups."))


# ------------------------------------------------------------------------------- access log


@dataclass(frozen=True)
class AccessEntry:
    """One event of an enterprise's access log: who (which bank), when, what."""

    at: dt.datetime
    type: str
    consent_id: int
    license_id: int
    bank: Organization
    #: Who acted: the bank, the enterprise itself, or the operator (a paper letter).
    actor_role: str | None
    tables: list[str]
    row_counts: dict[str, int]
    authorization_reference: str | None


def access_log(
    session: Session, actor: Actor, *, page: int = 1, per_page: int = 20
) -> dict[str, Any]:
    """The enterprise's access log, newest first: every consent event and lookup about it,
    read from the audit chain. Returns ``{items: [AccessEntry], total, page, per_page}``.

    Raises Forbidden (not a data subject; awaiting admission).
    """
    if not perm.can_read_access_log(actor):
        raise Forbidden(_("Only data subjects have an access log."))
    require_admitted_subject(actor)
    code = subject_code_of(session, actor)
    ids = sa.select(sa.cast(Consent.id, sa.String)).where(Consent.subject_credit_code == code)
    stmt = sa.select(AuditEvent).where(
        AuditEvent.subject_type == "consent",
        AuditEvent.subject_id.in_(ids.scalar_subquery()),
        AuditEvent.type.in_(ACCESS_LOG_EVENTS),
    )
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    events = session.scalars(
        stmt.order_by(AuditEvent.seq.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    consents = {
        c.id: c
        for c in session.scalars(
            sa.select(Consent).where(Consent.id.in_({int(e.subject_id) for e in events}))
        )
    }
    items = []
    for event in events:
        consent = consents[int(event.subject_id)]
        data = event.data or {}
        items.append(
            AccessEntry(
                at=event.at,
                type=event.type,
                consent_id=consent.id,
                license_id=consent.license_id,
                bank=consent.buyer,
                actor_role=(event.actor or {}).get("role"),
                tables=list(data.get("tables") or []),
                row_counts={str(k): int(v) for k, v in (data.get("row_counts") or {}).items()},
                authorization_reference=data.get("authorization_reference"),
            )
        )
    return {"items": items, "total": total, "page": page, "per_page": per_page}
