"""One small named check per action on agreements: role AND object."""

from __future__ import annotations

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus
from market.agreements.models import Agreement


def _active(actor: Actor) -> bool:
    return actor.is_user and actor.org_status == OrgStatus.active


def can_propose(actor: Actor) -> bool:
    """An active department writes and signs its own agreements."""
    return actor.role == "department" and _active(actor)


def can_sign(actor: Actor, agreement: Agreement) -> bool:
    return can_propose(actor) and actor.org_id == agreement.department_id


def can_countersign(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)


def can_read(actor: Actor, agreement: Agreement) -> bool:
    """The department that signed it, the operator and the regulator."""
    if not actor.is_user:
        return False
    if actor.role in ("operator", "regulator"):
        return True
    return actor.role == "department" and actor.org_id == agreement.department_id


def can_list_all(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")
