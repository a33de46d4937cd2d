"""Pricing operations: parameter versions, signed quotes and upgrade quotes.

The valuation itself is the pure :mod:`pricing` package; this module feeds it from the
database (the current parameter version, each dataset's listed version) and stores what it
returns as a signed, expiring quote. Services flush and never commit; the request boundary
(or the CLI command) commits. Parameter versions live in :mod:`market.quotes.parameters`,
revenue caps in :mod:`market.quotes.revenue`.

A quote is honoured at its price until it expires: the price, the factors and the parameter
version are frozen in the signed document when the quote is issued, and nothing later (a new
parameter version, a new dataset version) changes a stored quote.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

import pricing
from licenses import permissions as license_perm
from licenses.models import License
from market.accounts.actor import Actor
from market.audit import services as audit
from market.crypto import sign, verify
from market.datasets.models import ColumnRole, Dataset, DatasetVersion, Treatment, VersionStatus
from market.db import iso, utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.i18n import translate
from market.keys import public_keys, signing_key
from market.quotes import permissions as perm
from market.quotes import revenue
from market.quotes.models import Quote
from market.quotes.parameters import current_parameter_set, parameter_set, parameters_of

#: Quotes stay valid this many days unless ``MARKET_QUOTE_VALID_DAYS`` says otherwise.
DEFAULT_VALID_DAYS = 7
#: Requests per user for the quote endpoints unless ``MARKET_QUOTE_RATE_LIMIT`` says otherwise.
DEFAULT_RATE_LIMIT = "60 per minute"
#: The license states an upgrade quote can be asked for.
UPGRADABLE_STATUS = "active"


# -- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemRequest:
    """One dataset of a quote request; ``columns=None`` means every column."""

    dataset_id: int
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class QuoteRequest:
    items: tuple[ItemRequest, ...]
    duration_months: int
    purpose: str
    query_quota: int


#: Marks an upgrade field the buyer did not send (keep the license's value).
KEEP: Any = object()


@dataclass(frozen=True)
class UpgradeRequest:
    """What to widen. ``columns`` is a list (a one-dataset license), a mapping of dataset id
    to a list or ``None`` (all columns), ``None`` (all columns everywhere) or :data:`KEEP`."""

    duration_months: int | None = None
    query_quota: int | None = None
    columns: Any = field(default=KEEP)


# -- datasets as the model sees them -------------------------------------------------------


@dataclass(frozen=True)
class PricedDataset:
    """A listed dataset, the version its price is based on, and the model's view of it."""

    dataset: Dataset
    version: DatasetVersion
    info: pricing.DatasetInfo

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.version.columns]


def _listed_version(dataset: Dataset) -> DatasetVersion | None:
    current = dataset.current_version
    if current is not None and current.status == VersionStatus.listed:
        return current
    listed = [v for v in dataset.versions if v.status == VersionStatus.listed]
    return listed[-1] if listed else None


def priced_dataset(session: Session, dataset_id: int, where: str) -> PricedDataset:
    """Load a listed dataset for pricing; ``where`` prefixes error fields (``items[0]``).

    Raises ValidationFailed naming ``{where}.dataset_id`` (unknown or not listed) or the
    field that makes the dataset unpriceable.
    """
    from market.agreements.services import is_lapsed

    dataset = session.get(Dataset, dataset_id)
    version = _listed_version(dataset) if dataset is not None else None
    if (
        dataset is None
        or dataset.status != VersionStatus.listed
        or version is None
        or is_lapsed(session, dataset)  # its agreement ended: delisted already
    ):
        raise ValidationFailed(
            _(
                "Dataset %(dataset_id)s cannot be quoted: it does not exist or is not listed.",
                dataset_id=dataset_id,
            ),
            {
                f"{where}.dataset_id": [
                    _(
                        "dataset %(dataset_id)s does not exist or is not listed",
                        dataset_id=dataset_id,
                    )
                ]
            },
        )
    # Suppressed columns carry no data, so they are neither priced nor licensable.
    columns = [c for c in version.columns if c.treatment != Treatment.suppressed]
    entity_key = next((c.name for c in columns if c.role == ColumnRole.entity_key), None)
    if entity_key is None and any(c.name == dataset.entity_key for c in columns):
        entity_key = dataset.entity_key
    if version.quality_score is None:
        raise ValidationFailed(
            _(
                "Dataset %(dataset_id)s has no quality score yet and cannot be priced.",
                dataset_id=dataset_id,
            ),
            {
                f"{where}.dataset_id": [
                    _("dataset %(dataset_id)s has no quality score yet", dataset_id=dataset_id)
                ]
            },
        )
    try:
        info = pricing.DatasetInfo(
            dataset_id=dataset.id,
            category=dataset.category,
            quality_score=version.quality_score,
            costs=pricing.Costs(
                collection=dataset.cost_collection_fen,
                processing=dataset.cost_processing_fen,
                storage_monthly=dataset.cost_storage_monthly_fen,
            ),
            columns={c.name: c.weight for c in columns},
            entity_key=entity_key or "",
        )
    except pricing.NotPriceable as exc:
        raise ValidationFailed(
            _(
                "Dataset %(dataset_id)s cannot be priced: %(field)s %(message)s.",
                dataset_id=dataset_id,
                field=exc.field,
                message=translate(exc.message, exc.params),
            ),
            {f"{where}.{exc.field}": [translate(exc.message, exc.params)]},
        ) from None
    return PricedDataset(dataset, version, info)


