"""One small named check per sandbox action (role and object). Services turn False into 403,
or into 404 where the caller may not even know the license exists."""

from __future__ import annotations

from market.accounts.actor import Actor


def can_run_queries(actor: Actor) -> bool:
    """Only a buyer's users run queries (on their own organization's licenses)."""
    return actor.is_user and actor.role == "buyer"


def can_read_history(actor: Actor, buyer_org_id: int) -> bool:
    """A license's query log: its buyer; the operator and the regulator read any."""
    if not actor.is_user:
        return False
    if actor.role in ("operator", "regulator"):
        return True
    return actor.role == "buyer" and actor.org_id == buyer_org_id


def can_open_console(actor: Actor, buyer_org_id: int) -> bool:
    """The SQL console page of a license: its buyer only (others read the history via API)."""
    return can_run_queries(actor) and actor.org_id == buyer_org_id
