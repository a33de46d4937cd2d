"""Scenarios (场景机会清单) and data products (数据产品): the state changes and queries.

- The operator drafts a scenario (datasets + allowed purposes) and submits it; the regulator
  approves or rejects it (``draft → pending → approved | rejected``; a rejected scenario can
  be revised, which makes it a draft again). Every change is audited in the same transaction.
- The operator creates a data product (datasets, columns, allowed access, fixed terms) and
  publishes or withdraws it. Its one price is :func:`pricing.price_product` of its parts at
  the current parameters.
- A buyer applies for a published product under an approved scenario that covers the
  product's datasets and purpose: a signed quote of the product is made and the ordinary
  license application follows (review, invoice, payment, activation unchanged); the license
  records the scenario and the product.
- A product's access (sandbox queries, consented lookups or both) is enforced where a license
  is used (:func:`ensure_use_allowed`).

Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

import pricing
from licenses.models import LedgerJournal, LedgerLine, License
from market.accounts.actor import Actor
from market.audit import services as audit
from market.datasets.models import Dataset, VersionStatus
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.i18n import translate
from market.scenarios import permissions as perm
from market.scenarios.models import (
    DataProduct,
    DataProductItem,
    ProductAccess,
    ProductStatus,
    Scenario,
    ScenarioDataset,
    ScenarioStatus,
)

MAX_TITLE = 200
MAX_TEXT = 4000
MAX_CODE = 64
MAX_DATASETS = 50
#: The term a scenario gets when its draft names none (from drafting, three years).
DEFAULT_TERM_DAYS = 3 * 365
#: Rule codes (``errors.rule``) of an application refused because of the scenario's term.
RULE_SCENARIO_WITHDRAWN = "scenario_withdrawn"
RULE_SCENARIO_ENDED = "scenario_ended"
RULE_SCENARIO_NOT_STARTED = "scenario_not_started"


# ----------------------------------------------------------------------------- helpers


def _text(value: str | None, field: str, limit: int, *, required: bool = True) -> str | None:
    text = (value or "").strip()
    if not text:
        if not required:
            return None
        raise ValidationFailed(
            _("Please fill in %(field)s.", field=field), {field: [_("Required.")]}
        )
    if len(text) > limit:
        raise ValidationFailed(
            _("%(field)s is too long.", field=field),
            {field: [_("At most %(limit)s characters.", limit=limit)]},
        )
    return text


def _code(value: str | None) -> str:
    code = _text(value, "code", MAX_CODE) or ""
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in code):
        raise ValidationFailed(
            _("The code may hold only letters, digits, '-' and '_'."),
            {"code": [_("Only letters, digits, '-' and '_'.")]},
        )
    return code.lower()


def _purposes(values: Sequence[str] | None) -> list[str]:
    if not values:
        raise ValidationFailed(
            _("Allow at least one purpose."), {"purposes": [_("Choose at least one purpose.")]}
        )
    try:
        parsed = {pricing.parse_purpose(v) for v in values}
    except pricing.InvalidScope as exc:
        raise ValidationFailed(
            _("A purpose is not valid."), {"purposes": [translate(exc.message, exc.params)]}
        ) from None
    return [str(p) for p in pricing.PURPOSE_ORDER if p in parsed]


def _listed_datasets(session: Session, ids: Sequence[int], field: str) -> list[Dataset]:
    if not ids:
        raise ValidationFailed(
            _("Choose at least one dataset."), {field: [_("Choose at least one dataset.")]}
        )
    if len(ids) > MAX_DATASETS:
        raise ValidationFailed(
            _("At most %(max)s datasets.", max=MAX_DATASETS),
            {field: [_("At most %(max)s datasets.", max=MAX_DATASETS)]},
        )
    if len(set(ids)) != len(ids):
        raise ValidationFailed(
            _("A dataset is listed twice."), {field: [_("A dataset is listed twice.")]}
        )
    datasets = []
    for dataset_id in ids:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None or dataset.status != VersionStatus.listed:
            raise ValidationFailed(
                _(
                    "Dataset %(dataset_id)s does not exist or is not listed.",
                    dataset_id=dataset_id,
                ),
                {field: [_("Dataset %(dataset_id)s is not listed.", dataset_id=dataset_id)]},
            )
        datasets.append(dataset)
    return datasets


def _unique_code(session: Session, model: type, code: str, own_id: int | None = None) -> None:
    other = session.scalar(sa.select(model.id).where(model.code == code))
    if other is not None and other != own_id:
        raise Conflict(
            _("The code %(code)s is already taken.", code=code),
            {"code": [_("Already taken.")]},
        )


# ----------------------------------------------------------------------------- scenarios


def _visible_scenario(session: Session, actor: Actor, scenario_id: int) -> Scenario:
    scenario = session.get(Scenario, scenario_id)
    if scenario is None or (
        not perm.sees_drafts(actor)
        and scenario.status not in (ScenarioStatus.approved, ScenarioStatus.withdrawn)
    ):
        raise NotFound(_("No such scenario."))
    return scenario


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def effective_status(scenario: Scenario, now: dt.datetime | None = None) -> str:
    """The status at ``now``: an approved scenario outside its term is ``ended`` (past its
    end) or ``not_started`` (before its start); otherwise the stored status."""
    if scenario.status != ScenarioStatus.approved:
        return scenario.status
    now = now or utcnow()
    ends, starts = _aware(scenario.ends_at), _aware(scenario.starts_at)
    if ends is not None and ends <= now:
        return "ended"
    if starts is not None and starts > now:
        return "not_started"
    return scenario.status


def require_open_for_applications(scenario: Scenario, now: dt.datetime | None = None) -> None:
    """Raise Conflict (``errors.rule`` ``scenario_withdrawn``, ``scenario_ended`` or
    ``scenario_not_started``) unless new licenses may be applied for under ``scenario`` now.
    Licenses granted before are not affected: they run to their own end."""
    state = effective_status(scenario, now)
    if state == ScenarioStatus.withdrawn:
        raise Conflict(
            _("Scenario %(code)s was withdrawn: no new license is granted under it.",
              code=scenario.code),
            {"rule": RULE_SCENARIO_WITHDRAWN,
             "scenario_id": [_("This scenario was withdrawn.")]},
        )
    if state == "ended":
        raise Conflict(
            _("The term of scenario %(code)s has ended: no new license is granted under it.",
              code=scenario.code),
            {"rule": RULE_SCENARIO_ENDED, "scenario_id": [_("This scenario's term has ended.")]},
        )
    if state == "not_started":
        raise Conflict(
            _("The term of scenario %(code)s has not started yet.", code=scenario.code),
            {"rule": RULE_SCENARIO_NOT_STARTED,
             "scenario_id": [_("This scenario's term has not started.")]},
        )


def _term(
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
    now: dt.datetime,
    *,
    current: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
) -> tuple[dt.datetime, dt.datetime]:
    """The checked term; missing ends take the current term's, else the default (from
    ``now``, :data:`DEFAULT_TERM_DAYS`). Raises ValidationFailed naming the field."""
    starts = _aware(starts_at) or _aware(current[0]) or now
    ends = _aware(ends_at) or _aware(current[1]) or starts + dt.timedelta(days=DEFAULT_TERM_DAYS)
    if ends <= starts:
        raise ValidationFailed(
            _("The term must end after it starts."),
            {"ends_at": [_("The term must end after it starts.")]},
        )
    if ends <= now:
        raise ValidationFailed(
            _("The term must end in the future."),
            {"ends_at": [_("The term must end in the future.")]},
        )
    return starts, ends


def authorize(
    session: Session, actor: Actor, action: str, scenario_id: int | None = None
) -> None:
    """The caller's checks of an API action, made before its arguments are read, so that a
    caller who may not call learns nothing about the fields (authorization first). The
    services repeat them. Raises Forbidden or NotFound exactly as the action would."""
    if action == "revise":
        if not perm.can_manage_scenarios(actor):
            raise Forbidden(_("Only the operator publishes scenarios."))
        _visible_scenario(session, actor, scenario_id or 0)
    elif action == "decide":
        if not perm.can_decide_scenario(actor):
            raise Forbidden(_("Only the regulator approves scenarios."))
        _visible_scenario(session, actor, scenario_id or 0)
    elif action == "withdraw":
        if not perm.can_withdraw_scenario(actor):
            raise Forbidden(_("Only the operator or the regulator withdraws a scenario."))
        _visible_scenario(session, actor, scenario_id or 0)
    elif action == "compose":
        if not perm.can_manage_products(actor):
            raise Forbidden(_("Only the operator composes data products."))
    elif action == "revenue":
        if not perm.can_read_revenue(actor):
            raise Forbidden(_("Only departments, the operator and the regulator read revenue."))
    else:  # pragma: no cover - a programming error
        raise ValueError(action)


def get_scenario(session: Session, actor: Actor, scenario_id: int) -> Scenario:
    """Raises NotFound (no such scenario, or one the caller may not see: only the operator
    and the regulator see scenarios that are not approved)."""
    return _visible_scenario(session, actor, scenario_id)


def list_scenarios(actor: Actor, status: str | None = None) -> sa.Select:
    stmt = sa.select(Scenario).order_by(Scenario.id)
    if not perm.sees_drafts(actor):
        stmt = stmt.where(Scenario.status == ScenarioStatus.approved.value)
    elif status:
        stmt = stmt.where(Scenario.status == status)
    return stmt


def _iso(value: dt.datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _scenario_data(scenario: Scenario, **extra: Any) -> dict[str, Any]:
    return {
        "code": scenario.code,
        "status": scenario.status,
        "datasets": scenario.dataset_ids,
        "purposes": list(scenario.purposes),
        "starts_at": _iso(scenario.starts_at),
        "ends_at": _iso(scenario.ends_at),
        **extra,
    }


def create_scenario(
    session: Session,
    actor: Actor,
    *,
    code: str,
    title: str,
    title_en: str | None,
    description: str,
    dataset_ids: Sequence[int],
    purposes: Sequence[str],
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Scenario:
    """Draft a scenario (operator) with its term (default: from now, three years); the
    regulator approves the term with the rest.

    Raises Forbidden (not the operator), ValidationFailed (missing text, no or unlisted
    datasets, bad purposes), Conflict (the code is taken).
    """
    if not perm.can_manage_scenarios(actor):
        raise Forbidden(_("Only the operator publishes scenarios."))
    code_ = _code(code)
    values = dict(
        title=_text(title, "title", MAX_TITLE),
        title_en=_text(title_en, "title_en", MAX_TITLE, required=False),
        description=_text(description, "description", MAX_TEXT),
        purposes=_purposes(purposes),
    )
    datasets = _listed_datasets(session, list(dataset_ids), "dataset_ids")
    starts, ends = _term(starts_at, ends_at, now or utcnow())
    _unique_code(session, Scenario, code_)
    scenario = Scenario(
        code=code_, status=ScenarioStatus.draft.value, created_by_id=actor.user_id,
        starts_at=starts, ends_at=ends, **values
    )
    scenario.datasets = [ScenarioDataset(dataset_id=d.id) for d in datasets]
    session.add(scenario)
    session.flush()
    audit.record(
        session, "scenario.created", actor, ("scenario", scenario.id), _scenario_data(scenario)
    )
    return scenario


def revise_scenario(
    session: Session,
    actor: Actor,
    scenario_id: int,
    *,
    title: str,
    title_en: str | None,
    description: str,
    dataset_ids: Sequence[int],
    purposes: Sequence[str],
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Scenario:
    """Change a draft or rejected scenario (operator); a rejected one becomes a draft again.
    A term left out keeps the current one.

    Raises Forbidden (not the operator), NotFound, Conflict (pending or approved: an approved
    scenario is what buyers applied under, so it is never changed), ValidationFailed.
    """
    authorize(session, actor, "revise", scenario_id)
    scenario = _visible_scenario(session, actor, scenario_id)
    if scenario.status not in (ScenarioStatus.draft, ScenarioStatus.rejected):
        raise Conflict(
            _(
                "Only a draft or rejected scenario can be changed (this one is %(status)s).",
                status=scenario.status,
            )
        )
    scenario.title = _text(title, "title", MAX_TITLE)  # type: ignore[assignment]
    scenario.title_en = _text(title_en, "title_en", MAX_TITLE, required=False)
    scenario.description = _text(description, "description", MAX_TEXT)  # type: ignore[assignment]
    scenario.purposes = _purposes(purposes)
    datasets = _listed_datasets(session, list(dataset_ids), "dataset_ids")
    scenario.starts_at, scenario.ends_at = _term(
        starts_at, ends_at, now or utcnow(), current=(scenario.starts_at, scenario.ends_at)
    )
    wanted = {d.id for d in datasets}
    scenario.datasets = [sd for sd in scenario.datasets if sd.dataset_id in wanted]
    have = {sd.dataset_id for sd in scenario.datasets}
    scenario.datasets.extend(ScenarioDataset(dataset_id=i) for i in sorted(wanted - have))
    previous = scenario.status
    scenario.status = ScenarioStatus.draft.value
    session.flush()
    audit.record(
        session,
        "scenario.revised",
        actor,
        ("scenario", scenario.id),
        _scenario_data(scenario, previous_status=previous),
    )
    return scenario


def submit_scenario(
    session: Session, actor: Actor, scenario_id: int, now: dt.datetime | None = None
) -> Scenario:
    """Send a draft to the regulator (operator). Raises Forbidden, NotFound, Conflict (not a
    draft; a dataset is no longer listed)."""
    if not perm.can_manage_scenarios(actor):
        raise Forbidden(_("Only the operator submits scenarios."))
    scenario = _visible_scenario(session, actor, scenario_id)
    if scenario.status != ScenarioStatus.draft:
        raise Conflict(
            _(
                "Only a draft scenario can be submitted (this one is %(status)s).",
                status=scenario.status,
            )
        )
    if scenario.ends_at is not None and _aware(scenario.ends_at) <= (now or utcnow()):
        raise Conflict(
            _("The scenario's term is over; revise it."),
            {"ends_at": [_("The term must end in the future.")]},
        )
    unlisted = [
        sd.dataset_id for sd in scenario.datasets if sd.dataset.status != VersionStatus.listed
    ]
    if unlisted:
        raise Conflict(
            _(
                "Dataset %(dataset_id)s is no longer listed; revise the scenario.",
                dataset_id=unlisted[0],
            ),
            {"dataset_ids": [_("Dataset %(dataset_id)s is not listed.", dataset_id=unlisted[0])]},
        )
    scenario.status = ScenarioStatus.pending.value
    scenario.submitted_at = now or utcnow()
    session.flush()
    audit.record(
        session, "scenario.submitted", actor, ("scenario", scenario.id), _scenario_data(scenario)
    )
    return scenario


def decide_scenario(
    session: Session,
    actor: Actor,
    scenario_id: int,
    decision: str,
    comment: str | None,
    now: dt.datetime | None = None,
) -> Scenario:
    """Approve or reject a pending scenario (regulator); a rejection needs a comment.

    Raises Forbidden (not the regulator), NotFound, Conflict (not pending), ValidationFailed
    (unknown decision; a rejection without a comment).
    """
    if not perm.can_decide_scenario(actor):
        raise Forbidden(_("Only the regulator approves scenarios."))
    if decision not in ("approve", "reject"):
        raise ValidationFailed(
            _("The decision must be approve or reject."), {"decision": [_("approve or reject")]}
        )
    note = _text(comment, "comment", MAX_TEXT, required=decision == "reject")
    scenario = session.get(Scenario, scenario_id, with_for_update=True)
    if scenario is None:
        raise NotFound(_("No such scenario."))
    if scenario.status != ScenarioStatus.pending:
        raise Conflict(
            _(
                "Only a pending scenario can be decided (this one is %(status)s).",
                status=scenario.status,
            )
        )
    scenario.status = (
        ScenarioStatus.approved if decision == "approve" else ScenarioStatus.rejected
    ).value
    scenario.decided_by_id = actor.user_id
    scenario.decided_at = now or utcnow()
    scenario.decision_comment = note
    session.flush()
    audit.record(
        session,
        f"scenario.{scenario.status}",
        actor,
        ("scenario", scenario.id),
        _scenario_data(scenario, comment=note),
    )
    return scenario


def withdraw_scenario(
    session: Session,
    actor: Actor,
    scenario_id: int,
    reason: str | None,
    now: dt.datetime | None = None,
) -> Scenario:
    """Withdraw an approved scenario, with the reason: no new license is granted under it
    (``errors.rule = scenario_withdrawn``); licenses granted before run to their own end.
    Final. Audited ``scenario.withdrawn`` with who withdrew it and the licenses left running.

    Who: the operator, who publishes scenarios, and the regulator, who approved it (taking
    back an approval needs no second party: it only narrows what may be done).

    Raises Forbidden (anyone else), NotFound, Conflict (not approved), ValidationFailed (no
    reason).
    """
    if not perm.can_withdraw_scenario(actor):
        raise Forbidden(_("Only the operator or the regulator withdraws a scenario."))
    note = _text(reason, "reason", MAX_TEXT)
    scenario = session.get(Scenario, scenario_id, with_for_update=True)
    if scenario is None:
        raise NotFound(_("No such scenario."))
    if scenario.status != ScenarioStatus.approved:
        raise Conflict(
            _(
                "Only an approved scenario can be withdrawn (this one is %(status)s).",
                status=scenario.status,
            )
        )
    now = now or utcnow()
    scenario.status = ScenarioStatus.withdrawn.value
    scenario.withdrawn_at = now
    scenario.withdrawn_by_id = actor.user_id
    scenario.withdrawal_reason = note
    session.flush()
    running = session.scalar(
        sa.select(sa.func.count(License.id)).where(
            License.scenario_id == scenario.id, License.status == "active"
        )
    ) or 0
    audit.record(
        session,
        "scenario.withdrawn",
        actor,
        ("scenario", scenario.id),
        _scenario_data(scenario, reason=note, by=actor.role, active_licenses=running),
    )
    return scenario


# ----------------------------------------------------------------------------- products


@dataclass(frozen=True)
class ItemSpec:
    dataset_id: int
    columns: tuple[str, ...] | None = None


def _visible_product(session: Session, actor: Actor, product_id: int) -> DataProduct:
    product = session.get(DataProduct, product_id)
    if product is None or (
        not perm.sees_drafts(actor) and product.status != ProductStatus.published
    ):
        raise NotFound(_("No such data product."))
    return product


def get_product(session: Session, actor: Actor, product_id: int) -> DataProduct:
    """Raises NotFound (no such product, or one the caller may not see: only the operator and
    the regulator see products that are not published)."""
    return _visible_product(session, actor, product_id)


def list_products(actor: Actor, status: str | None = None) -> sa.Select:
    stmt = sa.select(DataProduct).order_by(DataProduct.id)
    if not perm.sees_drafts(actor):
        stmt = stmt.where(DataProduct.status == ProductStatus.published.value)
    elif status:
        stmt = stmt.where(DataProduct.status == status)
    return stmt


def _terms(product: DataProduct) -> pricing.ProductTerms:
    return pricing.ProductTerms(product.purpose, product.duration_months, product.query_quota)


def product_quote(
    session: Session, product: DataProduct, now: dt.datetime | None = None
) -> pricing.Quote:
    """The product's price at the current parameters (``.total`` is its one price).

    Raises ValidationFailed when a part cannot be priced (not listed, no quality score, below
    the quality floor, unknown columns).
    """
    from market.quotes import revenue
    from market.quotes.parameters import current_parameter_set, parameters_of
    from market.quotes.services import priced_dataset

    params = parameters_of(current_parameter_set(session))
    parts = []
    for i, item in enumerate(product.items):
        pd = priced_dataset(session, item.dataset_id, f"items[{i}]")
        columns = frozenset(item.columns) if item.columns is not None else None
        parts.append(pricing.ProductPart(pd.info, columns))
    try:
        return pricing.price_product(
            parts,
            _terms(product),
            params,
            over_cap_categories=revenue.over_cap_categories(session, now),
        )
    except (pricing.InvalidScope, pricing.NotPriceable) as exc:
        raise ValidationFailed(
            _(
                "The product cannot be priced: %(field)s %(message)s.",
                field=exc.field,
                message=translate(exc.message, exc.params),
            ),
            {exc.field: [translate(exc.message, exc.params)]},
        ) from None


def product_price_or_none(session: Session, product: DataProduct) -> int | None:
    """The one price, or ``None`` when a part cannot be priced right now (shown as such)."""
    try:
        return product_quote(session, product).total
    except ValidationFailed:
        return None


def create_product(
    session: Session,
    actor: Actor,
    *,
    code: str,
    title: str,
    title_en: str | None,
    description: str,
    access: str,
    purpose: str,
    duration_months: int,
    query_quota: int,
    items: Sequence[ItemSpec],
) -> DataProduct:
    """Create a draft data product (operator); it must be priceable as composed.

    Raises Forbidden (not the operator), ValidationFailed (text, access, terms, no or unlisted
    datasets, unknown columns, a part that cannot be priced), Conflict (the code is taken).
    """
    authorize(session, actor, "compose")
    code_ = _code(code)
    try:
        access_ = ProductAccess(access)
    except ValueError:
        raise ValidationFailed(
            _("The access must be sandbox, lookups or both."),
            {"access": [_("sandbox, lookups or both")]},
        ) from None
    purpose_ = _purposes([purpose])[0]
    datasets = _listed_datasets(session, [i.dataset_id for i in items], "items")
    product = DataProduct(
        code=code_,
        title=_text(title, "title", MAX_TITLE),
        title_en=_text(title_en, "title_en", MAX_TITLE, required=False),
        description=_text(description, "description", MAX_TEXT),
        access=access_.value,
        purpose=purpose_,
        duration_months=duration_months,
        query_quota=query_quota,
        status=ProductStatus.draft.value,
        created_by_id=actor.user_id,
    )
    product.items = [
        DataProductItem(
            dataset_id=d.id, columns=sorted(set(i.columns)) if i.columns is not None else None
        )
        for d, i in zip(datasets, items, strict=True)
    ]
    try:
        _terms(product).scope(None)
    except pricing.InvalidScope as exc:
        raise ValidationFailed(
            _(
                "The terms are not valid: %(field)s %(message)s.",
                field=exc.field,
                message=translate(exc.message, exc.params),
            ),
            {exc.field: [translate(exc.message, exc.params)]},
        ) from None
    price = product_quote(session, product).total
    _unique_code(session, DataProduct, code_)
    session.add(product)
    session.flush()
    audit.record(
        session,
        "product.created",
        actor,
        ("data_product", product.id),
        {
            "code": product.code,
            "access": product.access,
            "purpose": product.purpose,
            "duration_months": product.duration_months,
            "query_quota": product.query_quota,
            "items": [{"dataset_id": i.dataset_id, "columns": i.columns} for i in product.items],
            "price": price,
        },
    )
    return product


def set_product_status(session: Session, actor: Actor, product_id: int, action: str) -> DataProduct:
    """``publish`` a draft (it must still be priceable) or ``withdraw`` a published product
    (operator). Licenses already granted keep running. Raises Forbidden, NotFound, Conflict,
    ValidationFailed."""
    if not perm.can_manage_products(actor):
        raise Forbidden(_("Only the operator publishes data products."))
    product = session.get(DataProduct, product_id, with_for_update=True)
    if product is None:
        raise NotFound(_("No such data product."))
    moves = {
        "publish": (ProductStatus.draft, ProductStatus.published),
        "withdraw": (ProductStatus.published, ProductStatus.withdrawn),
    }
    if action not in moves:
        raise ValidationFailed(_("Unknown action."), {"action": [_("publish or withdraw")]})
    before, after = moves[action]
    if product.status != before:
        raise Conflict(
            _(
                "The product is %(status)s; it cannot be %(action)s.",
                status=product.status,
                action=action,
            )
        )
    data: dict[str, Any] = {"code": product.code, "from": before.value, "to": after.value}
    if action == "publish":
        data["price"] = product_quote(session, product).total
        product.published_at = utcnow()
    product.status = after.value
    session.flush()
    audit.record(session, f"product.{after.value}", actor, ("data_product", product.id), data)
    return product


def scenarios_for_product(session: Session, product: DataProduct) -> list[Scenario]:
    """The approved scenarios a buyer may apply for ``product`` under: each covers the
    product's datasets and allows its purpose."""
    wanted = {i.dataset_id for i in product.items}
    found = session.scalars(
        sa.select(Scenario)
        .where(Scenario.status == ScenarioStatus.approved.value)
        .order_by(Scenario.id)
    ).all()
    return [
        s
        for s in found
        if wanted <= set(s.dataset_ids)
        and product.purpose in s.purposes
        and effective_status(s) == ScenarioStatus.approved
    ]


