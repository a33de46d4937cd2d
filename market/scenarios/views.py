"""Pages of scenarios (场景机会清单) and data products (数据产品): the public lists, the
operator's forms, the regulator's decision and the buyer's application. Every page calls the
same services as the API."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from licenses.ledger import parse_period, period_of
from market.accounts.actor import ANONYMOUS
from market.auth import login_required
from market.datasets.models import Dataset, Treatment, VersionStatus
from market.db import utcnow
from market.errors import DomainError, ValidationFailed
from market.extensions import db
from market.scenarios import permissions as perm
from market.scenarios import services
from market.scenarios.models import ProductAccess, ScenarioStatus
from market.scenarios.present import product_view, title_of
from market.web import registry

bp = Blueprint("scenarios", __name__)

registry.nav_link(
    "scenarios.index",
    _l("Scenarios"),
    roles={None, "department", "buyer", "operator", "regulator", "subject"},
    order=45,
)
registry.nav_link(
    "scenarios.products",
    _l("Data products"),
    roles={None, "department", "buyer", "operator", "regulator", "subject"},
    order=46,
)

PURPOSES = ("public_welfare", "research", "internal_risk_control", "commercial_product")


def _purpose_choices():
    from market.quotes.views import purpose_labels

    labels = purpose_labels()
    return [SelectChoice(p, labels[p]) for p in PURPOSES]


def access_labels() -> dict[str, str]:
    return {
        "sandbox": _("Sandbox queries"),
        "lookups": _("Consented lookups"),
        "both": _("Sandbox queries and consented lookups"),
    }


def status_labels() -> dict[str, str]:
    return {
        "draft": _("Draft"),
        "pending": _("Awaiting the regulator"),
        "approved": _("Approved"),
        "rejected": _("Rejected"),
        "published": _("Published"),
        "withdrawn": _("Withdrawn"),
    }


@bp.app_context_processor
def _labels():
    return {
        "scenario_access_labels": access_labels,
        "scenario_status_labels": status_labels,
        "scenario_title": title_of,
    }


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ScenarioForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=services.MAX_CODE)])
    title = StringField(_l("Title (Chinese)"),
                        validators=[DataRequired(), Length(max=services.MAX_TITLE)])
    title_en = StringField(_l("Title (English)"),
                           validators=[Optional(), Length(max=services.MAX_TITLE)])
    description = TextAreaField(_l("Description"),
                                validators=[DataRequired(), Length(max=services.MAX_TEXT)])
    dataset_ids = MultiCheckboxField(_l("Datasets"), coerce=int,
                                     validators=[DataRequired(_l("Choose at least one dataset."))])
    purposes = MultiCheckboxField(_l("Allowed purposes"),
                                  validators=[DataRequired(_l("Choose at least one purpose."))])
    starts_on = DateField(_l("Term starts on"), validators=[Optional()])
    ends_on = DateField(_l("Term ends on"), validators=[Optional()],
                        description=_l("Empty: three years from the start."))


def _day_start(day) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None


class WithdrawForm(FlaskForm):
    reason = TextAreaField(_l("Reason for withdrawal"),
                           validators=[DataRequired(message=_l("Give the reason.")),
                                       Length(max=services.MAX_TEXT)])


class DecisionForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=[SelectChoice("approve", _l("Approve")),
                                                    SelectChoice("reject", _l("Reject"))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=services.MAX_TEXT)])


class ProductForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=services.MAX_CODE)])
    title = StringField(_l("Title (Chinese)"),
                        validators=[DataRequired(), Length(max=services.MAX_TITLE)])
    title_en = StringField(_l("Title (English)"),
                           validators=[Optional(), Length(max=services.MAX_TITLE)])
    description = TextAreaField(_l("Description"),
                                validators=[DataRequired(), Length(max=services.MAX_TEXT)])
    access = SelectField(_l("Access"))
    purpose = SelectField(_l("Purpose"))
    duration_months = IntegerField(_l("Term (months)"), default=12,
                                   validators=[DataRequired(), NumberRange(1, 60)])
    query_quota = IntegerField(_l("Queries or lookups"), default=1000,
                               validators=[DataRequired(), NumberRange(1, 10**9)])
    dataset_ids = MultiCheckboxField(_l("Datasets"), coerce=int,
                                     validators=[DataRequired(_l("Choose at least one dataset."))])


class ApplyForm(FlaskForm):
    scenario_id = SelectField(_l("Scenario"), coerce=int)
    purpose_statement = TextAreaField(
        _l("Purpose statement"), validators=[DataRequired(), Length(max=4000)]
    )


class StatusForm(FlaskForm):
    pass


def _actor():
    return g.get("actor") or ANONYMOUS


def _listed_datasets() -> list[Dataset]:
    return list(db.session.scalars(
        sa.select(Dataset).where(Dataset.status == VersionStatus.listed.value).order_by(Dataset.id)
    ))


def _place(exc: DomainError, form: FlaskForm) -> None:
    placed = False
    for name, messages in (exc.errors or {}).items():
        base = name.split(".")[0].split("[")[0]
        base = {"starts_at": "starts_on", "ends_at": "ends_on"}.get(base, base)
        field = getattr(form, base, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), *[str(m) for m in messages]]
            placed = True
    if not placed:
        flash(exc.message, "error")


# ----------------------------------------------------------------------------- scenarios


@bp.route("/scenarios/")
def index():
    """The scenario list (场景机会清单): approved ones for everyone, all for the operator and
    the regulator."""
    actor = _actor()
    scenarios = list(db.session.scalars(services.list_scenarios(actor)))
    return render_template(
        "scenarios/index.html",
        scenarios=scenarios,
        can_create=perm.can_manage_scenarios(actor),
        sees_all=perm.sees_drafts(actor),
    )


@bp.route("/scenarios/new", methods=["GET", "POST"])
@login_required
def new():
    if not perm.can_manage_scenarios(g.actor):
        abort(403)
    form = ScenarioForm()
    form.dataset_ids.choices = [SelectChoice(d.id, d.title) for d in _listed_datasets()]
    form.purposes.choices = _purpose_choices()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                scenario = services.create_scenario(
                    db.session, g.actor, code=form.code.data, title=form.title.data,
                    title_en=form.title_en.data, description=form.description.data,
                    dataset_ids=form.dataset_ids.data, purposes=form.purposes.data,
                    starts_at=_day_start(form.starts_on.data),
                    ends_at=_day_start(form.ends_on.data),
                )
            except DomainError as exc:
                db.session.rollback()
                _place(exc, form)
                status = exc.status
            else:
                db.session.commit()
                flash(_("Scenario drafted. Submit it to the regulator when it is complete."),
                      "success")
                return redirect(url_for("scenarios.detail", scenario_id=scenario.id))
        else:
            status = 422
    return render_template("scenarios/new.html", form=form), status


@bp.route("/scenarios/<int:scenario_id>", methods=["GET", "POST"])
def detail(scenario_id: int):
    actor = _actor()
    scenario = services.get_scenario(db.session, actor, scenario_id)
    decision = DecisionForm()
    withdraw = WithdrawForm()
    status = 200
    if request.method == "POST":
        if not actor.is_user:
            abort(401)
        action = request.form.get("action")
        try:
            if action == "withdraw":
                if not perm.can_withdraw_scenario(actor):
                    abort(403)
                if not withdraw.validate_on_submit():
                    raise ValidationFailed(
                        _("Give the reason."), {"reason": list(withdraw.reason.errors)
                                                or [_("Give the reason.")]}
                    )
                services.withdraw_scenario(db.session, actor, scenario.id, withdraw.reason.data)
                message = _("Scenario withdrawn: no new license under it.")
            elif action == "submit":
                if not StatusForm().validate_on_submit():
                    abort(400)
                services.submit_scenario(db.session, actor, scenario.id)
                message = _("Submitted to the regulator.")
            elif action == "decide":
                if not decision.validate_on_submit():
                    abort(400)
                services.decide_scenario(db.session, actor, scenario.id, decision.decision.data,
                                         decision.comment.data)
                message = _("Decision recorded.")
            else:
                abort(400)
        except DomainError as exc:
            db.session.rollback()
            if action == "withdraw":
                withdraw.reason.errors = []
            _place(exc, withdraw if action == "withdraw" else decision)
            status = exc.status
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(url_for("scenarios.detail", scenario_id=scenario.id))
    products = [p for p in db.session.scalars(services.list_products(actor))
                if scenario in services.scenarios_for_product(db.session, p)]
    return render_template(
        "scenarios/detail.html",
        scenario=scenario,
        decision=decision,
        status_form=StatusForm(),
        products=products,
        can_submit=perm.can_manage_scenarios(actor) and scenario.status == ScenarioStatus.draft,
        can_decide=perm.can_decide_scenario(actor) and scenario.status == ScenarioStatus.pending,
        can_withdraw=perm.can_withdraw_scenario(actor)
        and scenario.status == ScenarioStatus.approved,
        withdraw=withdraw,
        effective_status=services.effective_status(scenario),
    ), status


@bp.route("/scenarios/revenue")
@login_required
def revenue():
    """Departments' revenue in a month by scenario and product."""
    if not perm.can_read_revenue(g.actor):
        abort(403)
    period = request.args.get("period") or period_of(utcnow())
    try:
        parse_period(period)
    except DomainError:
        period = period_of(utcnow())
    from licenses.ledger import period_bounds

    start, end = period_bounds(period)
    rows = services.revenue_by_scenario(db.session, g.actor, start, end)
    return render_template("scenarios/revenue.html", rows=rows, period=period)


