"""License lifecycle: apply, review, read, expire, suspend, reinstate, revoke.

Every state change goes through :func:`licenses.states.transition` (an illegal one raises
``IllegalTransition`` → 409) and is audited in the same transaction. Services flush and never
commit. Payments and settlement live in :mod:`licenses.payments`.

Functions other areas call:

- :func:`active_license_for` — the sandbox and consented lookups: the caller's active license,
  expired on access, or 403/404.
- :func:`get_license` — read one license as any role (404 when the caller may not see it).
- :func:`licenses.blacklist.is_blacklisted` — re-exported here for convenience.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses import blacklist, payment_refunds, payments, welfare
from licenses import permissions as perm
from licenses.activation import activate
from licenses.blacklist import is_blacklisted  # noqa: F401  (part of this module's API)
from licenses.locks import lock_license
from licenses.models import License, LicenseItem
from licenses.states import LicenseEvent, LicenseStatus, grants_access, transition
from market.accounts.actor import Actor
from market.accounts.models import Organization, OrgStatus
from market.audit import services as audit
from market.datasets.models import ColumnRole, Dataset, DatasetVersion, OpenGrade, Treatment
from market.db import iso, utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.quotes.models import Quote
from market.web import labels

MAX_STATEMENT = 4000
MAX_REASON = 2000
EXPIRY_ACTOR = Actor.system("expiry")

_S = LicenseStatus


def _text(value: str | None, field: str, what: object, limit: int = MAX_REASON) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(
            _("The %(what)s is required.", what=what), {field: [_("Give the %(what)s.", what=what)]}
        )
    if len(text) > limit:
        raise ValidationFailed(
            _("The %(what)s is too long.", what=what),
            {field: [_("Use at most %(limit)s characters.", limit=limit)]},
        )
    return text


def _visible(session: Session, actor: Actor, license_id: int) -> License:
    lic = session.get(License, license_id)
    if lic is None or not perm.can_view_license(actor, lic.buyer_org_id):
        raise NotFound(_("No such license."))
    return lic


# ------------------------------------------------------------------------------- applying


def _columns_for(
    session: Session, dataset: Dataset, version_no: int, requested: list[str] | None
) -> list[str]:
    """The licensed columns: those quoted, or every served column when the quote said "all";
    the entity key is always included (the sandbox joins on it)."""
    version = session.scalar(
        sa.select(DatasetVersion).where(
            DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == version_no
        )
    )
    columns = list(version.columns) if version is not None else []
    if requested:
        names = list(dict.fromkeys(str(c) for c in requested))
    else:
        names = [c.name for c in columns if c.treatment != Treatment.suppressed]
    for column in columns:
        if column.role == ColumnRole.entity_key and column.name not in names:
            names.insert(0, column.name)
    if not names:
        raise Conflict(
            _(
                "Dataset %(id)s version %(version_no)s has no columns to license; ask for a new quote.",
                id=dataset.id,
                version_no=version_no,
            )
        )
    return names


def _items_from_quote(session: Session, quote: Quote) -> list[tuple[Dataset, LicenseItem]]:
    out: list[tuple[Dataset, LicenseItem]] = []
    for raw in quote.items or []:
        dataset = session.get(Dataset, int(raw["dataset_id"]))
        if dataset is None:
            raise Conflict(
                _("Dataset %(raw)s of the quote no longer exists.", raw=raw["dataset_id"])
            )
        if dataset.open_grade == OpenGrade.restricted:
            raise Conflict(
                _("Dataset %(id)s is not open (不予开放) and cannot be licensed.", id=dataset.id)
            )
        from market.agreements.services import is_lapsed

        if dataset.status == "delisted" or is_lapsed(session, dataset):
            # Its authorization agreement ended (授权运营协议): no new license, even on a quote
            # made before.
            raise Conflict(
                _(
                    "Dataset %(id)s cannot be listed: no active authorization agreement of its department covers it.",
                    id=dataset.id,
                ),
                {"rule": "no_active_agreement"},
            )
        version_no = raw.get("dataset_version")
        if version_no is None:
            current = dataset.current_version
            if current is None:
                raise Conflict(_("Dataset %(id)s has no listed version.", id=dataset.id))
            version_no = current.version
        item = LicenseItem(
            dataset_id=dataset.id,
            dataset_version=int(version_no),
            columns=_columns_for(session, dataset, int(version_no), raw.get("columns")),
            amount_fen=int(raw.get("amount", 0)),
        )
        out.append((dataset, item))
    if not out:
        raise Conflict(_("The quote covers no dataset."))
    return out


def apply_for_license(
    session: Session,
    actor: Actor,
    *,
    quote_id: int,
    purpose_statement: str,
    free_use_justification: str | None = None,
    now: dt.datetime | None = None,
) -> License:
    """Apply for a license with a quote of the caller's organization.

    The license starts ``pending_review`` if it includes a ``conditional`` dataset or is free
    (total 0), else ``awaiting_payment``. A free license needs the buyer's
    ``free_use_justification`` and an eligible organization (:mod:`licenses.welfare`); it
    turns active, with no ledger entries, when the operator approves it.

    Raises Forbidden (not a buyer; organization not admitted; blacklisted; a free license
    for an organization that is not eligible), ValidationFailed (no purpose statement; a
    free license without justification), NotFound (no such quote, or another buyer's),
    Conflict (the quote expired or was already used; a quoted dataset is gone or
    restricted).
    """
    now = now or utcnow()
    if not perm.can_apply_for_license(actor):
        raise Forbidden(_("Only buyers apply for licenses."))
    if actor.org_status != OrgStatus.active:
        raise Forbidden(
            _(
                "Your organization has not been admitted by the operator yet (status: %(org_status)s); it can apply for licenses once it is admitted.",
                org_status=actor.org_status,
            )
        )
    blacklist.ensure_not_blacklisted(session, actor, "apply_license")
    statement = _text(
        purpose_statement, "purpose_statement", _l("purpose statement"), MAX_STATEMENT
    )

    quote = session.get(Quote, quote_id)
    if quote is None or quote.buyer_org_id != actor.org_id:
        raise NotFound(_("No such quote."))
    upgrade_of = getattr(quote, "upgrade_of_license_id", None)
    if upgrade_of is not None:
        raise Conflict(
            _(
                "This quote prices an upgrade of license %(upgrade_of)s; it cannot open a new license.",
                upgrade_of=upgrade_of,
            ),
            {"quote_id": [_("An upgrade quote.")]},
        )
    used = session.scalar(sa.select(License.id).where(License.quote_id == quote.id))
    if used is not None:
        raise Conflict(
            _("This quote was already used for license %(used)s; ask for a new quote.", used=used)
        )
    if quote.expires_at <= now:
        raise Conflict(
            _(
                "The quote expired at %(expires_at)s; ask for a new quote.",
                expires_at=iso(quote.expires_at),
            ),
            {"quote_id": [_("The quote has expired.")]},
        )

    free = quote.total_fen == 0
    justification = None
    if free:
        justification = welfare.justification(free_use_justification, MAX_STATEMENT)
        if welfare.eligibility(session, actor_org(session, actor)) is None:
            raise Forbidden(
                welfare.not_eligible_message(),
                audit=(
                    "license.free_refused",
                    ("organization", actor.org_id),
                    {"quote_id": quote.id, "purpose": quote.purpose},
                ),
            )

    pairs = _items_from_quote(session, quote)
    conditional = any(d.open_grade == OpenGrade.conditional for d, _item in pairs)
    budgets = [d.dp_epsilon_budget for d, _item in pairs if d.dp_epsilon_budget is not None]
    budget = min(budgets) if budgets else None
    from market.governance.services import red_list_benefit  # 红黑榜: red-list quota bonus

    bonus = red_list_benefit(session, actor.org_id, now).quota_bonus(quote.query_quota)
    lic = License(
        buyer_org_id=actor.org_id,
        created_by_id=actor.user_id,
        quote_id=quote.id,
        status=(_S.PENDING_REVIEW if conditional or free else _S.AWAITING_PAYMENT).value,
        purpose=quote.purpose,
        purpose_statement=statement,
        free_use_justification=justification,
        duration_months=quote.duration_months,
        query_quota=quote.query_quota + bonus,
        quota_remaining=quote.query_quota + bonus,
        privacy_budget_total=budget,
        privacy_budget_remaining=budget,
        price_total_fen=quote.total_fen,
        currency=quote.currency or "CNY",
        created_at=now,
    )
    lic.items = [item for _dataset, item in pairs]
    try:
        with session.begin_nested():
            session.add(lic)
            session.flush()
    except IntegrityError:
        # Two applications with one quote at once: the unique quote_id decides.
        raise Conflict(_("This quote was already used; ask for a new quote.")) from None
    audit.record(
        session,
        "license.applied",
        actor,
        ("license", lic.id),
        {
            "quote_id": quote.id,
            "status": lic.status,
            "price": lic.price_total_fen,
            "purpose": lic.purpose,
            "datasets": [d.id for d, _item in pairs],
            "red_list_quota_bonus": bonus,
            "free": free,
        },
    )
    return lic


def actor_org(session: Session, actor: Actor) -> Organization:
    org = session.get(Organization, actor.org_id)
    if org is None:  # an actor always has its organization; a deleted one is not a buyer
        raise Forbidden(_("Only buyers apply for licenses."))
    return org


# ------------------------------------------------------------------------------- reviewing


def review_license(
    session: Session,
    actor: Actor,
    license_id: int,
    *,
    decision: str,
    comment: str | None = None,
    now: dt.datetime | None = None,
) -> License:
    """Approve or reject a license pending review (operator). An approved free license is
    active at once.

    Raises Forbidden, NotFound, ValidationFailed (unknown decision; a rejection without a
    comment), IllegalTransition (→ 409) if the license is not pending review.
    """
    if not perm.can_review_license(actor):
        raise Forbidden(_("Only the operator reviews license applications."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(
            _("Unknown decision."), {"decision": [_("Use 'approve' or 'reject'.")]}
        )
    note = (comment or "").strip()
    if decision == "reject":
        note = _text(comment, "comment", _l("reason for the rejection"))
    elif len(note) > MAX_REASON:
        raise ValidationFailed(_("The comment is too long."), {"comment": [_("Too long.")]})
    lic = lock_license(session, license_id)
    if lic is None:
        raise NotFound(_("No such license."))
    if decision == "approve":  # important data (GB/T 43697-2024): the regulator approves first
        from market.governance.services import require_regulator_approval

        require_regulator_approval(session, lic)
    if decision == "approve" and lic.scenario_id is not None:
        # Applied for under a scenario since withdrawn or ended: not granted (409 with the
        # scenario's rule code); licenses granted before run to their end.
        from market.scenarios.models import Scenario
        from market.scenarios.services import require_open_for_applications

        scenario = session.get(Scenario, lic.scenario_id)
        if scenario is not None:
            require_open_for_applications(scenario, now)
    event = LicenseEvent.APPROVE if decision == "approve" else LicenseEvent.REJECT
    if (
        event == LicenseEvent.APPROVE
        and lic.price_total_fen == 0
        and lic.status == _S.PENDING_REVIEW
        and welfare.eligibility(session, lic.buyer) is None
    ):
        # The whitelist may have changed since the application.
        raise Conflict(
            _(
                "%(buyer)s is no longer eligible for free licenses; reject the application "
                "with a reason.",
                buyer=lic.buyer.name,
            )
        )
    lic.status = transition(lic.status, event).value
    lic.review_comment = note or None
    lic.reviewed_by_id = actor.user_id
    lic.reviewed_at = now or utcnow()
    session.flush()
    audit.record(
        session,
        "license.approved" if decision == "approve" else "license.rejected",
        actor,
        ("license", lic.id),
        {"comment": note, "status": lic.status},
    )
    if lic.status == _S.AWAITING_PAYMENT and lic.price_total_fen == 0:
        activate(session, lic, actor, now=now)
    return lic


# ------------------------------------------------------------------------------- reading


def expire_if_due(session: Session, lic: License, now: dt.datetime | None = None) -> bool:
    """Expire ``lic`` if its term is over (active or suspended, ``ends_at`` ≤ now).

    Called whenever a license is read or used. Returns whether it expired now.
    """
    now = now or utcnow()
    if lic.status not in (_S.ACTIVE, _S.SUSPENDED) or lic.ends_at is None or lic.ends_at > now:
        return False
    locked = lock_license(session, lic.id)
    if locked is None or locked.status not in (_S.ACTIVE, _S.SUSPENDED):
        return False  # another transaction expired or revoked it meanwhile
    locked.status = transition(locked.status, LicenseEvent.EXPIRE).value
    session.flush()
    audit.record(
        session,
        "license.expired",
        EXPIRY_ACTOR,
        ("license", locked.id),
        {"ends_at": iso(locked.ends_at)},
    )
    return True


def expire_due(
    session: Session, now: dt.datetime | None = None, buyer_org_id: int | None = None
) -> int:
    """Expire every license whose term is over; returns how many expired."""
    now = now or utcnow()
    stmt = sa.select(License).where(
        License.status.in_([_S.ACTIVE.value, _S.SUSPENDED.value]), License.ends_at <= now
    )
    if buyer_org_id is not None:
        stmt = stmt.where(License.buyer_org_id == buyer_org_id)
    return sum(expire_if_due(session, lic, now) for lic in session.scalars(stmt).all())


def get_license(
    session: Session, actor: Actor, license_id: int, now: dt.datetime | None = None
) -> License:
    """One license, for its buyer, the operator or the regulator; expired on access.

    Raises NotFound for anyone else (they may not know it exists).
    """
    lic = _visible(session, actor, license_id)
    expire_if_due(session, lic, now)
    return lic


def list_licenses(
    session: Session, actor: Actor, status: str | None = None, now: dt.datetime | None = None
) -> sa.Select:
    """Licenses the actor may see, newest first: a buyer its own, the operator and regulator
    all. Expires those that are due first. Raises Forbidden for other roles."""
    if perm.can_list_all_licenses(actor):
        buyer = None
    elif actor.role == "buyer" and actor.is_user:
        buyer = actor.org_id
    else:
        raise Forbidden(_("Only buyers, the operator and the regulator list licenses."))
    expire_due(session, now, buyer_org_id=buyer)
    stmt = sa.select(License).order_by(License.created_at.desc(), License.id.desc())
    if buyer is not None:
        stmt = stmt.where(License.buyer_org_id == buyer)
    if status:
        stmt = stmt.where(License.status == status)
    return stmt


_NOT_USABLE = {
    _S.PENDING_REVIEW: _l("it is waiting for the operator's review"),
    _S.AWAITING_PAYMENT: _l("it has not been paid yet"),
    _S.EXPIRED: _l("its term is over; apply for a new license"),
    _S.REVOKED: _l("it was revoked"),
    _S.SUSPENDED: _l("the regulator suspended it"),
    _S.REJECTED: _l("the application was rejected"),
}


def active_license_for(
    session: Session, license_id: int, actor: Actor, now: dt.datetime | None = None
) -> License:
    """The caller's license, if it may be used now (sandbox queries, consented lookups).

    Expires it first if its term is over. Quota is not touched here.

    Raises NotFound (no such license, or another buyer's), Forbidden (the caller is not a
    buyer; its organization is blacklisted; the license is not active — the message says
    why).
    """
    lic = session.get(License, license_id)
    if lic is None or (actor.role == "buyer" and lic.buyer_org_id != actor.org_id):
        raise NotFound(_("No such license."))
    if actor.role != "buyer" or not actor.is_user:
        raise Forbidden(_("Only the buyer that holds a license can use it."))
    blacklist.ensure_not_blacklisted(session, actor, "use_license")
    expire_if_due(session, lic, now)
    if not grants_access(lic.status):
        why = _NOT_USABLE.get(LicenseStatus(lic.status), lic.status)
        raise Forbidden(
            _("License %(id)s cannot be used: %(why)s.", id=lic.id, why=why),
            {
                "license_id": [
                    _(
                        "The license is %(status)s.",
                        status=labels.name("license_status", lic.status),
                    )
                ]
            },
        )
    return lic


# ------------------------------------------------------------------ suspend, reinstate, revoke


def _change(
    session: Session,
    actor: Actor,
    lic: License,
    event: LicenseEvent,
    reason: str,
    type_: str,
    data: Mapping[str, Any] | None = None,
) -> License:
    previous = lic.status
    lic.status = transition(lic.status, event).value
    lic.status_reason = reason
    session.flush()
    audit.record(
        session,
        type_,
        actor,
        ("license", lic.id),
        {"reason": reason, "from": previous, **(data or {})},
    )
    return lic


def suspend_license(
    session: Session, actor: Actor, license_id: int, reason: str, now: dt.datetime | None = None
) -> License:
    """Suspend an active license (regulator): access stops, the term keeps running.

    Raises Forbidden, NotFound, ValidationFailed (no reason), IllegalTransition (→ 409).
    """
    if not perm.can_suspend_license(actor):
        raise Forbidden(_("Only the regulator suspends licenses."))
    text = _text(reason, "reason", _l("reason"))
    lic = lock_license(session, license_id)
    if lic is None:
        raise NotFound(_("No such license."))
    if expire_if_due(session, lic, now):
        raise Conflict(_("The license has just expired; there is nothing to suspend."))
    return _change(session, actor, lic, LicenseEvent.SUSPEND, text, "license.suspended")


def reinstate_license(
    session: Session, actor: Actor, license_id: int, reason: str, now: dt.datetime | None = None
) -> License:
    """Lift a suspension (regulator). Raises like :func:`suspend_license`."""
    if not perm.can_reinstate_license(actor):
        raise Forbidden(_("Only the regulator reinstates licenses."))
    text = _text(reason, "reason", _l("reason"))
    lic = lock_license(session, license_id)
    if lic is None:
        raise NotFound(_("No such license."))
    if expire_if_due(session, lic, now):
        raise Conflict(_("The license has expired meanwhile; it cannot be reinstated."))
    return _change(session, actor, lic, LicenseEvent.REINSTATE, text, "license.reinstated")


def revoke_license(
    session: Session,
    actor: Actor,
    license_id: int,
    reason: str,
    *,
    config: Mapping[str, Any],
    refund: bool = True,
    now: dt.datetime | None = None,
) -> License:
    """Revoke a license (operator or regulator); access stops at once, unconditionally.

    A paid license is refunded the unused share of its term and of its query quota, the
    smaller of the two (rounded up to the fen, in the buyer's favour), through the provider
    it was paid with: a Stripe refund, or a credit note for an invoice; ``refund=False``
    (revocation for the buyer's breach) refunds nothing. If Stripe fails the refund, the
    revocation still takes effect and the refund becomes a pending credit note that the
    operator retries (:func:`licenses.payment_refunds.retry_refund`). Pending payments are
    canceled (an unpaid invoice is voided).

    Raises Forbidden, NotFound, ValidationFailed (no reason), IllegalTransition (→ 409).
    """
    if not perm.can_revoke_license(actor):
        raise Forbidden(_("Only the operator or the regulator revokes licenses."))
    text = _text(reason, "reason", _l("reason"))
    now = now or utcnow()
    lic = lock_license(session, license_id)
    if lic is None:
        raise NotFound(_("No such license."))
    expire_if_due(session, lic, now)
    transition(lic.status, LicenseEvent.REVOKE)  # refuse before any refund is issued
    if refund and lic.status in (_S.ACTIVE, _S.SUSPENDED):
        # The provider first: audit records take the chain's lock, which must not be held
        # while waiting for Stripe.
        payment_refunds.refund_unused_term(session, actor, lic, text, config=config, now=now)
    _change(session, actor, lic, LicenseEvent.REVOKE, text, "license.revoked", {"refund": refund})
    payments.cancel_open_payments(session, actor, lic, reason="license revoked")
    return lic
