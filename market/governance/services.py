"""Governance state changes and signed documents.

- grading: :func:`check_grading`, :func:`apply_grading_defaults` (called by dataset upload);
- the red and black lists (红黑榜): :func:`public_lists`, :func:`add_entry`,
  :func:`remove_entry`, :func:`red_list_benefit` (the configured benefit of a red listing);
- the public signed license status list: :func:`license_status_list`;
- registration certificates (数据资产登记): :func:`issue_certificate` (at listing),
  :func:`certificate_for` (the latest listed version's).

Services flush and never commit; every state change records an audit event in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses import blacklist
from licenses.models import BlacklistEntry, License
from market import crypto
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.datasets.models import Dataset, DatasetVersion, OpenGrade, VersionStatus
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.governance import grading
from market.governance.models import ListEntry, RegistrationCertificate
from market.keys import signing_key

log = logging.getLogger(__name__)

LISTS = ("red", "black")
MAX_REASON = 2000
MAX_SUBJECT = 200
#: Defaults of the red-list benefit (config ``MARKET_RED_LIST_QUOTA_BONUS_PERCENT``).
DEFAULT_RED_QUOTA_BONUS_PERCENT = 20
#: Prefix of registration numbers: 沪 (Shanghai) data registration, year, sequence.
CERTIFICATE_PREFIX = "SHDR"


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------ grading


def check_grading(open_grade: str, security_level: str) -> None:
    """Refuse combinations the grading rules forbid: important data only opens conditionally
    (its queries must go through differential privacy, which only conditional data has).

    Raises ValidationFailed.
    """
    if security_level not in grading.LEVELS:
        raise ValidationFailed(
            _("Unknown security level."),
            {"security_level": [_("Choose general, important or core.")]},
        )
    if security_level == grading.IMPORTANT and open_grade != OpenGrade.conditional:
        message = _(
            "Important data (重要数据) can only be opened conditionally, with differential "
            "privacy."
        )
        raise ValidationFailed(message, {"open_grade": [message]})


def apply_grading_defaults(dataset: Dataset) -> None:
    """Tighten a new dataset's privacy settings to its level's defaults (never loosen them)."""
    if dataset.security_level != grading.IMPORTANT:
        return
    defaults = grading.privacy_defaults(grading.IMPORTANT)
    k = defaults["k_min"]
    if k is not None and (dataset.k_min is None or dataset.k_min < k):
        dataset.k_min = k
    budget = defaults["epsilon_budget"]
    if budget is not None and (dataset.dp_epsilon_budget is None or dataset.dp_epsilon_budget > budget):
        dataset.dp_epsilon_budget = budget


# ------------------------------------------------------------------------------ lists


def _can_change_lists(actor: Actor) -> bool:
    return actor.role == "regulator" and actor.org_status == "active" and actor.is_user


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(_("A reason is required."), {"reason": [_("Give the reason.")]})
    if len(text) > MAX_REASON:
        raise ValidationFailed(
            _("The reason is too long."),
            {"reason": [_("Use at most %(n)s characters.", n=MAX_REASON)]},
        )
    return text


def _until(until: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if until is None:
        return None
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    if until <= now:
        raise ValidationFailed(
            _("The term must end in the future."), {"until": [_("Give a future date.")]}
        )
    return until


def _active(column: Any, now: dt.datetime) -> Any:
    return sa.or_(column.is_(None), column > now)


@dataclass(frozen=True)
class PublicEntry:
    """One line of the public 红黑榜."""

    list: str
    organization: dict[str, Any] | None
    subject: str | None
    kind: str
    reason: str
    since: dt.datetime
    until: dt.datetime | None
    id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organization": self.organization,
            "subject": self.subject,
            "kind": self.kind,
            "reason": self.reason,
            "since": iso(self.since),
            "until": iso(self.until),
        }


def _org_ref(org: Organization) -> dict[str, Any]:
    # Organizations only: credit codes are public registry data, never personal data.
    return {"id": org.id, "name": org.name, "credit_code": org.credit_code}


def public_lists(session: Session, now: dt.datetime | None = None) -> dict[str, list[PublicEntry]]:
    """The current red and black lists (expired entries are left out), newest first."""
    now = now or utcnow()
    out: dict[str, list[PublicEntry]] = {"red": [], "black": []}
    for b in session.scalars(
        sa.select(BlacklistEntry)
        .where(_active(BlacklistEntry.until, now))
        .order_by(BlacklistEntry.created_at.desc(), BlacklistEntry.id.desc())
    ):
        out["black"].append(
            PublicEntry(
                "black", _org_ref(b.organization), None, b.organization.kind, b.reason,
                b.created_at, b.until, b.id,
            )
        )
    for e in session.scalars(
        sa.select(ListEntry)
        .where(_active(ListEntry.until, now))
        .order_by(ListEntry.created_at.desc(), ListEntry.id.desc())
    ):
        org = e.organization
        out[e.list].append(
            PublicEntry(
                e.list,
                _org_ref(org) if org is not None else None,
                e.subject,
                org.kind if org is not None else "subject",
                e.reason,
                e.created_at,
                e.until,
                e.id,
            )
        )
    for entries in out.values():
        entries.sort(key=lambda p: (p.since, p.id), reverse=True)
    return out


def _listable_org(session: Session, organization_id: int | None) -> Organization:
    org = session.get(Organization, organization_id) if organization_id is not None else None
    if org is None:
        raise ValidationFailed(
            _("No such organization."), {"organization_id": [_("Unknown organization.")]}
        )
    if org.kind in ("operator", "regulator"):
        raise ValidationFailed(
            _("The operator and the regulator cannot be listed."),
            {"organization_id": [_("Choose a buyer, department or data subject.")]},
        )
    return org


def add_entry(
    session: Session,
    actor: Actor,
    list_name: str,
    *,
    organization_id: int | None = None,
    subject: str | None = None,
    reason: str,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> PublicEntry:
    """Put an organization (or a free-text scenario/project subject) on the red or black list
    (regulator). Black-listed organizations go through ``licenses.blacklist`` (enforced
    everywhere); audited ``lists.added``.

    Raises Forbidden (not the regulator), NotFound (unknown list), ValidationFailed (no
    reason, neither or both of organization and subject, a past ``until``, an unknown or
    platform organization), Conflict (already on that list).
    """
    now = now or utcnow()
    if list_name not in LISTS:
        raise NotFound(_("No such list."))
    if not _can_change_lists(actor):
        raise Forbidden(_("Only the regulator keeps the red and black lists."))
    text = _reason(reason)
    term = _until(until, now)
    subject = (subject or "").strip() or None
    if (organization_id is None) == (subject is None):
        message = _("Name either an organization or a subject.")
        raise ValidationFailed(message, {"organization_id": [message]})
    if subject is not None and len(subject) > MAX_SUBJECT:
        raise ValidationFailed(
            _("The subject is too long."),
            {"subject": [_("Use at most %(n)s characters.", n=MAX_SUBJECT)]},
        )
    if list_name == "black" and organization_id is not None:
        org = _listable_org(session, organization_id)
        entry = blacklist.add(session, actor, organization_id, text, until=term, now=now)
        audit.record(
            session,
            "lists.added",
            actor,
            ("organization", organization_id),
            {"list": "black", "reason": text, "until": iso(term), "kind": org.kind},
        )
        return PublicEntry(
            "black", _org_ref(org), None, org.kind, entry.reason, entry.created_at, entry.until,
            entry.id,
        )
    org = _listable_org(session, organization_id) if organization_id is not None else None
    if org is not None:
        existing = session.scalar(
            sa.select(ListEntry).where(
                ListEntry.list == list_name, ListEntry.organization_id == org.id
            )
        )
        if existing is not None:
            if existing.until is not None and existing.until <= now:
                session.delete(existing)  # an expired listing ends; a new term replaces it
                session.flush()
            else:
                raise Conflict(_("This organization is already on that list."))
    entry = ListEntry(
        list=list_name,
        organization_id=org.id if org is not None else None,
        subject=subject,
        reason=text,
        until=term,
        created_by_id=actor.user_id,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        raise Conflict(_("This organization is already on that list.")) from None
    audit.record(
        session,
        "lists.added",
        actor,
        ("organization", org.id) if org is not None else ("list_entry", entry.id),
        {
            "list": list_name,
            "reason": text,
            "until": iso(term),
            "kind": org.kind if org is not None else "subject",
            "subject": subject,
        },
    )
    return PublicEntry(
        list_name,
        _org_ref(org) if org is not None else None,
        subject,
        org.kind if org is not None else "subject",
        text,
        entry.created_at,
        term,
        entry.id,
    )


def require_entry(session: Session, actor: Actor, list_name: str, entry_id: int) -> None:
    """Raise NotFound (unknown list or entry) or Forbidden (not the regulator) before the
    request's body is read."""
    from market.governance.models import ListEntry

    if list_name not in LISTS:
        raise NotFound(_("No such list."))
    if not _can_change_lists(actor):
        raise Forbidden(_("Only the regulator keeps the red and black lists."))
    if session.get(ListEntry, entry_id) is None:
        raise NotFound(_("No such entry on the list."))