def apply_for_product(
    session: Session,
    actor: Actor,
    *,
    product_id: int,
    scenario_id: int,
    purpose_statement: str,
    now: dt.datetime | None = None,
) -> License:
    """Apply for a data product under an approved scenario (buyer).

    Makes a signed quote of the product (its one price) and applies for a license with it by
    the ordinary flow, so review, invoice, payment and activation are unchanged; the license
    records the scenario and the product, and grants exactly the product's columns.

    Raises Forbidden (not a buyer, and whatever :func:`licenses.services.apply_for_license`
    raises), NotFound (no such published product or approved scenario), Conflict (the
    scenario does not cover the product's datasets or purpose), ValidationFailed.
    """
    from licenses import services as licenses
    from market.quotes import services as quotes

    if not perm.can_apply_for_product(actor):
        raise Forbidden(_("Only buyers apply for data products."))
    product = session.get(DataProduct, product_id)
    if product is None or product.status != ProductStatus.published:
        raise NotFound(_("No such data product."))
    scenario = session.get(Scenario, scenario_id)
    if scenario is None or scenario.status not in (
        ScenarioStatus.approved, ScenarioStatus.withdrawn
    ):
        raise NotFound(_("No such scenario."))
    require_open_for_applications(scenario, now)
    outside = sorted({i.dataset_id for i in product.items} - set(scenario.dataset_ids))
    if outside:
        raise Conflict(
            _(
                "The scenario does not cover dataset %(dataset_id)s of this product.",
                dataset_id=outside[0],
            ),
            {"scenario_id": [_("This scenario does not cover the product's datasets.")]},
        )
    if product.purpose not in scenario.purposes:
        raise Conflict(
            _("The scenario does not allow the product's purpose."),
            {"scenario_id": [_("This scenario does not allow the product's purpose.")]},
        )
    request = quotes.QuoteRequest(
        items=tuple(
            quotes.ItemRequest(i.dataset_id, tuple(i.columns) if i.columns is not None else None)
            for i in product.items
        ),
        duration_months=product.duration_months,
        purpose=product.purpose,
        query_quota=product.query_quota,
    )
    quote = quotes.create_quote(session, actor, request, now=now)
    lic = licenses.apply_for_license(
        session, actor, quote_id=quote.id, purpose_statement=purpose_statement, now=now
    )
    lic.scenario_id = scenario.id
    lic.product_id = product.id
    session.flush()
    audit.record(
        session,
        "product.applied",
        actor,
        ("license", lic.id),
        {
            "product_id": product.id,
            "scenario_id": scenario.id,
            "quote_id": quote.id,
            "price": lic.price_total_fen,
            "status": lic.status,
        },
    )
    return lic


