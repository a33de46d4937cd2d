"""Pricing-parameter versions: the operator's editable, versioned inputs of the model.

The newest version is current. Version 1 is :meth:`pricing.PricingParameters.default`, seeded
on first read. Every quote records the version it was priced with, so saving a new version
never changes an issued quote. Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import pricing
from market.accounts.actor import Actor
from market.audit import services as audit
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.quotes import permissions as perm
from market.quotes.models import PricingParameterSet


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
        raise NotFound(f"There is no pricing parameter version {version}.")
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
        raise Forbidden("Only the operator sets pricing parameters.")
    current = current_parameter_set(session)
    if base_version is not None and base_version != current.version:
        raise Conflict(
            f"Version {current.version} was saved after version {base_version}; "
            "reload the parameters and apply your change again.",
            {"base_version": [f"the current version is {current.version}"]},
        )
    merged = {**current.params, **dict(changes), "version": current.version + 1}
    try:
        params = pricing.PricingParameters.from_dict(merged)
    except pricing.InvalidParameters as exc:
        raise ValidationFailed(
            f"The pricing parameters are not valid: {exc.field} {exc.message}.", exc.to_errors()
        ) from None
    stored = params.to_dict()
    changed = sorted(k for k in stored if k != "version" and stored[k] != current.params.get(k))
    if not changed:
        raise ValidationFailed(
            "Nothing to save: the parameters are the same as the current version.",
            {"parameters": [f"no parameter differs from version {current.version}"]},
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
            "Another pricing parameter version was saved at the same time; reload and retry."
        ) from None
    audit.record(
        session,
        "pricing.parameters_updated",
        actor,
        ("pricing_parameters", row.version),
        {"version": row.version, "previous_version": current.version, "changed": changed},
    )
    return row
