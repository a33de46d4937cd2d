"""Free (public-welfare) licenses: who is eligible, and the operator's whitelist.

The rule (#13.4): a free license is never granted on the buyer's word.

- Every license whose price is 0 goes to the operator's review (``pending_review``), whatever
  the datasets' open grade, with the buyer's written justification (required).
- Only an eligible organization may apply for one, and the operator's approval checks again:
  - by kind: its Unified Social Credit Code (GB 32100) names a public registration
    authority — ``1`` 机构编制 (government organs, public institutions 事业单位) or ``5``
    民政 (social organizations, foundations, social service bodies). Enterprises (``9``
    工商, banks included) and others are not eligible by kind;
  - or by the operator's whitelist of public-welfare bodies (:class:`PublicWelfareBody`),
    kept here with a reason for every addition and removal (audited).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses import permissions as perm
from licenses.models import PublicWelfareBody
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed

#: Registration-authority codes (the first character of a credit code) of public bodies.
PUBLIC_BODY_AUTHORITIES = frozenset({"1", "5"})
MAX_TEXT = 2000


def eligible_by_kind(org: Organization) -> bool:
    code = (org.credit_code or "").strip()
    return bool(code) and code[0] in PUBLIC_BODY_AUTHORITIES


def is_whitelisted(session: Session, org_id: int | None) -> bool:
    if org_id is None:
        return False
    return (
        session.scalar(
            sa.select(PublicWelfareBody.id).where(PublicWelfareBody.organization_id == org_id)
        )
        is not None
    )


def eligibility(session: Session, org: Organization) -> str | None:
    """Why ``org`` may have free licenses (``"kind"`` or ``"whitelist"``), or None."""
    if eligible_by_kind(org):
        return "kind"
    if is_whitelisted(session, org.id):
        return "whitelist"
    return None


def not_eligible_message() -> str:
    return _(
        "Free licenses are for public-welfare bodies only: government organs, public "
        "institutions and social organizations (by their credit code), or organizations on "
        "the operator's whitelist of public-welfare bodies. Ask the operator to add your "
        "organization, or request a paid quote."
    )


def justification(text: str | None, limit: int) -> str:
    """The buyer's justification for a free license, stripped. Raises ValidationFailed."""
    value = (text or "").strip()
    if not value:
        raise ValidationFailed(
            _("A free license needs your justification of its public-welfare use."),
            {"free_use_justification": [_("Explain the public-welfare use of the data.")]},
        )
    if len(value) > limit:
        raise ValidationFailed(
            _("The justification is too long."),
            {"free_use_justification": [_("Use at most %(n)s characters.", n=limit)]},
        )
    return value


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(_("A reason is required."), {"reason": [_("Give the reason.")]})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            _("The reason is too long."),
            {"reason": [_("Use at most %(n)s characters.", n=MAX_TEXT)]},
        )
    return text


def list_bodies(actor: Actor) -> sa.Select:
    """The whitelist, newest first (operator, regulator). Raises Forbidden."""
    if not perm.can_read_welfare_whitelist(actor):
        raise Forbidden(_("Only the operator and the regulator read the public-welfare list."))
    return sa.select(PublicWelfareBody).order_by(
        PublicWelfareBody.created_at.desc(), PublicWelfareBody.id.desc()
    )


def add(session: Session, actor: Actor, organization_id: int, reason: str) -> PublicWelfareBody:
    """Put a buyer organization on the whitelist (operator).

    Raises Forbidden, ValidationFailed (no reason; unknown organization, or not a buyer),
    Conflict (already listed).
    """
    if not perm.can_change_welfare_whitelist(actor):
        raise Forbidden(_("Only the operator keeps the list of public-welfare bodies."))
    text = _reason(reason)
    org = session.get(Organization, organization_id)
    if org is None or org.kind != "buyer":
        raise ValidationFailed(
            _("Only a buyer organization can be a public-welfare body."),
            {"organization_id": [_("Choose a buyer organization.")]},
        )
    if is_whitelisted(session, organization_id):
        raise Conflict(_("This organization is already on the list of public-welfare bodies."))
    entry = PublicWelfareBody(
        organization_id=organization_id, reason=text, created_by_id=actor.user_id
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        raise Conflict(
            _("This organization is already on the list of public-welfare bodies.")
        ) from None
    audit.record(
        session, "welfare_body.added", actor, ("organization", organization_id), {"reason": text}
    )
    return entry


def remove(session: Session, actor: Actor, organization_id: int, reason: str) -> None:
    """Take an organization off the whitelist (operator). Licenses it holds stay; pending
    free applications can no longer be approved.

    Raises Forbidden, ValidationFailed (no reason), NotFound (not listed).
    """
    if not perm.can_change_welfare_whitelist(actor):
        raise Forbidden(_("Only the operator keeps the list of public-welfare bodies."))
    text = _reason(reason)
    entry = session.scalar(
        sa.select(PublicWelfareBody).where(PublicWelfareBody.organization_id == organization_id)
    )
    if entry is None:
        raise NotFound(_("This organization is not on the list of public-welfare bodies."))
    session.delete(entry)
    session.flush()
    audit.record(
        session,
        "welfare_body.removed",
        actor,
        ("organization", organization_id),
        {"reason": text, "listed_reason": entry.reason},
    )
