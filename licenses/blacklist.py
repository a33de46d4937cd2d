"""The regulator's blacklist (黑名单): listed organizations may not apply for licenses, request
consents, run sandbox queries or make lookups.

Other areas call :func:`is_blacklisted` or :func:`ensure_not_blacklisted` before acting for
a buyer. A listing may have a term (``until``, exclusive): once it has passed the listing has
ended, and the organization acts again (the governance 红黑榜 sets it).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses import permissions as perm
from licenses.models import BlacklistEntry
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed

#: The 403 message every area shows to a blacklisted organization.
BLACKLISTED_MESSAGE = _l(
    "Your organization is on the regulator's blacklist; it cannot apply for licenses, request "
    "consents, run queries or make lookups. Contact the regulator."
)
MAX_REASON = 2000


def _in_force(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(BlacklistEntry.until.is_(None), BlacklistEntry.until > now)


def is_blacklisted(session: Session, org_id: int | None, now: dt.datetime | None = None) -> bool:
    """Whether organization ``org_id`` is on the blacklist now (an expired term has ended)."""
    if org_id is None:
        return False
    return (
        session.scalar(
            sa.select(BlacklistEntry.id).where(
                BlacklistEntry.organization_id == org_id, _in_force(now or utcnow())
            )
        )
        is not None
    )


def ensure_not_blacklisted(session: Session, actor: Actor, action: str) -> None:
    """Raise Forbidden (with an audited ``blacklist.refused`` event naming ``action``) if the
    actor's organization is blacklisted."""
    if is_blacklisted(session, actor.org_id):
        raise Forbidden(
            str(BLACKLISTED_MESSAGE),
            audit=("blacklist.refused", ("organization", actor.org_id), {"action": action}),
        )


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(_("A reason is required."), {"reason": [_("Give the reason.")]})
    if len(text) > MAX_REASON:
        raise ValidationFailed(
            _("The reason is too long."),
            {"reason": [_("Use at most %(max_reason)s characters.", max_reason=MAX_REASON)]},
        )
    return text


def list_entries(now: dt.datetime | None = None) -> sa.Select:
    """The listings in force (expired terms are left out), newest first."""
    return (
        sa.select(BlacklistEntry)
        .where(_in_force(now or utcnow()))
        .order_by(BlacklistEntry.created_at.desc(), BlacklistEntry.id)
    )


def add(
    session: Session,
    actor: Actor,
    organization_id: int,
    reason: str,
    *,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> BlacklistEntry:
    """Blacklist an organization (regulator), until ``until`` (exclusive) or until removed.

    An expired listing of the same organization is replaced.

    Raises Forbidden, ValidationFailed (no reason; an unknown organization, or one of the
    platform's own kinds: operator, regulator), Conflict if it is already listed.
    """
    if not perm.can_change_blacklist(actor):
        raise Forbidden(_("Only the regulator changes the blacklist."))
    text = _reason(reason)
    org = session.get(Organization, organization_id)
    if org is None:
        raise ValidationFailed(
            _("No such organization."), {"organization_id": [_("Unknown organization.")]}
        )
    if org.kind in ("operator", "regulator"):
        raise ValidationFailed(
            _("The operator and the regulator cannot be blacklisted."),
            {"organization_id": [_("Choose a buyer, department or data subject.")]},
        )
    now = now or utcnow()
    if is_blacklisted(session, organization_id, now):
        raise Conflict(_("This organization is already on the blacklist."))
    expired = session.scalar(
        sa.select(BlacklistEntry).where(BlacklistEntry.organization_id == organization_id)
    )
    if expired is not None:
        session.delete(expired)
        session.flush()
    entry = BlacklistEntry(
        organization_id=organization_id,
        reason=text,
        created_by_id=actor.user_id,
        created_at=now,
        until=until,
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        # Two regulators listing the same organization at once: the unique row decides.
        raise Conflict(_("This organization is already on the blacklist.")) from None
    audit.record(
        session,
        "blacklist.added",
        actor,
        ("organization", organization_id),
        {"reason": text, "kind": org.kind, "until": until.isoformat() if until else None},
    )
    return entry


def remove(session: Session, actor: Actor, organization_id: int, reason: str) -> None:
    """Take an organization off the blacklist (regulator).

    Raises Forbidden, ValidationFailed (no reason), NotFound if it is not listed.
    """
    if not perm.can_change_blacklist(actor):
        raise Forbidden(_("Only the regulator changes the blacklist."))
    text = _reason(reason)
    entry = session.scalar(
        sa.select(BlacklistEntry).where(BlacklistEntry.organization_id == organization_id)
    )
    if entry is None:
        raise NotFound(_("This organization is not on the blacklist."))
    session.delete(entry)
    session.flush()
    audit.record(
        session,
        "blacklist.removed",
        actor,
        ("organization", organization_id),
        {"reason": text, "listed_reason": entry.reason},
    )
