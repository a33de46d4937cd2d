"""Who may do what with datasets: one small check per action, role AND object.

Each check returns bool. The API turns a False into 403 when the caller may know the dataset
exists (it can read it) and into 404 otherwise, so that unlisted datasets stay invisible.
"""

from __future__ import annotations

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus
from market.accounts.permissions import is_active_member
from market.datasets.models import Dataset, VersionStatus


def _active_org(actor: Actor) -> bool:
    # Users of an active organization; also the trusted CLI/demo actors that act for one
    # (Actor(None, org_id, role, "active", "cli")), which no request can produce.
    return actor.org_id is not None and (
        is_active_member(actor) or (not actor.is_user and actor.org_status == OrgStatus.active)
    )


def is_owner(actor: Actor, dataset: Dataset) -> bool:
    return (
        actor.org_id is not None
        and actor.role == "department"
        and actor.org_id == dataset.department_id
    )


def can_see_unlisted(actor: Actor, dataset: Dataset) -> bool:
    """The owning department, the operator and the regulator see a dataset before listing."""
    return actor.org_id is not None and (
        actor.role in ("operator", "regulator") or is_owner(actor, dataset)
    )


def can_read_dataset(actor: Actor, dataset: Dataset) -> bool:
    """Anyone (even anonymous) once listed; before that only owner, operator and regulator."""
    return dataset.status == VersionStatus.listed or can_see_unlisted(actor, dataset)


def can_view_versions(actor: Actor, dataset: Dataset) -> bool:
    """Version history and processing progress: owner, operator and regulator only."""
    return can_see_unlisted(actor, dataset)


def can_upload(actor: Actor) -> bool:
    """Publishing a new dataset: a member of an active department."""
    return actor.role == "department" and _active_org(actor)


def can_manage_versions(actor: Actor, dataset: Dataset) -> bool:
    """New versions and treatment changes: the owning department only."""
    return is_owner(actor, dataset) and _active_org(actor)


def can_review(actor: Actor) -> bool:
    return actor.role == "operator" and _active_org(actor)
