"""One small named check per action on licenses, payments, revenue and the blacklist.

Each returns bool and looks at the role *and*, where there is one, the object. Services turn
False into 403, or into 404 where the caller may not even know the object exists (another
buyer's license).
"""

from __future__ import annotations

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus


def _active(actor: Actor) -> bool:
    return actor.is_user and actor.org_status == OrgStatus.active


def can_apply_for_license(actor: Actor) -> bool:
    """The role check only; admission and the blacklist are checked with their own messages."""
    return actor.is_user and actor.role == "buyer"


def can_view_license(actor: Actor, buyer_org_id: int) -> bool:
    if actor.role in ("operator", "regulator"):
        return actor.is_user
    return actor.role == "buyer" and actor.org_id == buyer_org_id


def can_list_all_licenses(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_review_license(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)


def can_pay_license(actor: Actor, buyer_org_id: int) -> bool:
    return actor.role == "buyer" and actor.org_id == buyer_org_id and actor.is_user


def can_settle_payment(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)


def can_pay_credit_note(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)


def can_list_payments(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_revoke_license(actor: Actor) -> bool:
    return actor.role in ("operator", "regulator") and _active(actor)


def can_suspend_license(actor: Actor) -> bool:
    return actor.role == "regulator" and _active(actor)


def can_reinstate_license(actor: Actor) -> bool:
    return actor.role == "regulator" and _active(actor)


def can_read_ledger(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_read_statement(actor: Actor, department_id: int) -> bool:
    """Departments read their own statement; the operator and the regulator read any."""
    if actor.role in ("operator", "regulator"):
        return actor.is_user
    return actor.role == "department" and actor.org_id == department_id


def can_record_payout(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)


def can_read_blacklist(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_change_blacklist(actor: Actor) -> bool:
    return actor.role == "regulator" and _active(actor)


def can_read_welfare_whitelist(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_change_welfare_whitelist(actor: Actor) -> bool:
    return actor.role == "operator" and _active(actor)
