"""One small named check per pricing action. Each returns bool; the caller raises.

Quotes belong to the buyer organization that asked for them: for anyone else a quote does
not exist (404, not 403), so quote ids reveal nothing.
"""

from __future__ import annotations

from market.accounts.actor import Actor
from market.accounts.permissions import is_active_member


def can_request_quote(actor: Actor) -> bool:
    """Any buyer may ask for prices, even one still pending admission or blacklisted: browsing
    prices is harmless, and applying for a license is what those states block."""
    return actor.is_user and actor.role == "buyer"


def can_view_quote(actor: Actor, buyer_org_id: int) -> bool:
    return actor.is_user and actor.role == "buyer" and actor.org_id == buyer_org_id


def can_list_quotes(actor: Actor) -> bool:
    return actor.is_user and actor.role == "buyer"


def can_request_upgrade_quote(actor: Actor, license_buyer_org_id: int) -> bool:
    return can_view_quote(actor, license_buyer_org_id)


def can_edit_pricing_parameters(actor: Actor) -> bool:
    return actor.role == "operator" and is_active_member(actor)


def can_view_pricing_admin(actor: Actor) -> bool:
    """The parameter history page: the operator edits, the regulator reads."""
    return actor.is_user and actor.role in ("operator", "regulator")


def can_view_revenue_caps(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_propose_pricing(actor: Actor) -> bool:
    """Ceilings and revenue caps: the operator proposes them..."""
    return actor.role == "operator" and is_active_member(actor)


def can_decide_pricing_proposal(actor: Actor) -> bool:
    """...and the regulator approves or rejects them."""
    return actor.role == "regulator" and is_active_member(actor)