def remove_entry(
    session: Session,
    actor: Actor,
    list_name: str,
    *,
    organization_id: int | None = None,
    entry_id: int | None = None,
    reason: str,
) -> None:
    """Take an organization (or a subject entry, by id) off the red or black list (regulator);
    audited ``lists.removed``.

    Raises Forbidden, NotFound (unknown list, or not listed), ValidationFailed (no reason).
    """
    if list_name not in LISTS:
        raise NotFound(_("No such list."))
    if not _can_change_lists(actor):
        raise Forbidden(_("Only the regulator keeps the red and black lists."))
    text = _reason(reason)
    if list_name == "black" and organization_id is not None:
        blacklist.remove(session, actor, organization_id, text)
        audit.record(
            session, "lists.removed", actor, ("organization", organization_id),
            {"list": "black", "reason": text},
        )
        return
    stmt = sa.select(ListEntry).where(ListEntry.list == list_name)
    if organization_id is not None:
        stmt = stmt.where(ListEntry.organization_id == organization_id)
    elif entry_id is not None:
        stmt = stmt.where(ListEntry.id == entry_id, ListEntry.subject.is_not(None))
    else:
        raise NotFound(_("Not on this list."))
    entry = session.scalar(stmt)
    if entry is None:
        raise NotFound(_("Not on this list."))
    subject = ("organization", entry.organization_id) if entry.organization_id else (
        "list_entry", entry.id
    )
    data = {"list": list_name, "reason": text, "listed_reason": entry.reason,
            "subject": entry.subject}
    session.delete(entry)
    session.flush()
    audit.record(session, "lists.removed", actor, subject, data)