# ----------------------------------------------------------------------------- products


@bp.route("/products/")
def products():
    actor = _actor()
    items = [product_view(db.session, p)
             for p in db.session.scalars(services.list_products(actor))]
    return render_template(
        "scenarios/products.html",
        products=items,
        can_create=perm.can_manage_products(actor),
        sees_all=perm.sees_drafts(actor),
    )


@bp.route("/products/new", methods=["GET", "POST"])
@login_required
def new_product():
    if not perm.can_manage_products(g.actor):
        abort(403)
    form = ProductForm()
    datasets = _listed_datasets()
    form.dataset_ids.choices = [SelectChoice(d.id, d.title) for d in datasets]
    form.access.choices = [SelectChoice(k, v) for k, v in access_labels().items()]
    form.purpose.choices = _purpose_choices()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            items = []
            for dataset_id in form.dataset_ids.data:
                chosen = tuple(request.form.getlist(f"columns-{dataset_id}"))
                items.append(services.ItemSpec(dataset_id, chosen or None))
            try:
                product = services.create_product(
                    db.session, g.actor, code=form.code.data, title=form.title.data,
                    title_en=form.title_en.data, description=form.description.data,
                    access=form.access.data, purpose=form.purpose.data,
                    duration_months=form.duration_months.data,
                    query_quota=form.query_quota.data, items=items,
                )
            except DomainError as exc:
                db.session.rollback()
                _place(exc, form)
                if "items" in (exc.errors or {}) or "columns" in (exc.errors or {}):
                    form.dataset_ids.errors = [*form.dataset_ids.errors, exc.message]
                status = exc.status
            else:
                db.session.commit()
                flash(_("Data product drafted. Publish it when it is ready."), "success")
                return redirect(url_for("scenarios.product", product_id=product.id))
        else:
            status = 422
    columns = {
        d.id: [c.name for c in (d.current_version.columns if d.current_version else [])
               if c.treatment != Treatment.suppressed]
        for d in datasets
    }
    return render_template("scenarios/new_product.html", form=form, columns=columns,
                           chosen={k: request.form.getlist(f"columns-{k}") for k in columns}), status


