"""Pages: the price calculator, the buyer's quotes, the operator's pricing parameters and the
revenue-cap report. They call the same services as the API."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import pricing
from market.accounts.models import User
from market.auth import login_required
from market.datasets.models import Dataset, VersionStatus
from market.db import utcnow
from market.errors import DomainError, Forbidden, NotFound
from market.extensions import db
from market.quotes import parameters as versions
from market.quotes import permissions as perm
from market.quotes import revenue, services
from market.quotes.forms import (
    GROUPS,
    PURPOSES,
    REGULATED,
    DecisionForm,
    ParameterFormState,
    ParametersForm,
)
from market.quotes.models import Quote
from market.web import registry

bp = Blueprint("quotes", __name__)

registry.nav_link("quotes.index", _l("My quotes"), roles={"buyer"}, order=40)
registry.nav_link("quotes.parameters", _l("Pricing"), roles={"operator", "regulator"}, order=60)
registry.nav_link(
    "quotes.revenue_caps", _l("Revenue caps"), roles={"operator", "regulator"}, order=61
)

PER_PAGE = 20
HISTORY = 50


def factor_labels() -> dict[str, str]:
    """Translated names of the pricing factors, in the model's order."""
    labels = {
        "base_fen": _("Cost basis (amortized, fen)"),
        "quality": _("Quality"),
        "category": _("Category"),
        "scarcity": _("Scarcity"),
        "freshness": _("Freshness"),
        "columns": _("Columns"),
        "duration": _("Duration"),
        "quota": _("Query quota"),
        "purpose": _("Purpose"),
        "cap": _("Price ceiling"),
        "scope": _("Scope (columns, term, quota)"),
        "over_cap": _("Revenue cap reached"),
    }
    # Quotes issued before model revision 2 still show their own factors.
    return {name: labels[name] for name in (*pricing.FACTOR_ORDER, *pricing.LEGACY_FACTORS)}


def purpose_labels() -> dict[str, str]:
    return {
        "public_welfare": _("Public welfare (free)"),
        "research": _("Research"),
        "internal_risk_control": _("Internal risk control"),
        "commercial_product": _("Commercial product"),
    }


@bp.app_context_processor
def _pricing_labels():
    return {"factor_labels": factor_labels, "purpose_labels": purpose_labels}


@registry.panel("pricing", roles={"operator"}, title=_l("Pricing"), order=40)
def _pricing_panel(user):
    row = versions.current_parameter_set(db.session)
    return {"version": row.version, "created_at": row.created_at, "note": row.note}


@registry.panel("my_quotes", roles={"buyer"}, title=_l("My quotes"), order=40)
def _my_quotes_panel(user):
    quotes = db.session.scalars(
        sa.select(Quote)
        .where(Quote.buyer_org_id == user.organization_id)
        .order_by(Quote.created_at.desc(), Quote.id.desc())
        .limit(5)
    ).all()
    return {"quotes": quotes, "now": utcnow()}


@bp.app_template_global("catalogue_from_prices")
def _catalogue_from_prices(datasets) -> dict[int, int]:
    """The catalogue cards' "from ¥…" (``market.quotes.from_price``)."""
    from market.quotes.from_price import from_prices

    return from_prices(db.session, datasets)


@bp.app_template_global("quote_datasets")
def _quote_datasets(quote) -> list[tuple[int, str]]:
    """``(dataset id, title)`` of a quote's items: the title signed into the quote, else the
    dataset's current one (quotes made before titles were stored)."""
    missing = [i["dataset_id"] for i in quote.items if not i.get("title")]
    titles = (
        dict(db.session.execute(sa.select(Dataset.id, Dataset.title).where(
            Dataset.id.in_(missing))).all())
        if missing else {}
    )
    return [
        (i["dataset_id"], i.get("title") or titles.get(i["dataset_id"]) or f"#{i['dataset_id']}")
        for i in quote.items
    ]


@bp.app_template_global("sample_size_hint")
def _sample_size_hint(rows):
    from market.quotes.from_price import sample_size_hint

    return sample_size_hint(rows)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


# -- buyers ----------------------------------------------------------------------------------


