"""Pricing-parameter versions: the operator's editable, versioned inputs of the model.

Ceilings and revenue caps (:data:`pricing.REGULATED_FIELDS`) are government-guided: the
operator proposes them (:func:`propose`) and they apply only once the regulator approves
(:func:`decide`), which saves them as a new version; the current version is published
(``GET /api/v1/pricing/parameters``, anyone). Every other parameter applies when the operator
saves it (:func:`save_parameters`).

The newest version is current. Version 1 is :meth:`pricing.PricingParameters.default`, seeded
on first read. Every quote records the version it was priced with, so saving a new version
never changes an issued quote. Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import pricing
from market.accounts.actor import Actor
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.i18n import translate
from market.quotes import permissions as perm
from market.quotes.models import PricingParameterSet, PricingProposal

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


def invalid_parameters(exc: pricing.InvalidParameters) -> ValidationFailed:
    """The 422 for a parameter set the model refuses, naming the field (and the key)."""
    reason = translate(exc.message, exc.params)
    return ValidationFailed(
        _(
            "The pricing parameters are not valid: %(field)s %(reason)s.",
            field=exc.field,
            reason=reason,
        ),
        {exc.field: [reason]},
    )


def parameters_of(row: PricingParameterSet) -> pricing.PricingParameters:
    """The validated model parameters stored in ``row``."""
    return pricing.PricingParameters.from_dict(row.params)


def current_parameter_set(session: Session) -> PricingParameterSet:
    """The newest parameter version; seeds version 1 (the defaults) if there is none yet."""
    row = session.scalar(
        sa.select(PricingParameterSet).order_by(PricingParameterSet.version.desc()).limit(1)
    )
    return row if row is not None else _seed_defaults(session)


def _seed_defaults(session: Session) -> PricingParameterSet:
    params = pricing.PricingParameters.default()
    row = PricingParameterSet(
        version=params.version, params=params.to_dict(), note="default parameters"
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # Another request seeded it between our read and our insert: use theirs.
        return session.scalars(
            sa.select(PricingParameterSet).where(PricingParameterSet.version == params.version)
        ).one()
    audit.record(
        session,
        "pricing.parameters_seeded",
        Actor.system("pricing"),
        ("pricing_parameters", row.version),
        {"version": row.version},
    )
    return row


def parameter_set(session: Session, version: int) -> PricingParameterSet:
    """One stored version. Raises NotFound."""
    if version == 1:
        current_parameter_set(session)  # make sure the default version exists
    row = session.scalar(
        sa.select(PricingParameterSet).where(PricingParameterSet.version == version)
    )
    if row is None:
        raise NotFound(_("There is no pricing parameter version %(version)s.", version=version))
    return row


def parameter_history() -> sa.Select:
    """Every version, newest first (for pagination)."""
    return sa.select(PricingParameterSet).order_by(PricingParameterSet.version.desc())


def parameters_in_force(session: Session, moment: dt.datetime) -> PricingParameterSet:
    """The version that was current just before ``moment`` (the oldest if none was)."""
    row = session.scalar(
        sa.select(PricingParameterSet)
        .where(PricingParameterSet.created_at < moment)
        .order_by(PricingParameterSet.version.desc())
        .limit(1)
    )
    if row is not None:
        return row
    current_parameter_set(session)
    return session.scalars(
        sa.select(PricingParameterSet).order_by(PricingParameterSet.version).limit(1)
    ).one()


def save_parameters(
    session: Session,
    actor: Actor,
    changes: Mapping[str, Any],
    *,
    note: str | None = None,
    base_version: int | None = None,
) -> PricingParameterSet:
    """Save a new parameter version: the current one with ``changes`` applied.

    ``changes`` holds fields in ``PricingParameters.to_dict()`` form (decimals as strings);
    fields left out keep their current value and ``version`` is assigned here. With
    ``base_version``, the save is refused if someone saved a newer version meanwhile.
    Quotes already issued keep the version they were priced with.

    Raises Forbidden (not the operator), ValidationFailed naming the first invalid field
    (or when nothing changes), Conflict (a concurrent save, or ``base_version`` is stale).
    """
    if not perm.can_edit_pricing_parameters(actor):
        raise Forbidden(_("Only the operator sets pricing parameters."))
    current = current_parameter_set(session)
    if base_version is not None and base_version != current.version:
        raise Conflict(
            _(
                "Version %(version)s was saved after version %(base_version)s; reload the parameters and apply your change again.",
                version=current.version,
                base_version=base_version,
            ),
            {"base_version": [_("the current version is %(version)s", version=current.version)]},
        )
    merged = {**current.params, **dict(changes), "version": current.version + 1}
    try:
        params = pricing.PricingParameters.from_dict(merged)
    except pricing.InvalidParameters as exc:
        raise invalid_parameters(exc) from None
    stored = params.to_dict()
    current_params = parameters_of(current).to_dict()
    changed = sorted(k for k in stored if k != "version" and stored[k] != current_params.get(k))
    regulated = [k for k in changed if k in pricing.REGULATED_FIELDS]
    if regulated:
        message = _("needs the regulator's approval: propose it instead")
        raise ValidationFailed(
            _(
                "Ceilings and revenue caps apply only once the regulator approves them: "
                "propose %(fields)s instead.",
                fields=", ".join(regulated),
            ),
            {k: [message] for k in regulated},
        )
    if not changed:
        raise ValidationFailed(
            _("Nothing to save: the parameters are the same as the current version."),
            {
                "parameters": [
                    _("no parameter differs from version %(version)s", version=current.version)
                ]
            },
        )
    row = PricingParameterSet(
        version=params.version,
        params=stored,
        note=(note or "").strip() or None,
        created_by_id=actor.user_id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(
            _("Another pricing parameter version was saved at the same time; reload and retry.")
        ) from None
    audit.record(
        session,
        "pricing.parameters_updated",
        actor,
        ("pricing_parameters", row.version),
        {"version": row.version, "previous_version": current.version, "changed": changed},
    )
    return row


# -- ceilings and caps: proposed by the operator, approved by the regulator ------------------


def propose(
    session: Session, actor: Actor, changes: Mapping[str, Any], *, note: str | None = None
) -> PricingProposal:
    """Propose new ceilings and revenue caps (only :data:`pricing.REGULATED_FIELDS`), in
    ``PricingParameters.to_dict()`` form. They apply once the regulator approves.

    Raises Forbidden (not the operator) and ValidationFailed naming the field: a field that
    is not a ceiling or cap, an invalid value (an unknown category key included), or no
    change from the current version.
    """
    if not perm.can_propose_pricing(actor):
        raise Forbidden(_("Only the operator proposes ceilings and revenue caps."))
    others = sorted(str(k) for k in changes if k not in pricing.REGULATED_FIELDS)
    if others:
        message = _("not a ceiling or revenue cap: save it as a parameter version")
        raise ValidationFailed(
            _("Only ceilings and revenue caps are proposed for approval."),
            {k: [message] for k in others},
        )
    current = current_parameter_set(session)
    now_params = parameters_of(current).to_dict()
    try:
        params = pricing.PricingParameters.from_dict(
            {**now_params, **dict(changes), "version": current.version + 1}
        )
    except pricing.InvalidParameters as exc:
        raise invalid_parameters(exc) from None
    stored = params.to_dict()
    normalized = {k: stored[k] for k in sorted(changes) if stored[k] != now_params.get(k)}
    if not normalized:
        raise ValidationFailed(
            _("Nothing to propose: the ceilings and caps are the same as the current version."),
            {"changes": [_("no ceiling or cap differs from the current version")]},
        )
    row = PricingProposal(
        changes=normalized,
        based_on_version=current.version,
        status=PENDING,
        note=(note or "").strip() or None,
        proposed_by_id=actor.user_id,
        proposed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "pricing.proposal_created",
        actor,
        ("pricing_proposal", row.id),
        {"fields": sorted(normalized), "based_on_version": current.version},
    )
    return row


def get_proposal(session: Session, actor: Actor, proposal_id: int) -> PricingProposal:
    """One proposal (operator, regulator). Raises Forbidden and NotFound."""
    if not perm.can_view_pricing_admin(actor):
        raise Forbidden(_("Only the operator and the regulator see pricing proposals."))
    row = session.get(PricingProposal, proposal_id)
    if row is None:
        raise NotFound(_("There is no pricing proposal %(id)s.", id=proposal_id))
    return row


def list_proposals(actor: Actor) -> sa.Select:
    """Every proposal, pending first, newest first (operator, regulator). Raises Forbidden."""
    if not perm.can_view_pricing_admin(actor):
        raise Forbidden(_("Only the operator and the regulator see pricing proposals."))
    return sa.select(PricingProposal).order_by(
        (PricingProposal.status == PENDING).desc(), PricingProposal.id.desc()
    )


def decide(
    session: Session,
    actor: Actor,
    proposal_id: int,
    *,
    approve: bool,
    note: str | None = None,
) -> PricingProposal:
    """The regulator approves (a new parameter version with the proposed values, in force
    from now and published) or rejects a pending proposal.

    Approved values are applied on top of the version current *now*, so parameters saved
    since the proposal are kept. Raises Forbidden (not the regulator), NotFound, Conflict
    (already decided, also when two decisions race) and ValidationFailed (the values no
    longer validate against the current version).
    """
    if not perm.can_decide_pricing_proposal(actor):
        raise Forbidden(_("Only the regulator approves or rejects ceilings and revenue caps."))
    row = get_proposal(session, actor, proposal_id)
    now = utcnow()
    status = APPROVED if approve else REJECTED
    # The state change is one conditional UPDATE, so two decisions cannot both win.
    done = session.execute(
        sa.update(PricingProposal)
        .where(PricingProposal.id == row.id, PricingProposal.status == PENDING)
        .values(
            status=status,
            decided_by_id=actor.user_id,
            decided_at=now,
            decision_note=(note or "").strip() or None,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        session.refresh(row)
        raise Conflict(
            _("Proposal %(id)s was already %(status)s.", id=row.id, status=row.status),
            {"status": [row.status]},
        )
    session.refresh(row)
    data: dict[str, Any] = {"fields": sorted(row.changes), "decision": status}
    if approve:
        current = current_parameter_set(session)
        try:
            params = pricing.PricingParameters.from_dict(
                {**parameters_of(current).to_dict(), **row.changes, "version": current.version + 1}
            )
        except pricing.InvalidParameters as exc:
            raise invalid_parameters(exc) from None
        version = PricingParameterSet(
            version=params.version,
            params=params.to_dict(),
            note=f"proposal {row.id}" + (f": {row.note}" if row.note else ""),
            created_by_id=actor.user_id,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(version)
                session.flush()
        except IntegrityError:
            raise Conflict(
                _("Another pricing parameter version was saved at the same time; retry.")
            ) from None
        row.result_version = version.version
        session.flush()
        data["version"] = version.version
        audit.record(
            session,
            "pricing.parameters_updated",
            actor,
            ("pricing_parameters", version.version),
            {
                "version": version.version,
                "previous_version": current.version,
                "changed": sorted(row.changes),
                "proposal_id": row.id,
            },
        )
    audit.record(
        session,
        f"pricing.proposal_{status}",
        actor,
        ("pricing_proposal", row.id),
        data,
    )
    return row
