"""A dataset after publication: its department edits the metadata, the operator reviews the
edits that change what buyers get, and the department may withdraw it.

The rule (also shown on the edit page and in API.md):

- **Wording applies at once**: title, description and update frequency describe the data; they
  change neither the columns a license delivers, nor its price, nor the privacy of answers.
  Audited ``dataset.edited``.
- **What buyers get goes back to review**: the category (it sets the price coefficient) and the
  cost basis (it sets the price floor) are proposed as a change request, audited
  ``dataset.change_proposed``, and apply only when the operator approves it
  (``dataset.change_reviewed``). Until then the catalogue, quotes and licenses keep the values
  in force. New columns or treatments come with a new version, which is reviewed as ever.
  One change request may be pending at a time; a newer proposal replaces it.
- **Privacy settings** of a listed dataset (``market.datasets.privacy.update_privacy``): a
  stricter value applies at once, a looser one becomes (part of) the change request.
- **Withdrawal** delists the dataset for good (status ``withdrawn``): no new quote, license or
  version; licenses already granted run to their end (the sandbox serves the listed version
  they bought). A pending change request is closed. Audited ``dataset.withdrawn`` with the
  number of active licenses.

Every function takes the session and the actor, flushes and never commits; each state change
is audited in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.audit.services import record
from market.datasets import permissions as perms
from market.datasets.models import (
    ChangeStatus,
    Dataset,
    DatasetChangeRequest,
    VersionStatus,
)
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed

WITHDRAWN = "withdrawn"

#: Fields that only reword the listing: applied at once.
WORDING_FIELDS = ("title", "description", "update_frequency")
#: Fields that change what buyers get (the price): applied after the operator's review.
REVIEWED_FIELDS = ("category", "costs")


@dataclass(frozen=True)
class MetadataEdit:
    """Validated edits (see ``lifecycle_api.DatasetEditSchema``); None means unchanged."""

    title: str | None = None
    description: str | None = None
    update_frequency: str | None = None
    category: str | None = None
    #: ``{"collection", "processing", "storage_monthly"}`` in integer fen.
    costs: Mapping[str, int] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetadataEdit:
        costs = data.get("costs")
        return cls(
            title=data["title"].strip() if data.get("title") is not None else None,
            description=data["description"].strip() if data.get("description") is not None else None,
            update_frequency=data.get("update_frequency"),
            category=data.get("category"),
            costs=dict(costs) if costs is not None else None,
        )


@dataclass
class EditResult:
    #: Wording fields that changed and are now in force.
    applied: dict[str, Any]
    #: The change request awaiting the operator, if anything needs review.
    change_request: DatasetChangeRequest | None


def costs_of(dataset: Dataset) -> dict[str, int]:
    return {
        "collection": dataset.cost_collection_fen,
        "processing": dataset.cost_processing_fen,
        "storage_monthly": dataset.cost_storage_monthly_fen,
    }


def _current(dataset: Dataset, name: str) -> Any:
    if name == "privacy":
        from market.datasets.privacy import effective_privacy

        settings = effective_privacy(dataset)
        return settings.as_json() if settings is not None else None
    return costs_of(dataset) if name == "costs" else getattr(dataset, name)


def pending_change(session: Session, dataset: Dataset) -> DatasetChangeRequest | None:
    return session.scalar(
        sa.select(DatasetChangeRequest)
        .where(
            DatasetChangeRequest.dataset_id == dataset.id,
            DatasetChangeRequest.status == ChangeStatus.pending,
        )
        .order_by(DatasetChangeRequest.id.desc())
        .limit(1)
    )


def require_owner(actor: Actor, dataset: Dataset) -> None:
    """NotFound for whoever may not know the dataset exists; Forbidden for other readers."""
    if not perms.can_read_dataset(actor, dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset.id))
    if not perms.can_manage_versions(actor, dataset):
        raise Forbidden(_("Only the department that owns this dataset can change it."))


def _require_not_withdrawn(dataset: Dataset) -> None:
    if dataset.withdrawn_at is not None:
        raise Conflict(
            _("Dataset %(id)s was withdrawn; it cannot change any more.", id=dataset.id),
            {"status": [WITHDRAWN]},
        )


def _require_publishable(dataset: Dataset) -> None:
    if dataset.status == VersionStatus.refused or dataset.confidential:
        raise Conflict(
            _("A refused dataset cannot be edited; publish a new dataset."),
            {"status": [str(dataset.status)]},
        )


def edit_metadata(
    session: Session, actor: Actor, dataset: Dataset, edit: MetadataEdit
) -> EditResult:
    """Apply the wording at once and propose the rest for review (see the module's rule).

    A dataset that was never listed has nothing in force for buyers yet: everything applies at
    once there, since its version is reviewed before listing anyway.

    Raises NotFound/Forbidden (not the owning department), Conflict (withdrawn or refused),
    ValidationFailed if nothing would change.
    """
    require_owner(actor, dataset)
    _require_not_withdrawn(dataset)
    _require_publishable(dataset)
    wanted = {
        name: getattr(edit, name)
        for name in (*WORDING_FIELDS, *REVIEWED_FIELDS)
        if getattr(edit, name) is not None
    }
    changed = {k: v for k, v in wanted.items() if v != _current(dataset, k)}
    if not changed:
        raise ValidationFailed(
            _("Nothing changed: edit at least one field."),
            {"form": [_("Nothing changed: edit at least one field.")]},
        )
    listed = dataset.listed_at is not None
    at_once = {k: v for k, v in changed.items() if k in WORDING_FIELDS or not listed}
    to_review = {k: v for k, v in changed.items() if k not in at_once}
    before = {k: _current(dataset, k) for k in at_once}
    for name, value in at_once.items():
        _set(dataset, name, value)
    session.flush()
    if at_once:
        record(
            session, "dataset.edited", actor, ("dataset", dataset.id),
            {"changed": sorted(at_once), "before": before, "after": dict(at_once)},
        )
    request = propose_change(session, actor, dataset, to_review) if to_review else None
    return EditResult(dict(at_once), request)


def ever_listed(dataset: Dataset) -> bool:
    """Whether buyers may have relied on the dataset's values (it is or was listed)."""
    return dataset.listed_at is not None or dataset.status == VersionStatus.listed


def propose_change(
    session: Session,
    actor: Actor,
    dataset: Dataset,
    to_review: Mapping[str, Any],
    *,
    merge: Any = None,
) -> DatasetChangeRequest:
    """Open the change request of ``to_review`` (``{field: new value}``, JSON-native), which
    replaces the pending one, keeping the fields the newer proposal does not touch.

    ``merge(previous_changes, to_review) -> dict`` combines them when a plain override is not
    right (the privacy settings merge per setting). Audited ``dataset.change_proposed``.
    """
    previous = pending_change(session, dataset)
    to_review = dict(to_review)
    if previous is not None:
        # One proposal at a time: the newer one replaces it (keeping what it did not touch).
        previous.status = ChangeStatus.rejected
        previous.reviewed_at = utcnow()
        previous.review_comment = _("Replaced by a newer proposal.")
        to_review = merge(previous.changes, to_review) if merge else {**previous.changes, **to_review}
    request = DatasetChangeRequest(
        dataset_id=dataset.id,
        status=ChangeStatus.pending,
        changes=to_review,
        before={k: _current(dataset, k) for k in to_review},
        proposed_by_id=actor.user_id,
        proposed_at=utcnow(),
    )
    session.add(request)
    session.flush()
    record(
        session, "dataset.change_proposed", actor, ("dataset", dataset.id),
        {
            "change_request": request.id,
            "changed": sorted(to_review),
            "before": request.before,
            "after": dict(to_review),
            "replaces": previous.id if previous is not None else None,
        },
    )
    return request


def _set(dataset: Dataset, name: str, value: Any) -> None:
    if name == "privacy":
        from market.datasets.privacy import apply_reviewed

        apply_reviewed(dataset, value)
    elif name == "costs":
        dataset.cost_collection_fen = int(value["collection"])
        dataset.cost_processing_fen = int(value["processing"])
        dataset.cost_storage_monthly_fen = int(value["storage_monthly"])
    else:
        setattr(dataset, name, value)


def review_change(
    session: Session, actor: Actor, dataset: Dataset, decision: str, comment: str = ""
) -> DatasetChangeRequest:
    """The operator approves (the changes apply now) or rejects the pending change request.

    Raises Forbidden unless an active operator, ValidationFailed for an unknown decision or a
    rejection without a comment, Conflict if nothing is pending or the dataset was withdrawn.
    """
    if not perms.can_review(actor):
        raise Forbidden(_("Only the operator reviews publications."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(_("Decide approve or reject."), {"decision": [_("approve or reject")]})
    comment = (comment or "").strip()
    if decision == "reject" and not comment:
        raise ValidationFailed(
            _("Say why you reject the change, so that the department can fix it."),
            {"comment": [_("Required when you reject.")]},
        )
    _require_not_withdrawn(dataset)
    request = pending_change(session, dataset)
    if request is None:
        raise Conflict(
            _("Dataset %(id)s has no change awaiting review.", id=dataset.id),
            {"status": [_("no pending change request")]},
        )
    privacy_before = _current(dataset, "privacy") if "privacy" in request.changes else None
    if decision == "approve":
        for name, value in request.changes.items():
            _set(dataset, name, value)
    request.status = ChangeStatus.approved if decision == "approve" else ChangeStatus.rejected
    request.reviewed_by_id = actor.user_id
    request.reviewed_at = utcnow()
    request.review_comment = comment or None
    session.flush()
    record(
        session, "dataset.change_reviewed", actor, ("dataset", dataset.id),
        {
            "change_request": request.id,
            "decision": decision,
            "comment": comment,
            "changed": sorted(request.changes),
        },
    )
    if decision == "approve" and "privacy" in request.changes:
        # The same event as any privacy change, so that one query finds every change in force.
        record(
            session, "dataset.privacy_changed", actor, ("dataset", dataset.id),
            {"before": privacy_before, "after": _current(dataset, "privacy"), "by": actor.role,
             "change_request": request.id},
        )
    return request


def active_license_count(session: Session, dataset: Dataset) -> int:
    from licenses.models import License, LicenseItem

    return session.scalar(
        sa.select(sa.func.count(sa.distinct(License.id)))
        .join(LicenseItem, LicenseItem.license_id == License.id)
        .where(LicenseItem.dataset_id == dataset.id, License.status == "active")
    ) or 0


def withdraw(session: Session, actor: Actor, dataset: Dataset, reason: str) -> Dataset:
    """Delist ``dataset`` for good (see the module's rule); returns it.

    Raises NotFound/Forbidden (not the owning department), ValidationFailed without a reason,
    Conflict if already withdrawn or a version is still being processed (wait for it: the job
    would otherwise write into a withdrawn dataset).
    """
    require_owner(actor, dataset)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            _("Say why the dataset is withdrawn; the reason is kept in the audit log."),
            {"reason": [_("Required.")]},
        )
    if len(reason) > 2000:
        raise ValidationFailed(_("At most 2000 characters."), {"reason": [_("At most 2000 characters.")]})
    _require_not_withdrawn(dataset)
    busy = [v.version for v in dataset.versions if v.status == VersionStatus.processing]
    if busy:
        raise Conflict(
            _("Version %(v)s is still being processed; withdraw once it is done.", v=busy[-1]),
            {"status": ["processing"]},
        )
    closed = pending_change(session, dataset)
    if closed is not None:
        closed.status = ChangeStatus.withdrawn
        closed.reviewed_at = utcnow()
    # A version awaiting review will never be listed now.
    for version in dataset.versions:
        if version.status == VersionStatus.pending_review:
            version.status = VersionStatus.rejected
            version.review_comment = _("Withdrawn by the department before review.")
    was = dataset.status
    dataset.withdrawn_at = utcnow()
    dataset.withdrawal_reason = reason
    dataset.status = WITHDRAWN
    session.flush()
    record(
        session, "dataset.withdrawn", actor, ("dataset", dataset.id),
        {
            "previous_status": str(was),
            "reason": reason,
            "active_licenses": active_license_count(session, dataset),
            "closed_change_request": closed.id if closed is not None else None,
        },
    )
    return dataset


__all__ = [
    "EditResult",
    "MetadataEdit",
    "REVIEWED_FIELDS",
    "WITHDRAWN",
    "WORDING_FIELDS",
    "active_license_count",
    "edit_metadata",
    "ever_listed",
    "propose_change",
    "pending_change",
    "review_change",
    "withdraw",
]