@dataclass(frozen=True)
class RedListBenefit:
    """What a red listing gives a buyer organization today."""

    listed: bool
    quota_bonus_percent: int
    fast_track: bool

    def quota_bonus(self, quota: int) -> int:
        """Extra queries on a new license of ``quota`` queries (rounded down, integer)."""
        if not self.listed or quota <= 0:
            return 0
        return quota * self.quota_bonus_percent // 100


def red_listed(session: Session, org_id: int | None, now: dt.datetime | None = None) -> bool:
    if org_id is None:
        return False
    now = now or utcnow()
    return (
        session.scalar(
            sa.select(ListEntry.id).where(
                ListEntry.list == "red",
                ListEntry.organization_id == org_id,
                _active(ListEntry.until, now),
            )
        )
        is not None
    )


def red_list_benefit(
    session: Session, org_id: int | None, now: dt.datetime | None = None
) -> RedListBenefit:
    """The configured benefit of organization ``org_id`` (none unless it is red-listed now)."""
    listed = red_listed(session, org_id, now)
    percent = int(
        current_app.config.get(
            "MARKET_RED_LIST_QUOTA_BONUS_PERCENT", DEFAULT_RED_QUOTA_BONUS_PERCENT
        )
    )
    return RedListBenefit(listed, max(0, percent) if listed else 0, listed)


def fast_track_first(session: Session, licenses: Sequence[Any]) -> list[Any]:
    """``licenses`` reordered so that red-listed buyers' applications come first (the fast
    track of the red list), each part keeping its given order (oldest first)."""
    org_ids = {lic.buyer_org_id for lic in licenses if lic.buyer_org_id is not None}
    if not org_ids:
        return list(licenses)
    now = utcnow()
    red = set(
        session.scalars(
            sa.select(ListEntry.organization_id).where(
                ListEntry.list == "red",
                ListEntry.organization_id.in_(org_ids),
                _active(ListEntry.until, now),
            )
        )
    )
    return sorted(licenses, key=lambda lic: lic.buyer_org_id not in red)


# ------------------------------------------------------------------------------ status list


def license_status_list(session: Session, now: dt.datetime | None = None) -> dict[str, Any]:
    """The signed status list of every license: ``{issued_at, licenses: [{id, status}],
    signature, public_key_id}``. The signature covers the canonical JSON of
    ``{issued_at, licenses}``. Ids and statuses only: no buyer, price or purpose."""
    now = now or utcnow()
    rows = session.execute(sa.select(License.id, License.status).order_by(License.id)).all()
    payload = {
        "issued_at": iso(now),
        "licenses": [{"id": r.id, "status": r.status} for r in rows],
    }
    key = signing_key()
    return {**payload, "signature": crypto.sign(key.private, payload), "public_key_id": key.id}


