"""Pages of authorization agreements (a department proposes and signs, the operator
countersigns or declines, the regulator reads) and of the regulator's monthly reports."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from market.agreements import permissions as perm
from market.agreements import services
from market.agreements.models import Agreement
from market.auth import login_required
from market.datasets.models import Dataset
from market.errors import DomainError, Forbidden
from market.extensions import db
from market.quotes.revenue import current_period
from market.reports import services as reports
from market.reports.api import report_response
from market.web import registry

bp = Blueprint("agreements", __name__)

registry.nav_link(
    "agreements.index", _l("Agreements"), roles={"department", "operator", "regulator"}, order=74
)
registry.nav_link("agreements.report", _l("Regulator reports"), roles={"regulator", "operator"},
                  order=75)

STATUS_LABELS = {
    "draft": _l("Draft: awaiting the department's signature"),
    "proposed": _l("Signed by the department: awaiting the operator"),
    "active": _l("Active"),
    "declined": _l("Declined"),
    "expired": _l("Expired"),
}


class ProposeForm(FlaskForm):
    categories = StringField(
        _l("Categories"),
        validators=[Optional(), Length(max=2000)],
        description=_l("Comma-separated dataset categories, or * for all your datasets."),
    )
    dataset_ids = SelectMultipleField(_l("Datasets"), coerce=int, validate_choice=False)
    starts_on = DateField(_l("Starts on"), validators=[DataRequired(message=_l("Give a date."))])
    ends_on = DateField(_l("Ends on"), validators=[DataRequired(message=_l("Give a date."))])
    revenue_share_bps = IntegerField(
        _l("Department's revenue share (basis points)"),
        validators=[
            DataRequired(message=_l("Give the share in basis points (9000 is 90%).")),
            NumberRange(min=0, max=10_000),
        ],
        default=services.DEFAULT_REVENUE_SHARE_BPS,
    )


class DeclineForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=1000)],
    )


class ActionForm(FlaskForm):
    """CSRF only."""


def _place_errors(exc: DomainError, form: FlaskForm) -> None:
    aliases = {"ends_at": "ends_on", "starts_at": "starts_on", "scope": "categories"}
    placed = False
    for name, messages in (exc.errors or {}).items():
        target = getattr(form, aliases.get(name, name), None)
        if target is not None and hasattr(target, "errors") and isinstance(messages, list):
            target.errors = [*list(target.errors or []), *messages]
            placed = True
    if not placed:
        flash(exc.message, "error")


def _at_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@bp.route("/agreements", methods=["GET", "POST"])
@login_required
def index():
    """The agreements the caller may read; a department proposes one here."""
    actor = g.actor
    try:
        stmt = services.list_agreements(db.session, actor)
    except Forbidden:
        abort(403)
    is_department = perm.can_propose(actor)
    form = ProposeForm()
    if is_department:
        datasets = list(db.session.scalars(
            sa.select(Dataset).where(Dataset.department_id == actor.org_id).order_by(Dataset.id)
        ))
        form.dataset_ids.choices = [(d.id, f"{d.title} ({d.category})") for d in datasets]
    status = 200
    if request.method == "POST":
        if not is_department:
            raise Forbidden(_("Only a department proposes authorization agreements."))
        if form.validate_on_submit():
            terms = services.Terms(
                categories=[c.strip() for c in (form.categories.data or "").split(",")],
                dataset_ids=list(form.dataset_ids.data or []),
                starts_at=_at_midnight(form.starts_on.data),
                ends_at=_at_midnight(form.ends_on.data),
                revenue_share_bps=form.revenue_share_bps.data,
            )
            try:
                agreement = services.propose(db.session, actor, terms, custodial=True)
            except DomainError as exc:
                db.session.rollback()
                _place_errors(exc, form)
                status = exc.status
            else:
                flash(_("Agreement %(n)s signed and sent to the operator.", n=agreement.number),
                      "success")
                return redirect(url_for("agreements.detail", agreement_id=agreement.id))
        else:
            status = 422
    elif is_department and not form.starts_on.data:
        today = dt.date.today()
        form.starts_on.data = today
        form.ends_on.data = today.replace(year=today.year + 3)
    agreements = list(db.session.scalars(stmt.limit(200)))
    return render_template(
        "agreements/index.html",
        agreements=agreements,
        form=form,
        is_department=is_department,
        status_labels=STATUS_LABELS,
        effective=services.effective_status,
    ), status


def _readable(agreement_id: int) -> Agreement:
    try:
        return services.get_agreement(db.session, g.actor, agreement_id)
    except DomainError:
        abort(404)


@bp.get("/agreements/<int:agreement_id>")
@login_required
def detail(agreement_id: int):
    agreement = _readable(agreement_id)
    return render_template(
        "agreements/detail.html",
        agreement=agreement,
        summary=services.summary(agreement),
        verification=services.verify_agreement(db.session, agreement),
        document_text=json.dumps(agreement.document, ensure_ascii=False, indent=2),
        status_labels=STATUS_LABELS,
        can_countersign=perm.can_countersign(g.actor) and agreement.status == "proposed",
        action_form=ActionForm(),
        decline_form=DeclineForm(),
    )


@bp.get("/agreements/<int:agreement_id>/document.json")
@login_required
def document(agreement_id: int):
    agreement = _readable(agreement_id)
    body = json.dumps(services.bundle(agreement), ensure_ascii=False, indent=2)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{agreement.number}.json"'
    return response


@bp.post("/agreements/<int:agreement_id>/countersign")
@login_required
def countersign(agreement_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        agreement = services.countersign(db.session, g.actor, agreement_id)
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(_("Agreement %(n)s countersigned: it is active.", n=agreement.number), "success")
    return redirect(url_for("agreements.detail", agreement_id=agreement_id))


@bp.post("/agreements/<int:agreement_id>/decline")
@login_required
def decline(agreement_id: int):
    form = DeclineForm()
    if not form.validate_on_submit():
        flash(_("Give the reason."), "error")
        return redirect(url_for("agreements.detail", agreement_id=agreement_id))
    try:
        agreement = services.decline(db.session, g.actor, agreement_id, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        flash(exc.message, "error")
    else:
        flash(_("Agreement %(n)s declined.", n=agreement.number), "success")
    return redirect(url_for("agreements.detail", agreement_id=agreement_id))


# ------------------------------------------------------------------------- signing keys


class RevokeKeyForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=1000)],
    )
    department_id = IntegerField(validators=[Optional()])


def _keys_page(forms: dict[str, RevokeKeyForm] | None = None, status: int = 200):
    try:
        keys = services.keys_for(db.session, g.actor)
    except DomainError:
        abort(403)
    departments = services.departments_with(db.session, (k.organization_id for k in keys))
    forms = forms or {}
    for key in keys:
        forms.setdefault(f"{key.organization_id}:{key.key_id}", RevokeKeyForm(formdata=None))
    can_revoke = perm.can_propose(g.actor) or perm.can_countersign(g.actor)
    return render_template(
        "agreements/keys.html", keys=keys, departments=departments, forms=forms,
        can_revoke=can_revoke,
    ), status


@bp.get("/agreements/keys")
@login_required
def keys():
    return _keys_page()


@bp.post("/agreements/keys/<string:key_id>/revoke")
@login_required
def revoke_key(key_id: str):
    if not (perm.can_propose(g.actor) or perm.can_countersign(g.actor)):
        abort(403)
    form = RevokeKeyForm()
    department_id = form.department_id.data if perm.can_countersign(g.actor) else g.actor.org_id
    slot = f"{department_id}:{key_id}"
    if not form.validate_on_submit():
        return _keys_page({slot: form}, 422)
    try:
        key = services.revoke_key(
            db.session, g.actor, key_id, reason=form.reason.data, department_id=department_id
        )
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        _place_errors(exc, form)
        return _keys_page({slot: form}, 422)
    flash(_("Key %(kid)s revoked: no signature by it is accepted any more.", kid=key.key_id),
          "success")
    return redirect(url_for("agreements.keys"))


# ------------------------------------------------------------------------------ reports


def _previous_period() -> str:
    year, month = (int(p) for p in current_period().split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


@bp.get("/reports")
@login_required
def report():
    """The regulator's monthly report, on screen, with its downloads."""
    if not reports.can_read_reports(g.actor):
        abort(403)
    period = request.args.get("period") or current_period()
    error = None
    signed = None
    try:
        signed = reports.build_report(db.session, g.actor, period)
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 403:
            raise
        error = exc.message
    return render_template(
        "agreements/report.html",
        period=period,
        signed=signed,
        report=signed["report"] if signed else None,
        error=error,
        current=current_period(),
        previous=_previous_period(),
    ), (422 if error else 200)


@bp.get("/reports/<period>.<fmt>")
@login_required
def report_file(period: str, fmt: str):
    if fmt not in ("json", "csv", "pdf"):
        abort(404)
    signed = reports.build_report(db.session, g.actor, period)
    return report_response(signed, fmt)
