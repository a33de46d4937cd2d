"""Changing a dataset's GB/T 43697-2024 security level after upload.

The department that owns the dataset asks for the change, with a reason:

- **Raising** (``general`` → ``important``) applies at once: it only makes the rules stricter.
  The dataset must open conditionally (important data is only served with differential
  privacy, as on upload: :func:`market.governance.services.check_grading`), and its privacy
  settings are tightened to the important defaults. Licenses already granted keep running
  to their end, but from now on their sandbox answers follow the stricter privacy defaults
  (they are read from the dataset at query time); every new license, and every application
  still pending review, needs the regulator's approval as well as the operator's
  (:func:`market.governance.services.require_regulator_approval` reads the level at review).
- **Lowering** (``important`` → ``general``) loosens the rules, so it is a request that applies
  only once the operator AND the regulator have approved it (in either order; either one's
  rejection, with a comment, ends it) — like a license over important data.
- **Core** (核心数据) is refused as on upload: core data is never operated on the market. A
  department whose dataset turns out to be core withdraws it.

One request may be pending per dataset. Every step is audited in the caller's transaction:
``dataset.security_level_raised``, ``dataset.security_level_change_requested``,
``dataset.security_level_change_approved``, ``dataset.security_level_change_rejected``,
``dataset.security_level_lowered``. Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus
from market.audit import services as audit
from market.datasets import permissions as dperm
from market.datasets.models import Dataset
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.governance import grading
from market.governance.models import SecurityLevelChange
from market.i18n import translate

PENDING = "pending"
APPLIED = "applied"
REJECTED = "rejected"
MAX_TEXT = 2000
#: ``errors.rule`` of a change to core refused.
RULE_CORE = "core_data"

_RANK = {grading.GENERAL: 0, grading.IMPORTANT: 1, grading.CORE: 2}


def _active_user(actor: Actor, role: str) -> bool:
    return actor.is_user and actor.role == role and actor.org_status == OrgStatus.active


def can_request(actor: Actor, dataset: Dataset) -> bool:
    """The owning department (an active member)."""
    return _active_user(actor, "department") and dperm.is_owner(actor, dataset)


def can_decide(actor: Actor) -> bool:
    """The operator and the regulator each approve a lowering."""
    return _active_user(actor, "operator") or _active_user(actor, "regulator")


def can_read(actor: Actor, dataset: Dataset) -> bool:
    return actor.is_user and (
        actor.role in ("operator", "regulator") or dperm.is_owner(actor, dataset)
    )


def _text(value: str | None, field: str, *, required: bool = True) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(_("Give the reason."), {field: [_("Give the reason.")]})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(
            _("The text is too long."), {field: [_("Use at most %(n)s characters.", n=MAX_TEXT)]}
        )
    return text or None


def _dataset_for(session: Session, actor: Actor, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or not (
        dperm.can_read_dataset(actor, dataset) or can_read(actor, dataset)
    ):
        raise NotFound(_("No such dataset."))
    return dataset


def pending_change(session: Session, dataset_id: int) -> SecurityLevelChange | None:
    return session.scalar(
        sa.select(SecurityLevelChange).where(
            SecurityLevelChange.dataset_id == dataset_id, SecurityLevelChange.status == PENDING
        )
    )


def _active_licenses(session: Session, dataset_id: int) -> int:
    from licenses.models import License, LicenseItem

    return session.scalar(
        sa.select(sa.func.count(sa.distinct(License.id)))
        .join(LicenseItem, LicenseItem.license_id == License.id)
        .where(LicenseItem.dataset_id == dataset_id, License.status == "active")
    ) or 0


def request_change(
    session: Session,
    actor: Actor,
    dataset_id: int,
    to_level: str,
    reason: str | None,
    now: dt.datetime | None = None,
) -> SecurityLevelChange:
    """The owning department asks to change the dataset's security level (see the module
    docstring for what raising and lowering do).

    Raises NotFound (no such dataset, or one the caller may not know), Forbidden (not its
    department), ValidationFailed (unknown level; ``core``, with ``errors.rule = core_data``;
    raising a dataset that is not opened conditionally; no reason), Conflict (the same level;
    a withdrawn dataset; a request already pending).
    """
    dataset = _dataset_for(session, actor, dataset_id)
    if not can_request(actor, dataset):
        raise Forbidden(_("Only the dataset's department asks to change its security level."))
    if to_level == grading.CORE:
        message = translate(grading.CORE_REFUSAL, {})
        raise ValidationFailed(
            _("Core data (核心数据) is never operated on the market: withdraw the dataset "
              "instead."),
            {"to_level": [message], "rule": RULE_CORE},
        )
    if to_level not in grading.OPERABLE:
        raise ValidationFailed(
            _("Unknown security level."), {"to_level": [_("Choose general or important.")]}
        )
    note = _text(reason, "reason")
    if dataset.status == "withdrawn":
        raise Conflict(_("The dataset was withdrawn."))
    current = dataset.security_level
    if to_level == current:
        raise Conflict(
            _("The dataset is already %(level)s.", level=to_level), {"to_level": [to_level]}
        )
    if pending_change(session, dataset.id) is not None:
        raise Conflict(
            _("A change of this dataset's security level is already waiting for approval."),
            {"to_level": [_("Wait for the pending request to be decided.")]},
        )
    now = now or utcnow()
    change = SecurityLevelChange(
        dataset_id=dataset.id, from_level=current, to_level=to_level, reason=note,
        status=PENDING, requested_by_id=actor.user_id, requested_at=now,
    )
    data: dict[str, Any] = {"from": current, "to": to_level, "reason": note}
    if _RANK[to_level] > _RANK[current]:
        from market.governance.services import apply_grading_defaults, check_grading

        check_grading(dataset.open_grade, to_level)  # important data opens conditionally only
        session.add(change)
        session.flush()
        dataset.security_level = to_level
        apply_grading_defaults(dataset)
        change.status = APPLIED
        change.applied_at = now
        session.flush()
        audit.record(
            session, "dataset.security_level_raised", actor, ("dataset", dataset.id),
            {**data, "change_id": change.id,
             "active_licenses": _active_licenses(session, dataset.id)},
        )
        return change
    session.add(change)
    session.flush()
    audit.record(
        session, "dataset.security_level_change_requested", actor, ("dataset", dataset.id),
        {**data, "change_id": change.id},
    )
    return change


def get_change(session: Session, actor: Actor, change_id: int) -> SecurityLevelChange:
    """Raises NotFound (no such request, or one the caller may not see)."""
    change = session.get(SecurityLevelChange, change_id)
    dataset = session.get(Dataset, change.dataset_id) if change is not None else None
    if change is None or dataset is None or not can_read(actor, dataset):
        raise NotFound(_("No such request."))
    return change


def list_changes(actor: Actor, *, dataset_id: int | None = None, status: str | None = None):
    """A query of the requests the caller may see: a department its datasets', the operator
    and the regulator all. Raises Forbidden for anyone else."""
    stmt = sa.select(SecurityLevelChange).order_by(SecurityLevelChange.id.desc())
    if actor.is_user and actor.role == "department":
        owned = sa.select(Dataset.id).where(Dataset.department_id == actor.org_id)
        stmt = stmt.where(SecurityLevelChange.dataset_id.in_(owned))
    elif not (actor.is_user and actor.role in ("operator", "regulator")):
        raise Forbidden(_("Only departments, the operator and the regulator see these requests."))
    if dataset_id is not None:
        stmt = stmt.where(SecurityLevelChange.dataset_id == dataset_id)
    if status:
        stmt = stmt.where(SecurityLevelChange.status == status)
    return stmt


def decide_change(
    session: Session,
    actor: Actor,
    change_id: int,
    decision: str,
    comment: str | None = None,
    now: dt.datetime | None = None,
) -> SecurityLevelChange:
    """The operator or the regulator decides a pending lowering; it applies when both have
    approved; a rejection (with a comment) by either ends it.

    Raises Forbidden (neither), NotFound, ValidationFailed (unknown decision; rejection
    without a comment), Conflict (not pending; this party already decided).
    """
    if not can_decide(actor):
        raise Forbidden(_("Only the operator and the regulator decide on a lower security level."))
    # The request's existence before the input (authorization and the object come first).
    change = session.scalar(
        sa.select(SecurityLevelChange)
        .where(SecurityLevelChange.id == change_id)
        .with_for_update(of=SecurityLevelChange)
    )
    if change is None:
        raise NotFound(_("No such request."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(_("Unknown decision."), {"decision": [_("Use approve or reject.")]})
    note = _text(comment, "comment", required=decision == "reject")
    if change.status != PENDING:
        raise Conflict(_("This request was already %(status)s.", status=change.status))
    party = actor.role
    if getattr(change, f"{party}_decision") is not None:
        raise Conflict(_("You have already decided on this request."))
    now = now or utcnow()
    setattr(change, f"{party}_decision", decision)
    setattr(change, f"{party}_by_id", actor.user_id)
    setattr(change, f"{party}_at", now)
    dataset = session.get(Dataset, change.dataset_id)
    assert dataset is not None
    data = {"change_id": change.id, "from": change.from_level, "to": change.to_level,
            "by": party, "comment": note}
    if decision == "reject":
        change.status = REJECTED
        change.comment = note
        session.flush()
        audit.record(session, "dataset.security_level_change_rejected", actor,
                     ("dataset", dataset.id), data)
        return change
    session.flush()
    audit.record(session, "dataset.security_level_change_approved", actor,
                 ("dataset", dataset.id), data)
    if change.operator_decision == "approve" and change.regulator_decision == "approve":
        if dataset.security_level != change.from_level:
            raise Conflict(_("The dataset's level changed meanwhile; ask again."))
        dataset.security_level = change.to_level
        change.status = APPLIED
        change.applied_at = now
        session.flush()
        audit.record(
            session, "dataset.security_level_lowered", actor, ("dataset", dataset.id),
            {"change_id": change.id, "from": change.from_level, "to": change.to_level,
             "active_licenses": _active_licenses(session, dataset.id)},
        )
    return change


def change_view(change: SecurityLevelChange) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")

    return {
        "id": change.id,
        "dataset_id": change.dataset_id,
        "from_level": change.from_level,
        "to_level": change.to_level,
        "reason": change.reason,
        "status": change.status,
        "requested_at": iso(change.requested_at),
        "operator_decision": change.operator_decision,
        "operator_at": iso(change.operator_at),
        "regulator_decision": change.regulator_decision,
        "regulator_at": iso(change.regulator_at),
        "comment": change.comment,
        "applied_at": iso(change.applied_at),
    }