# ------------------------------------------------------------------------------ certificates


def _certificate_payload(number: str, dataset: Dataset, version: DatasetVersion,
                         issued_at: dt.datetime) -> dict[str, Any]:
    department = dataset.department
    return {
        "number": number,
        "dataset_id": dataset.id,
        "title": dataset.title,
        "version": version.version,
        "department": department.name,
        "department_credit_code": department.credit_code,
        "category": dataset.category,
        "security_level": dataset.security_level,
        "open_grade": dataset.open_grade,
        "quality": version.quality_score,
        "row_count": version.row_count,
        "sha256": version.parquet_sha256,
        "issued_at": iso(issued_at),
    }


def issue_certificate(
    session: Session, actor: Actor, version: DatasetVersion, now: dt.datetime | None = None
) -> RegistrationCertificate | None:
    """Issue the registration certificate of a version that was just listed; audited
    ``dataset.registered``. Idempotent: a version keeps its first certificate.

    A version without a stored Parquet file (none is listed by the pipeline; only rows made by
    hand) has nothing to register: ``None``, and no certificate is served for it.
    Raises Conflict if the version is not listed.
    """
    existing = session.scalar(
        sa.select(RegistrationCertificate).where(RegistrationCertificate.version_id == version.id)
    )
    if existing is not None:
        return existing
    if version.status != VersionStatus.listed:
        raise Conflict(_("Only a listed version with its stored file can be registered."))
    if not version.parquet_sha256:
        log.warning("version %s listed without a stored file: no certificate", version.id)
        return None
    now = now or utcnow()
    dataset = version.dataset
    cert = RegistrationCertificate(
        number=f"pending-{os.urandom(8).hex()}",
        dataset_id=dataset.id,
        version_id=version.id,
        certificate={},
        signature="",
        key_id="",
        issued_at=now,
    )
    session.add(cert)
    session.flush()
    # The number follows the row id: unique without a second sequence to lock.
    cert.number = f"{CERTIFICATE_PREFIX}-{now.year}-{cert.id:06d}"
    payload = _certificate_payload(cert.number, dataset, version, now)
    key = signing_key()
    cert.certificate = payload
    cert.signature = crypto.sign(key.private, payload)
    cert.key_id = key.id
    session.flush()
    audit.record(
        session,
        "dataset.registered",
        actor,
        ("registration_certificate", cert.id),
        {"number": cert.number, "dataset_id": dataset.id, "version": version.version,
         "sha256": version.parquet_sha256, "security_level": dataset.security_level},
    )
    return cert


def certificate_for(session: Session, dataset_id: int) -> RegistrationCertificate:
    """The certificate of the dataset's current listed version (anyone, once listed).

    Raises NotFound if the dataset does not exist, is not listed, or has no certificate.
    """
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.status != VersionStatus.listed or dataset.current_version_id is None:
        raise NotFound(_("No registration certificate for this dataset."))
    cert = session.scalar(
        sa.select(RegistrationCertificate).where(
            RegistrationCertificate.version_id == dataset.current_version_id
        )
    )
    if cert is None:
        raise NotFound(_("No registration certificate for this dataset."))
    return cert


def signed_certificate(cert: RegistrationCertificate) -> dict[str, Any]:
    return {
        "certificate": dict(cert.certificate),
        "signature": cert.signature,
        "public_key_id": cert.key_id,
    }


# ------------------------------------------------------------------------------ DCAT offer

#: The standard scope a catalogue offer is priced for (a bank's risk-control year).
REFERENCE_SCOPE = {"duration_months": 12, "query_quota": 1000, "purpose": "internal_risk_control"}


def reference_offer(session: Session, dataset: Dataset) -> Any:
    """The ODRL offer the catalogue shows for ``dataset``: all its columns for
    :data:`REFERENCE_SCOPE`, priced by the current pricing model (no state change: without a
    stored parameter set the model's defaults are used). ``None`` if it cannot be priced."""
    import pricing
    from market.datasets.dcat import DcatOffer
    from market.quotes.models import PricingParameterSet
    from market.quotes.parameters import parameters_of
    from market.quotes.services import priced_dataset

    row = session.scalar(
        sa.select(PricingParameterSet).order_by(PricingParameterSet.version.desc()).limit(1)
    )
    params = parameters_of(row) if row is not None else pricing.PricingParameters.default()
    try:
        pd = priced_dataset(session, dataset.id, "offer")
        scope = pricing.Scope(None, **REFERENCE_SCOPE)
        quote = pricing.quote([(pd.info, scope)], params)
    except (ValidationFailed, pricing.NotPriceable, pricing.InvalidScope, ValueError):
        return None
    return DcatOffer(price_fen=quote.total, **REFERENCE_SCOPE)