# ----------------------------------------------------------------------------- use and revenue


def ensure_use_allowed(session: Session, lic: License, use: str) -> None:
    """Refuse a sandbox query (``use="sandbox"``) or a consented lookup (``"lookups"``) under
    a product license whose product does not grant that access. Raises Forbidden."""
    if lic.product_id is None:
        return
    product = session.get(DataProduct, lic.product_id)
    if product is not None and not ProductAccess(product.access).allows(use):
        what = _("sandbox queries") if use == "sandbox" else _("consented lookups")
        raise Forbidden(
            _(
                "License %(id)s is for data product %(code)s, which does not include %(what)s.",
                id=lic.id,
                code=product.code,
                what=what,
            ),
            {"license_id": [_("The product does not include %(what)s.", what=what)]},
            audit=(
                "license.use_refused",
                ("license", lic.id),
                {"use": use, "product_id": product.id, "rule": "product_access"},
            ),
        )


@dataclass
class RevenueRow:
    scenario_id: int | None
    scenario_code: str | None
    product_id: int | None
    product_code: str | None
    licenses: int
    revenue: int


def revenue_by_scenario(
    session: Session, actor: Actor, start: dt.datetime, end: dt.datetime
) -> list[RevenueRow]:
    """Departments' revenue (settlements less refunds, in fen) in ``[start, end)``, grouped by
    the licenses' scenario and product (``None``: licenses bought without a product). A
    department sees only its own share; the operator and the regulator see every department.

    Raises Forbidden for anyone else.
    """
    authorize(session, actor, "revenue")
    amount = sa.func.sum(LedgerLine.credit_fen - LedgerLine.debit_fen)
    stmt = (
        sa.select(
            License.scenario_id, License.product_id, sa.func.count(sa.distinct(License.id)), amount
        )
        .select_from(LedgerLine)
        .join(LedgerJournal, LedgerJournal.id == LedgerLine.journal_id)
        .join(License, License.id == LedgerJournal.license_id)
        .where(
            LedgerLine.department_id.is_not(None),
            LedgerJournal.kind.in_(("payment_settled", "refund_issued")),
            LedgerJournal.posted_at >= start,
            LedgerJournal.posted_at < end,
        )
        .group_by(License.scenario_id, License.product_id)
    )
    if actor.role == "department":
        stmt = stmt.where(LedgerLine.department_id == actor.org_id)
    rows = session.execute(stmt).all()
    scenarios = {s.id: s.code for s in session.scalars(sa.select(Scenario))}
    products = {p.id: p.code for p in session.scalars(sa.select(DataProduct))}
    result = [
        RevenueRow(
            s,
            scenarios.get(s) if s else None,
            p,
            products.get(p) if p else None,
            int(n),
            int(total or 0),
        )
        for s, p, n, total in rows
    ]
    return sorted(
        result, key=lambda r: (r.scenario_id is None, r.scenario_id or 0, r.product_id or 0)
    )