def _check_priceable(pd: PricedDataset, params: pricing.PricingParameters, where: str) -> None:
    try:
        pricing.quality_coefficient(pd.info.quality_score, params)  # type: ignore[arg-type]
    except pricing.NotPriceable as exc:
        raise ValidationFailed(
            _(
                "Dataset %(id)s cannot be priced: %(field)s %(message)s.",
                id=pd.dataset.id,
                field=exc.field,
                message=translate(exc.message, exc.params),
            ),
            {f"{where}.dataset_id": [translate(exc.message, exc.params)]},
        ) from None


def _columns(pd: PricedDataset, columns: Sequence[str] | None, where: str) -> frozenset[str] | None:
    if columns is None:
        return None
    if not columns:
        raise ValidationFailed(
            _("Name at least one column, or send null for all columns."),
            {where: [_("name at least one column, or send null for all columns")]},
        )
    unknown = sorted(set(columns) - set(pd.info.columns))
    if unknown:
        raise ValidationFailed(
            _(
                "Dataset %(id)s has no column(s) %(value)s.",
                id=pd.dataset.id,
                value=", ".join(unknown),
            ),
            {
                where: [
                    _(
                        "unknown column(s) for dataset %(id)s: %(value)s",
                        id=pd.dataset.id,
                        value=", ".join(unknown),
                    )
                ]
            },
        )
    return frozenset(columns)


def _scope(
    columns: frozenset[str] | None, duration: int, purpose: str, quota: int, where: str = ""
) -> pricing.Scope:
    try:
        return pricing.Scope(
            columns=columns, duration_months=duration, purpose=purpose, query_quota=quota
        )
    except pricing.InvalidScope as exc:
        name = f"{where}.{exc.field}" if where and exc.field == "columns" else exc.field
        raise ValidationFailed(
            _(
                "The scope is not valid: %(field)s %(message)s.",
                field=exc.field,
                message=translate(exc.message, exc.params),
            ),
            {name: [translate(exc.message, exc.params)]},
        ) from None


# -- quotes ----------------------------------------------------------------------------------


def valid_days() -> int:
    return int(current_app.config.get("MARKET_QUOTE_VALID_DAYS", DEFAULT_VALID_DAYS))


def ensure_can_request_quote(actor: Actor) -> None:
    """Raise Forbidden unless ``actor`` may ask for quotes (a buyer)."""
    if not perm.can_request_quote(actor):
        raise Forbidden(_("Only buyers ask for quotes."))


def create_quote(
    session: Session, actor: Actor, request: QuoteRequest, *, now: dt.datetime | None = None
) -> Quote:
    """Price ``request`` with the current parameters and store it as a signed quote.

    Raises Forbidden (not a buyer) and ValidationFailed naming the item and field: an unknown
    or unlisted dataset, a dataset twice, unknown columns, a bad scope, an unpriceable dataset.
    """
    priced, pairs = _price(session, actor, request, now)
    return _store(
        session,
        actor,
        priced,
        {pd.dataset.id: pd for pd, _ in pairs},
        purpose=str(pricing.parse_purpose(request.purpose)),
        duration_months=request.duration_months,
        query_quota=request.query_quota,
        total=priced.total,
        now=now,
    )


