"""Consents (授权): request, decide, record a paper letter, revoke, read. Services flush; the
request boundary commits.

The lifecycle: a bank (buyer) asks → ``requested``; the enterprise grants or denies it in the
platform, or the operator records a paper authorization letter (授权书) → ``granted`` with its
reference; the enterprise may revoke a granted consent at any time → ``revoked``. A granted
consent past ``valid_until`` reads as ``expired``. Lookups live in :mod:`market.consents.lookups`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any
from zoneinfo import ZoneInfo

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
from market.consents import permissions as perm
from market.consents.models import Consent, ConsentStatus
from market.db import iso, utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.idcodes import is_valid_uscc
from market.scenarios.services import ensure_use_allowed
from market.web import labels

MAX_PURPOSE = 2000
MAX_REFERENCE = 200
#: The pipeline's kind string for Unified Social Credit Codes (market.pipeline.kinds).
CREDIT_CODE_KIND = "credit_code"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# ------------------------------------------------------------------------------- helpers


def normalize_credit_code(code: str | None, field: str = "subject_credit_code") -> str:
    """The code upper-cased and stripped. Raises ValidationFailed naming ``field`` unless the
    check character is right."""
    value = (code or "").strip().upper()
    if not is_valid_uscc(value):
        raise ValidationFailed(
            _("The Unified Social Credit Code is not valid."),
            {
                field: [
                    _("Not a valid 18-character code: check the characters and the check digit.")
                ]
            },
        )
    return value


def subject_ref(code: str) -> str:
    """A short keyed fingerprint of a credit code for audit data: lets a regulator correlate
    events about one enterprise without the code in the log. Domain-separated from the data
    pseudonyms, so it never joins to a dataset row."""
    from market.keys import pseudonym_key

    mac = hmac.new(pseudonym_key(), b"consent-subject\x00" + code.encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


def _text(value: str | None, field: str, what: object, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(
            _("The %(what)s is required.", what=what), {field: [_("Give the %(what)s.", what=what)]}
        )
    if len(text) > limit:
        raise ValidationFailed(
            _("The %(what)s is too long.", what=what),
            {field: [_("Use at most %(limit)s characters.", limit=limit)]},
        )
    return text


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def end_of_local_day(day: dt.date, cap: dt.datetime | None = None) -> dt.datetime:
    """23:59:59 Shanghai time on ``day``, in UTC; no later than ``cap`` when ``cap`` falls on
    that same local day (a consent may run to the license's last moment, not past it)."""
    end = dt.datetime.combine(day, dt.time(23, 59, 59), LOCAL_TZ).astimezone(dt.UTC)
    if cap is not None and end > cap and cap.astimezone(LOCAL_TZ).date() == day:
        return cap
    return end


def subject_code_of(session: Session, actor: Actor) -> str | None:
    """The credit code of the caller's organization if it is a data subject."""
    if not perm.is_subject(actor) or actor.org_id is None:
        return None
    return session.scalar(
        sa.select(Organization.credit_code).where(Organization.id == actor.org_id)
    )


def registered_subject(session: Session, code: str) -> Organization | None:
    return session.scalar(
        sa.select(Organization).where(
            Organization.credit_code == code, Organization.kind == "subject"
        )
    )


def require_admitted_subject(actor: Actor) -> None:
    # A pending enterprise has not proven it owns the code it registered with: it sees no
    # consent about that code and decides none (whatever the consent id, so nothing leaks).
    if perm.is_subject(actor) and not perm.is_active(actor):
        raise Forbidden(str(perm.AWAITING_ADMISSION))


def _lock(session: Session, consent_id: int) -> Consent | None:
    return session.execute(
        sa.select(Consent)
        .where(Consent.id == consent_id)
        .with_for_update(of=Consent)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _for_subject_action(session: Session, actor: Actor, consent_id: int, verb: object) -> Consent:
    """The consent locked for a decision or revocation by the enterprise it names.

    Raises Forbidden (awaiting admission; a caller who may see the consent but is not its
    enterprise), NotFound (no such consent, or one the caller may not know about).
    """
    require_admitted_subject(actor)
    consent = _lock(session, consent_id)
    code = subject_code_of(session, actor)
    if consent is None:
        raise NotFound(_("No such consent."))
    if not perm.can_decide_consent(actor, consent, code):
        if perm.can_view_consent(actor, consent, code):
            raise Forbidden(_("Only the enterprise the consent names can %(verb)s it.", verb=verb))
        raise NotFound(_("No such consent."))
    return consent


def audit_data(consent: Consent, **extra: Any) -> dict[str, Any]:
    return {
        "license_id": consent.license_id,
        "buyer_org_id": consent.buyer_org_id,
        "subject_org_id": consent.subject_org_id,
        "subject_ref": subject_ref(consent.subject_credit_code),
        **extra,
    }


# ------------------------------------------------------------------------------- consents


def request_consent(
    session: Session,
    actor: Actor,
    *,
    license_id: int,
    subject_credit_code: str,
    purpose: str,
    valid_until: dt.datetime,
    now: dt.datetime | None = None,
) -> Consent:
    """A bank asks an enterprise for consent to look up its records under one license.

    Raises Forbidden (not a buyer; not admitted; blacklisted; the license is not active),
    NotFound (no such license, or another buyer's), ValidationFailed naming the field (the
    credit code, the purpose, ``valid_until`` not in the future or after the license ends),
    Conflict (an open request or a valid consent for this license and enterprise exists).
    """
    now = now or utcnow()
    if not perm.can_request_consent(actor):
        raise Forbidden(_("Only buyers request consents."))
    if not perm.is_active(actor):
        raise Forbidden(str(perm.AWAITING_ADMISSION))
    blacklist.ensure_not_blacklisted(session, actor, "request_consent")
    lic = licenses.active_license_for(session, license_id, actor, now)
    ensure_use_allowed(session, lic, "lookups")  # a data product's access (场景/数据产品)
    code = normalize_credit_code(subject_credit_code)
    text = _text(purpose, "purpose", _l("purpose"), MAX_PURPOSE)
    until = _aware(valid_until)
    if until <= now:
        raise ValidationFailed(
            _("The consent must be valid until a time in the future."),
            {"valid_until": [_("Choose a time in the future.")]},
        )
    if lic.ends_at is not None and until > lic.ends_at:
        raise ValidationFailed(
            _(
                "The consent cannot outlast license %(id)s, which ends at %(ends_at)s.",
                id=lic.id,
                ends_at=iso(lic.ends_at),
            ),
            {
                "valid_until": [
                    _(
                        "Choose a time no later than the license's end, %(ends_at)s.",
                        ends_at=iso(lic.ends_at),
                    )
                ]
            },
        )
    open_one = session.scalar(
        sa.select(Consent.id).where(
            Consent.license_id == lic.id,
            Consent.subject_credit_code == code,
            sa.or_(
                Consent.status == ConsentStatus.requested.value,
                sa.and_(Consent.status == ConsentStatus.granted.value, Consent.valid_until > now),
            ),
        )
    )
    if open_one is not None:
        conflict = Conflict(
            _(
                "Consent %(open_one)s for this license and enterprise is already open.",
                open_one=open_one,
            ),
            {"subject_credit_code": [_("See consent %(open_one)s.", open_one=open_one)]},
        )
        # The web form links to it (the message says which; the id makes it a link).
        conflict.existing_consent_id = open_one
        raise conflict
    subject = registered_subject(session, code)
    consent = Consent(
        license_id=lic.id,
        buyer_org_id=actor.org_id,
        requested_by_id=actor.user_id,
        subject_credit_code=code,
        subject_org_id=subject.id if subject is not None else None,
        purpose=text,
        valid_until=until,
        status=ConsentStatus.requested.value,
        created_at=now,
    )
    session.add(consent)
    session.flush()
    audit.record(
        session,
        "consent.requested",
        actor,
        ("consent", consent.id),
        audit_data(consent, valid_until=iso(until)),
    )
    return consent


def decide_consent(
    session: Session,
    actor: Actor,
    consent_id: int,
    *,
    decision: str,
    now: dt.datetime | None = None,
) -> Consent:
    """The enterprise grants or denies a requested consent.

    Raises ValidationFailed (unknown decision), Forbidden (awaiting admission; the buyer,
    operator or regulator, who may see it but do not decide), NotFound (anyone else),
    Conflict (not requested; the requested validity has passed).
    """
    now = now or utcnow()
    # The caller first: only the enterprise that decides learns what a decision must be.
    consent = _for_subject_action(session, actor, consent_id, _l("decide"))
    if decision not in ("grant", "deny"):
        raise ValidationFailed(_("Unknown decision."), {"decision": [_("Use 'grant' or 'deny'.")]})
    if consent.status != ConsentStatus.requested:
        raise Conflict(
            _(
                "Consent %(id)s is %(value)s; only a requested consent can be decided.",
                id=consent.id,
                value=labels.name("consent_status", consent.status_at(now)),
            )
        )
    if decision == "grant" and consent.valid_until <= now:
        raise Conflict(
            _(
                "Consent %(id)s asked for access until %(valid_until)s, which has passed; the bank must ask again.",
                id=consent.id,
                valid_until=iso(consent.valid_until),
            )
        )
    consent.status = (ConsentStatus.granted if decision == "grant" else ConsentStatus.denied).value
    consent.decided_by_id = actor.user_id
    consent.decided_at = now
    consent.subject_org_id = actor.org_id
    session.flush()
    audit.record(
        session,
        "consent.granted" if decision == "grant" else "consent.denied",
        actor,
        ("consent", consent.id),
        audit_data(consent, valid_until=iso(consent.valid_until)),
    )
    return consent


def record_paper_authorization(
    session: Session,
    actor: Actor,
    consent_id: int,
    *,
    authorization_reference: str,
    now: dt.datetime | None = None,
) -> Consent:
    """The operator records the enterprise's paper authorization letter (授权书): the
    requested consent is granted, with the letter's reference.

    Raises Forbidden (not the operator), ValidationFailed (no reference), NotFound, Conflict
    (not requested; the requested validity has passed).
    """
    now = now or utcnow()
    if not perm.can_record_authorization(actor):
        raise Forbidden(_("Only the operator records paper authorization letters."))
    reference = _text(
        authorization_reference,
        "authorization_reference",
        _l("authorization letter's reference"),
        MAX_REFERENCE,
    )
    consent = _lock(session, consent_id)
    if consent is None:
        raise NotFound(_("No such consent."))
    if consent.status != ConsentStatus.requested:
        raise Conflict(
            _(
                "Consent %(id)s is %(value)s; only a requested consent can be granted by a letter.",
                id=consent.id,
                value=labels.name("consent_status", consent.status_at(now)),
            )
        )
    if consent.valid_until <= now:
        raise Conflict(
            _(
                "Consent %(id)s asked for access until %(valid_until)s, which has passed; the bank must ask again.",
                id=consent.id,
                valid_until=iso(consent.valid_until),
            )
        )
    if consent.subject_org_id is None:
        subject = registered_subject(session, consent.subject_credit_code)
        consent.subject_org_id = subject.id if subject is not None else None
    consent.status = ConsentStatus.granted.value
    consent.authorization_reference = reference
    consent.decided_by_id = actor.user_id
    consent.decided_at = now
    session.flush()
    audit.record(
        session,
        "consent.recorded",
        actor,
        ("consent", consent.id),
        audit_data(
            consent, authorization_reference=reference, valid_until=iso(consent.valid_until)
        ),
    )
    return consent


def revoke_consent(
    session: Session, actor: Actor, consent_id: int, *, now: dt.datetime | None = None
) -> Consent:
    """The enterprise revokes a granted consent; lookups stop at once.

    Raises Forbidden (awaiting admission; a caller who may see it but is not the enterprise),
    NotFound, Conflict (not granted).
    """
    now = now or utcnow()
    consent = _for_subject_action(session, actor, consent_id, _l("revoke"))
    if consent.status != ConsentStatus.granted:
        raise Conflict(
            _(
                "Consent %(id)s is %(value)s; only a granted consent can be revoked.",
                id=consent.id,
                value=labels.name("consent_status", consent.status_at(now)),
            )
        )
    consent.status = ConsentStatus.revoked.value
    consent.revoked_by_id = actor.user_id
    consent.revoked_at = now
    session.flush()
    audit.record(session, "consent.revoked", actor, ("consent", consent.id), audit_data(consent))
    return consent


def get_consent(session: Session, actor: Actor, consent_id: int) -> Consent:
    """One consent, for its bank, the enterprise it names, the operator and the regulator.

    Raises Forbidden (an enterprise awaiting admission), NotFound for anyone else.
    """
    require_admitted_subject(actor)
    consent = session.get(Consent, consent_id)
    if consent is None or not perm.can_view_consent(
        actor, consent, subject_code_of(session, actor)
    ):
        raise NotFound(_("No such consent."))
    return consent


def list_consents(
    session: Session, actor: Actor, *, status: str | None = None, now: dt.datetime | None = None
) -> sa.Select:
    """Consents the caller may see, newest first: a bank its own, an enterprise those about
    itself, the operator and the regulator all. ``status`` may be ``expired``.

    Raises Forbidden (other roles; an enterprise awaiting admission).
    """
    now = now or utcnow()
    require_admitted_subject(actor)
    stmt = sa.select(Consent).order_by(Consent.created_at.desc(), Consent.id.desc())
    if perm.sees_all(actor):
        pass
    elif perm.is_buyer(actor):
        stmt = stmt.where(Consent.buyer_org_id == actor.org_id)
    elif perm.is_subject(actor):
        stmt = stmt.where(Consent.subject_credit_code == subject_code_of(session, actor))
    else:
        raise Forbidden(
            _("Only buyers, data subjects, the operator and the regulator see consents.")
        )
    if status == ConsentStatus.expired:
        stmt = stmt.where(Consent.status == ConsentStatus.granted.value, Consent.valid_until <= now)
    elif status == ConsentStatus.granted:
        stmt = stmt.where(Consent.status == status, Consent.valid_until > now)
    elif status:
        stmt = stmt.where(Consent.status == status)
    return stmt


def usable_licenses(session: Session, actor: Actor) -> list[License]:
    """The caller's active licenses (expired first where due), for the request form."""
    if not perm.is_buyer(actor):
        return []
    licenses.expire_due(session, buyer_org_id=actor.org_id)
    return list(
        session.scalars(
            sa.select(License)
            .where(
                License.buyer_org_id == actor.org_id,
                License.status == LicenseStatus.ACTIVE.value,
            )
            .order_by(License.id.desc())
        )
    )