@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
def product(product_id: int):
    actor = _actor()
    row = services.get_product(db.session, actor, product_id)
    scenarios = services.scenarios_for_product(db.session, row)
    form = ApplyForm()
    form.scenario_id.choices = [SelectChoice(s.id, title_of(s)) for s in scenarios]
    status = 200
    if request.method == "POST":
        if not actor.is_user:
            abort(401)
        action = request.form.get("action")
        if action in ("publish", "withdraw"):
            if not StatusForm().validate_on_submit():
                abort(400)
            try:
                services.set_product_status(db.session, actor, row.id, action)
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "error")
                status = exc.status
            else:
                db.session.commit()
                flash(_("Product published.") if action == "publish"
                      else _("Product withdrawn."), "success")
                return redirect(url_for("scenarios.product", product_id=row.id))
        elif action == "apply":
            if form.validate_on_submit():
                try:
                    lic = services.apply_for_product(
                        db.session, actor, product_id=row.id,
                        scenario_id=form.scenario_id.data,
                        purpose_statement=form.purpose_statement.data,
                    )
                except DomainError as exc:
                    db.session.rollback()
                    _place(exc, form)
                    status = exc.status
                else:
                    db.session.commit()
                    flash(_("Application sent: license %(id)s.", id=lic.id), "success")
                    return redirect(url_for("licenses.detail", license_id=lic.id))
            else:
                status = 422
        else:
            abort(400)
    return render_template(
        "scenarios/product.html",
        product=product_view(db.session, row),
        row=row,
        form=form,
        status_form=StatusForm(),
        can_apply=perm.can_apply_for_product(actor) and bool(scenarios),
        is_buyer=perm.can_apply_for_product(actor),
        can_manage=perm.can_manage_products(actor),
        access_values=[a.value for a in ProductAccess],
    ), status