def estimate_quote(
    session: Session, actor: Actor, request: QuoteRequest, *, now: dt.datetime | None = None
) -> pricing.Quote:
    """Price ``request`` exactly as ``create_quote`` would, storing and signing nothing (the
    dataset page's live calculator). Raises what ``create_quote`` raises."""
    priced, _pairs = _price(session, actor, request, now)
    return priced


def _price(
    session: Session, actor: Actor, request: QuoteRequest, now: dt.datetime | None
) -> tuple[pricing.Quote, list[tuple[PricedDataset, pricing.Scope]]]:
    ensure_can_request_quote(actor)
    if not request.items:
        raise ValidationFailed(
            _("Add at least one dataset."), {"items": [_("add at least one dataset")]}
        )
    _scope(None, request.duration_months, request.purpose, request.query_quota)
    row = current_parameter_set(session)
    params = parameters_of(row)
    seen: set[int] = set()
    pairs: list[tuple[PricedDataset, pricing.Scope]] = []
    for i, item in enumerate(request.items):
        where = f"items[{i}]"
        if item.dataset_id in seen:
            raise ValidationFailed(
                _(
                    "Dataset %(dataset_id)s is listed twice; put all its columns in one item.",
                    dataset_id=item.dataset_id,
                ),
                {f"{where}.dataset_id": [_("this dataset is already in an earlier item")]},
            )
        seen.add(item.dataset_id)
        pd = priced_dataset(session, item.dataset_id, where)
        columns = _columns(pd, item.columns, f"{where}.columns")
        scope = _scope(
            columns, request.duration_months, request.purpose, request.query_quota, where
        )
        _check_priceable(pd, params, where)
        pairs.append((pd, scope))
    # Revenue cap reached this period: the configured reduction applies (NDRC 2025 No. 65).
    over = revenue.over_cap_categories(session, now)
    priced = pricing.quote(
        [(pd.info, scope) for pd, scope in pairs], params, over_cap_categories=over
    )
    return priced, pairs


def _store(
    session: Session,
    actor: Actor,
    priced: pricing.Quote,
    datasets: Mapping[int, PricedDataset],
    *,
    purpose: str,
    duration_months: int,
    query_quota: int,
    total: int,
    now: dt.datetime | None,
    buyer_org_id: int | None = None,
    upgrade: dict[str, Any] | None = None,
) -> Quote:
    now = now or utcnow()
    key = signing_key()
    previous = {i["dataset_id"]: i["previous_amount"] for i in (upgrade or {}).get("items", [])}
    items = []
    for item in priced.items:
        pd = datasets[item.dataset_id]
        entry = {
            "dataset_id": item.dataset_id,
            "dataset_version": pd.version.version,
            "title": pd.dataset.title,
            "category": pd.dataset.category,
            "columns": list(item.columns),
            "amount": item.amount,
            "factors": item.to_dict()["factors"],
            "scope_parts": item.to_dict()["scope_parts"],
            "capped": item.capped,
            "ceiling_fen": item.ceiling_fen,
            "query_ceiling_fen": item.query_ceiling_fen,
            "over_cap": item.over_cap,
        }
        if upgrade is not None:
            entry["previous_amount"] = previous.get(item.dataset_id, 0)
        items.append(entry)
    quote = Quote(
        buyer_org_id=buyer_org_id if buyer_org_id is not None else actor.org_id,
        created_by_id=actor.user_id,
        params_version=priced.params_version,
        model_version=priced.model_version,
        purpose=purpose,
        duration_months=duration_months,
        query_quota=query_quota,
        total_fen=total,
        currency=pricing.CURRENCY,
        items=items,
        document={},
        signature="",
        key_id=key.id,
        expires_at=now + dt.timedelta(days=valid_days()),
        created_at=now,
        upgrade_of_license_id=(upgrade or {}).get("license_id"),
    )
    session.add(quote)
    session.flush()  # the id is part of what is signed
    document = quote_document(quote, priced, upgrade)
    quote.document = document
    quote.signature = sign(key.private, document)
    session.flush()
    data: dict[str, Any] = {
        "total": total,
        "currency": pricing.CURRENCY,
        "params_version": quote.params_version,
        "purpose": purpose,
        "datasets": sorted(datasets),
    }
    if quote.upgrade_of_license_id is not None:
        data["upgrade_of_license_id"] = quote.upgrade_of_license_id
    audit.record(session, "quote.created", actor, ("quote", quote.id), data)
    return quote