# ------------------------------------------------------------------------------ important data


def license_needs_regulator(lic: License) -> bool:
    """Whether ``lic`` covers important data (重要数据), so that it needs the regulator's
    approval as well as the operator's."""
    return any(
        grading.requires_regulator_approval(item.dataset.security_level) for item in lic.items
    )


def regulator_decision(session: Session, license_id: int) -> Any:
    from market.governance.models import LicenseRegulatorDecision

    return session.get(LicenseRegulatorDecision, license_id)


def require_regulator_approval(session: Session, lic: License) -> None:
    """Called by the operator's license review before it approves: a license over important
    data needs the regulator's approval first.

    Raises Conflict if the regulator has not approved it (yet).
    """
    if not license_needs_regulator(lic):
        return
    decision = regulator_decision(session, lic.id)
    if decision is None or decision.decision != "approve":
        raise Conflict(
            _(
                "This license includes important data (重要数据): the regulator must approve it "
                "before the operator does."
            ),
            {"decision": [_("Waiting for the regulator's approval.")]},
        )


def require_reviewable(session: Session, actor: Actor, license_id: int) -> None:
    """Raise Forbidden unless ``actor`` is the regulator, NotFound unless the license exists;
    checked before the request's body is read."""
    from licenses.models import License

    if not _can_change_lists(actor):
        raise Forbidden(_("Only the regulator decides on licenses for important data."))
    if session.get(License, license_id) is None:
        raise NotFound(_("No such license."))


def regulator_review(
    session: Session,
    actor: Actor,
    license_id: int,
    *,
    decision: str,
    comment: str | None = None,
    now: dt.datetime | None = None,
) -> Any:
    """The regulator approves or rejects a license application over important data; audited
    ``license.regulator_approved`` / ``license.regulator_rejected``. A rejection rejects the
    application (state machine ``reject``, audited ``license.rejected`` too).

    Raises Forbidden (not the regulator), NotFound, ValidationFailed (unknown decision, a
    rejection without a comment), Conflict (not pending review, no important data, already
    decided).
    """
    from licenses.locks import lock_license
    from licenses.states import LicenseEvent, LicenseStatus, transition
    from market.governance.models import LicenseRegulatorDecision

    if not _can_change_lists(actor):
        raise Forbidden(_("Only the regulator decides on licenses for important data."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(_("Unknown decision."), {"decision": [_("Use approve or reject.")]})
    note = (comment or "").strip()
    if len(note) > MAX_REASON:
        raise ValidationFailed(
            _("The comment is too long."),
            {"comment": [_("Use at most %(n)s characters.", n=MAX_REASON)]},
        )
    if decision == "reject" and not note:
        raise ValidationFailed(
            _("Say why you reject it: the buyer sees this comment."),
            {"comment": [_("Give the reason.")]},
        )
    lic = lock_license(session, license_id)
    if lic is None:
        raise NotFound(_("No such license."))
    if lic.status != LicenseStatus.PENDING_REVIEW:
        raise Conflict(_("Only a license pending review can be decided."))
    if not license_needs_regulator(lic):
        raise Conflict(_("This license includes no important data: the operator decides alone."))
    if regulator_decision(session, lic.id) is not None:
        raise Conflict(_("The regulator has already decided on this license."))
    now = now or utcnow()
    row = LicenseRegulatorDecision(
        license_id=lic.id, decision=decision, comment=note or None,
        decided_by_id=actor.user_id, decided_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        f"license.regulator_{'approved' if decision == 'approve' else 'rejected'}",
        actor,
        ("license", lic.id),
        {"comment": note},
    )
    if decision == "reject":
        lic.status = transition(lic.status, LicenseEvent.REJECT).value
        lic.review_comment = note
        lic.reviewed_by_id = actor.user_id
        lic.reviewed_at = now
        session.flush()
        audit.record(
            session, "license.rejected", actor, ("license", lic.id),
            {"comment": note, "status": lic.status, "by": "regulator"},
        )
    return row
