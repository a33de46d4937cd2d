"""One named check per action on scenarios and data products (role; the services add the
object checks: a scenario's state, a product's state, the product fitting the scenario)."""

from __future__ import annotations

from market.accounts.actor import Actor


def _user(actor: Actor, role: str) -> bool:
    return actor.is_user and actor.role == role


def sees_drafts(actor: Actor) -> bool:
    """The operator and the regulator see scenarios and products in every state."""
    return actor.is_user and actor.role in ("operator", "regulator")


def can_manage_scenarios(actor: Actor) -> bool:
    return _user(actor, "operator")


def can_decide_scenario(actor: Actor) -> bool:
    return _user(actor, "regulator")


def can_manage_products(actor: Actor) -> bool:
    return _user(actor, "operator")


def can_apply_for_product(actor: Actor) -> bool:
    return _user(actor, "buyer")


def can_read_revenue(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator", "department")


def can_withdraw_scenario(actor: Actor) -> bool:
    """The operator (who publishes scenarios) and the regulator (who approved them)."""
    return actor.is_user and actor.role in ("operator", "regulator")
