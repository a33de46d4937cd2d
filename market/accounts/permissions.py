"""One small named check per action. Each returns bool; ``require`` turns False into 403.

Checks look at the role *and* the object: an operator manages organizations, but a buyer can
see only its own organization, never another buyer's.
"""

from __future__ import annotations

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus
from market.errors import Forbidden


def require(allowed: bool, message: str = "You do not have permission to do this.") -> None:
    if not allowed:
        raise Forbidden(message)


def is_active_member(actor: Actor) -> bool:
    return actor.is_user and actor.org_status == OrgStatus.active


def can_create_organization(actor: Actor) -> bool:
    return actor.role == "operator" and is_active_member(actor)


def can_list_organizations(actor: Actor) -> bool:
    return actor.role in ("operator", "regulator")


def can_view_organization(actor: Actor, org_id: int) -> bool:
    return actor.role in ("operator", "regulator") or actor.org_id == org_id


def can_create_user(actor: Actor, org_id: int) -> bool:
    return actor.role == "operator" and is_active_member(actor)


def can_list_users(actor: Actor) -> bool:
    return actor.role in ("operator", "regulator")


def can_admit_organization(actor: Actor) -> bool:
    return actor.role == "operator" and is_active_member(actor)


def can_read_audit(actor: Actor) -> bool:
    return actor.role in ("operator", "regulator")


def can_export_audit(actor: Actor) -> bool:
    """The filtered CSV export: the regulator, and the operator, who answers for the log."""
    return actor.role in ("operator", "regulator")