@bp.get("/quotes")
@login_required
def index():
    stmt = services.list_quotes(g.actor)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    )
    quotes = db.session.scalars(stmt.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template(
        "quotes/index.html",
        quotes=quotes,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        now=utcnow(),
    )


@bp.get("/quotes/new")
@login_required
def new():
    """The price calculator for one dataset; without ``dataset_id``, a dataset picker."""
    _require(perm.can_request_quote(g.actor), _("Only buyers ask for quotes."))
    dataset_id = request.args.get("dataset_id", type=int)
    if dataset_id is None:
        listed = db.session.scalars(
            sa.select(Dataset).where(Dataset.status == VersionStatus.listed).order_by(Dataset.title)
        ).all()
        return render_template("quotes/pick.html", datasets=listed)
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None or dataset.status != VersionStatus.listed:
        raise NotFound(_("No such listed dataset."))
    return render_template("quotes/new.html", dataset=dataset)


@bp.get("/quotes/<int:quote_id>")
@login_required
def detail(quote_id: int):
    quote = services.get_quote(db.session, g.actor, quote_id)
    now = utcnow()
    can_apply = (
        "licenses.apply" in current_app.view_functions
        and not quote.is_upgrade
        and not quote.is_expired(now)
    )
    return render_template(
        "quotes/detail.html",
        quote=quote,
        expired=quote.is_expired(now),
        apply_url=url_for("licenses.apply", quote_id=quote.id) if can_apply else None,
        verified=services.verify_quote(quote),
    )


# -- operator and regulator --------------------------------------------------------------------


def _history() -> list[tuple[object, list[str], str | None]]:
    """(version row, changed fields, author e-mail), newest first."""
    rows = db.session.scalars(versions.parameter_history().limit(HISTORY + 1)).all()
    author_ids = {r.created_by_id for r in rows if r.created_by_id}
    authors = {
        user_id: email
        for user_id, email in db.session.execute(
            sa.select(User.id, User.email).where(User.id.in_(author_ids))
        )
    }
    out = []
    for i, row in enumerate(rows[:HISTORY]):
        before = rows[i + 1].params if i + 1 < len(rows) else None
        changed = (
            sorted(k for k in row.params if k != "version" and row.params[k] != before.get(k))
            if before is not None
            else []
        )
        out.append((row, changed, authors.get(row.created_by_id)))
    return out


@bp.route("/pricing/parameters", methods=["GET", "POST"])
@login_required
def parameters():
    _require(
        perm.can_view_pricing_admin(g.actor),
        _("Only the operator and the regulator see the pricing administration."),
    )
    current = versions.current_parameter_set(db.session)
    can_edit = perm.can_edit_pricing_parameters(g.actor)
    form = ParametersForm()
    state = ParameterFormState.from_params(current.params)
    status = 200
    if request.method == "POST":
        _require(can_edit, _("Only the operator sets pricing parameters."))
        proposing = request.form.get("action") == "propose"
        state = ParameterFormState.from_form(request.form)
        if form.validate_on_submit():
            changes = state.to_changes()
            if not state.errors:
                try:
                    if proposing:
                        proposal = versions.propose(
                            db.session,
                            g.actor,
                            {k: v for k, v in changes.items() if k in REGULATED},
                            note=form.note.data,
                        )
                    else:
                        row = versions.save_parameters(
                            db.session,
                            g.actor,
                            {k: v for k, v in changes.items() if k not in REGULATED}
                            | _changed_regulated(changes, current.params),
                            note=form.note.data,
                            base_version=int(form.base_version.data)
                            if (form.base_version.data or "").isdigit()
                            else None,
                        )
                except DomainError as exc:
                    db.session.rollback()
                    state.add_errors(
                        exc.errors or {"form": [exc.message]},
                        wrap=lambda m: _("Not accepted: %(reason)s", reason=m),
                    )
                else:
                    db.session.commit()
                    if proposing:
                        flash(
                            _(
                                "Proposal %(id)s sent to the regulator; the ceilings and caps "
                                "apply once approved.",
                                id=proposal.id,
                            ),
                            "success",
                        )
                    else:
                        flash(_("Saved as version %(version)s.", version=row.version), "success")
                    return redirect(url_for("quotes.parameters"))
        state.with_blank_rows()
        status = 422
    form.base_version.data = str(current.version)
    proposals = db.session.scalars(versions.list_proposals(g.actor).limit(HISTORY)).all()
    return render_template(
        "quotes/parameters.html",
        current=current,
        history=_history(),
        form=form,
        state=state,
        groups=GROUPS,
        purposes=PURPOSES,
        can_edit=can_edit,
        can_decide=perm.can_decide_pricing_proposal(g.actor),
        proposals=proposals,
        category_labels=pricing.CATEGORY_LABELS,
    ), status


def _changed_regulated(changes: dict, current: dict) -> dict:
    """Regulated fields the form changed, so that saving names them (they need a proposal);
    unchanged ones are left out, since the form always sends every field."""
    try:
        proposed = pricing.PricingParameters.from_dict(
            {**current, **{k: changes[k] for k in REGULATED if k in changes}}
        ).to_dict()
        now = pricing.PricingParameters.from_dict(current).to_dict()
    except pricing.InvalidParameters:
        return {k: changes[k] for k in REGULATED if k in changes}
    return {k: changes[k] for k in REGULATED if k in changes and proposed[k] != now[k]}


@bp.post("/pricing/proposals/<int:proposal_id>/decide")
@login_required
def decide(proposal_id: int):
    """The regulator approves or rejects a proposal from the pricing page."""
    _require(
        perm.can_decide_pricing_proposal(g.actor),
        _("Only the regulator approves or rejects ceilings and revenue caps."),
    )
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for("quotes.parameters"))
    approve = request.form.get("decision") == "approve"
    try:
        row = versions.decide(
            db.session, g.actor, proposal_id, approve=approve, note=form.note.data
        )
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        if approve:
            flash(
                _(
                    "Proposal %(id)s approved: published as version %(version)s.",
                    id=row.id,
                    version=row.result_version,
                ),
                "success",
            )
        else:
            flash(_("Proposal %(id)s rejected.", id=row.id), "success")
    return redirect(url_for("quotes.parameters"))


@bp.get("/pricing/revenue-caps")
@login_required
def revenue_caps():
    _require(
        perm.can_view_revenue_caps(g.actor),
        _("Only the operator and the regulator see the revenue caps."),
    )
    period = request.args.get("period") or revenue.current_period()
    try:
        report = revenue.revenue_cap_report(db.session, period)
    except pricing.InvalidRevenueInput:
        flash(_("Choose a month written YYYY-MM."), "error")
        return redirect(url_for("quotes.revenue_caps"))
    names = revenue.party_names(db.session, {r.party for r in report.rows})
    chart = {
        "labels": [f"{names.get(r.party) or _('Operator')} · {r.category}" for r in report.rows],
        "counted": [r.counted_fen for r in report.rows],
        "caps": [r.cap_fen for r in report.rows],
        "names": {"counted": _("Counted this period (¥)"), "cap": _("Cap (¥)")},
    }
    return render_template("quotes/revenue_caps.html", report=report, names=names, chart=chart)