def quote_document(
    quote: Quote, priced: pricing.Quote, upgrade: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The canonical, JSON-native content that is signed: what a verifier recomputes."""
    doc: dict[str, Any] = {
        "type": "quote",
        "id": quote.id,
        "buyer_org_id": quote.buyer_org_id,
        "items": [
            {
                "dataset_id": i["dataset_id"],
                "dataset_version": i["dataset_version"],
                "columns": i["columns"],
                "amount": i["amount"],
                "factors": i["factors"],
            }
            for i in quote.items
        ],
        "subtotal": priced.subtotal,
        "bundle_discount": priced.bundle_discount,
        "total": quote.total_fen,
        "currency": quote.currency,
        "purpose": quote.purpose,
        "duration_months": quote.duration_months,
        "query_quota": quote.query_quota,
        "params_version": quote.params_version,
        "model_version": quote.model_version,
        "issued_at": iso(quote.created_at),
        "expires_at": iso(quote.expires_at),
        "key_id": quote.key_id,
    }
    if upgrade is not None:
        doc["upgrade_of_license_id"] = upgrade["license_id"]
        doc["previous_total"] = upgrade["previous_total"]
        doc["new_total"] = upgrade["new_total"]
    return doc


def verify_quote(quote: Quote) -> bool:
    """True if the signature verifies and the row still says what was signed."""
    key = public_keys().get(quote.key_id)
    doc = quote.document or {}
    if key is None or not verify(key, doc, quote.signature):
        return False
    return (
        doc.get("id") == quote.id
        and doc.get("buyer_org_id") == quote.buyer_org_id
        and doc.get("total") == quote.total_fen
        and doc.get("expires_at") == iso(quote.expires_at)
        and doc.get("params_version") == quote.params_version
        and [(i["dataset_id"], i["columns"], i["amount"]) for i in doc.get("items", [])]
        == [(i["dataset_id"], i["columns"], i["amount"]) for i in quote.items]
    )


def get_quote(session: Session, actor: Actor, quote_id: int) -> Quote:
    """The caller's own quote. Raises NotFound for anyone else's (they may not know it)."""
    quote = session.get(Quote, quote_id)
    if quote is None or not perm.can_view_quote(actor, quote.buyer_org_id):
        raise NotFound(_("No such quote."))
    return quote


def list_quotes(actor: Actor) -> sa.Select:
    """The caller's organization's quotes, newest first. Raises Forbidden for non-buyers."""
    if not perm.can_list_quotes(actor):
        raise Forbidden(_("Only buyers have quotes."))
    return (
        sa.select(Quote)
        .where(Quote.buyer_org_id == actor.org_id)
        .order_by(Quote.created_at.desc(), Quote.id.desc())
    )


def quote_for_license(
    session: Session,
    actor: Actor,
    quote_id: int,
    *,
    upgrade_of: int | None = None,
    now: dt.datetime | None = None,
) -> Quote:
    """The quote a license application (or, with ``upgrade_of``, a license upgrade) is based
    on, checked: the caller's own, not expired, signature intact, not used before, and of the
    right kind.

    Raises NotFound (not the caller's quote) and Conflict (expired, already used, an upgrade
    quote for a new license or the reverse, or a signature that no longer verifies).
    """
    quote = get_quote(session, actor, quote_id)
    now = now or utcnow()
    if quote.is_expired(now):
        raise Conflict(
            _(
                "The quote expired at %(expires_at)s; ask for a new quote.",
                expires_at=iso(quote.expires_at),
            ),
            {"quote_id": [_("the quote has expired")]},
        )
    if quote.upgrade_of_license_id != upgrade_of:
        if quote.upgrade_of_license_id is None:
            message = "This quote is for a new license, not for an upgrade."
        else:
            message = f"This quote upgrades license {quote.upgrade_of_license_id} only."
        raise Conflict(message, {"quote_id": [message]})
    if not verify_quote(quote):
        raise Conflict(
            _("The quote's signature does not verify; ask for a new quote."),
            {"quote_id": [_("the signature does not verify")]},
        )
    if quote.upgrade_of_license_id is None:
        used = session.scalar(sa.select(License.id).where(License.quote_id == quote.id))
        if used is not None:
            raise Conflict(
                _("A license was already applied for with this quote."),
                {"quote_id": [_("already used")]},
            )
    return quote


# -- upgrades --------------------------------------------------------------------------------


def _upgrade_columns(license: License, request: UpgradeRequest) -> dict[int, Any]:
    """dataset id -> requested columns (a list, None for all, or KEEP)."""
    ids = [item.dataset_id for item in license.items]
    wanted = request.columns
    if wanted is KEEP:
        return dict.fromkeys(ids, KEEP)
    if wanted is None:
        return dict.fromkeys(ids, None)
    if isinstance(wanted, Mapping):
        out: dict[int, Any] = dict.fromkeys(ids, KEEP)
        for key, value in wanted.items():
            try:
                dataset_id = int(key)
            except (TypeError, ValueError):
                dataset_id = -1
            if dataset_id not in out:
                raise ValidationFailed(
                    _("Dataset %(key)s is not part of license %(id)s.", key=key, id=license.id),
                    {f"columns.{key}": [_("not a dataset of this license")]},
                )
            out[dataset_id] = value
        return out
    if len(ids) != 1:
        raise ValidationFailed(
            _(
                "This license covers several datasets: send columns as an object mapping each dataset id to its columns."
            ),
            {"columns": [_("send an object {dataset_id: [columns] | null}")]},
        )
    return {ids[0]: wanted}


def create_upgrade_quote(
    session: Session,
    actor: Actor,
    license_id: int,
    request: UpgradeRequest,
    *,
    now: dt.datetime | None = None,
) -> Quote:
    """Quote widening an active license: ``P(new) - P(old) >= 0``, priced with the parameter
    version of the license's original quote and the datasets' listed versions.

    Raises NotFound (a license the caller may not see), Forbidden (one it may see but does
    not hold: the operator, the regulator), Conflict (the license is not active) and
    ValidationFailed (the upgrade narrows the scope, changes nothing, names unknown columns
    or a dataset that is no longer listed).
    """
    license = session.get(License, license_id)
    if license is None or not license_perm.can_view_license(actor, license.buyer_org_id):
        raise NotFound(_("No such license."))
    if not perm.can_request_upgrade_quote(actor, license.buyer_org_id):
        raise Forbidden(_("Only the buyer that holds the license can ask for an upgrade quote."))
    if license.status != UPGRADABLE_STATUS:
        raise Conflict(
            _(
                "Only an active license can be upgraded; this one is %(status)s.",
                status=license.status,
            ),
            {"status": [license.status]},
        )
    original = session.get(Quote, license.quote_id)
    if original is None:  # pragma: no cover - the foreign key makes this impossible
        raise Conflict(_("The license has no quote to upgrade from."))
    params = parameters_of(parameter_set(session, original.params_version))
    duration = request.duration_months or license.duration_months
    quota = request.query_quota or license.query_quota
    columns = _upgrade_columns(license, request)
    old_pairs, new_pairs, datasets = [], [], {}
    changed = duration != license.duration_months or quota != license.query_quota
    for i, item in enumerate(license.items):
        where = f"items[{i}]"
        pd = priced_dataset(session, item.dataset_id, where)
        datasets[pd.dataset.id] = pd
        old_columns = _columns(pd, item.columns, f"columns.{item.dataset_id}")
        old = _scope(
            old_columns, license.duration_months, license.purpose, license.query_quota, where
        )
        wanted = columns[item.dataset_id]
        new_columns = (
            old_columns if wanted is KEEP else _columns(pd, wanted, f"columns.{item.dataset_id}")
        )
        new = _scope(new_columns, duration, license.purpose, quota, where)
        changed = changed or old.licensed_columns(pd.info) != new.licensed_columns(pd.info)
        old_pairs.append((pd.info, old))
        new_pairs.append((pd.info, new))
    if not changed:
        raise ValidationFailed(
            _("The upgrade changes nothing: widen the columns, the duration or the query quota."),
            {"upgrade": [_("no change from the license's scope")]},
        )
    up = pricing.upgrade_quote(
        old_pairs, new_pairs, params, over_cap_categories=revenue.over_cap_categories(session, now)
    )
    return _store(
        session,
        actor,
        up.new,
        datasets,
        purpose=license.purpose,
        duration_months=duration,
        query_quota=quota,
        total=up.amount,
        now=now,
        buyer_org_id=license.buyer_org_id,
        upgrade={
            "license_id": license.id,
            "previous_total": up.old.total,
            "new_total": up.new.total,
            "items": [
                {"dataset_id": i.dataset_id, "previous_amount": i.old_amount} for i in up.items
            ],
        },
    )
