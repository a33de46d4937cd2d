"""Governance pages: the public red and black lists (红黑榜, kept by the regulator) and the
regulator's view of data grading and registration certificates."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from market.accounts.models import Organization
from market.auth import login_required
from market.datasets.forms import label
from market.datasets.models import Dataset, VersionStatus
from market.db import utcnow
from market.errors import DomainError, Forbidden
from market.extensions import db
from market.governance import services
from market.governance.models import RegistrationCertificate
from market.web import registry

bp = Blueprint("governance", __name__)

registry.nav_link(
    "governance.lists",
    _l("Red and black lists"),
    roles={None, "department", "buyer", "operator", "regulator", "subject"},
    order=80,
)
registry.nav_link(
    "governance.grading", _l("Data grading"), roles={"regulator", "operator"}, order=72
)
registry.nav_link(
    "governance.license_approvals", _l("Important-data licenses"), roles={"regulator"}, order=73
)

LIST_LABELS = {"red": _l("Red list"), "black": _l("Black list")}


@bp.record_once
def _template_globals(state) -> None:
    # The license review queue shows a "fast track" flag for red-listed buyers.
    state.app.jinja_env.globals.update(
        gov_fast_track=_fast_track, gov_awaits_regulator=_awaits_regulator
    )


def _fast_track(org_id: int | None) -> bool:
    return services.red_list_benefit(db.session, org_id).fast_track


def _awaits_regulator(lic) -> bool:
    """A pending license over important data the regulator has not approved yet."""
    if not services.license_needs_regulator(lic):
        return False
    decision = services.regulator_decision(db.session, lic.id)
    return decision is None or decision.decision != "approve"


class RegulatorReviewForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=services.MAX_REASON)])


class ListAddForm(FlaskForm):
    list_name = SelectField(
        _l("List"),
        choices=[SelectChoice("red", _l("Red list")), SelectChoice("black", _l("Black list"))],
        validators=[DataRequired()],
    )
    organization_id = SelectField(_l("Organization"), coerce=int, validate_choice=False)
    subject = StringField(
        _l("Or a scenario or project"), validators=[Optional(), Length(max=services.MAX_SUBJECT)]
    )
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=services.MAX_REASON)],
    )
    until = DateField(_l("Listed until (optional)"), validators=[Optional()])


class ListRemoveForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for removal"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=services.MAX_REASON)],
    )


def _is_regulator() -> bool:
    actor = g.get("actor")
    return actor is not None and services._can_change_lists(actor)


def _candidates() -> list[Organization]:
    return list(
        db.session.scalars(
            sa.select(Organization)
            .where(Organization.kind.in_(["buyer", "department", "subject"]))
            .order_by(Organization.kind, Organization.name)
        )
    )


def _place_errors(exc: DomainError, form: FlaskForm) -> None:
    placed = False
    for name, messages in (exc.errors or {}).items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), *messages]
            placed = True
    if not placed:
        flash(exc.message, "error")


@bp.route("/lists", methods=["GET", "POST"])
def lists():
    """The public red and black lists; the regulator adds entries here."""
    can_change = _is_regulator()
    form = ListAddForm()
    form.organization_id.choices = (
        [SelectChoice(0, _("— none: a scenario or project —"))]
        + [SelectChoice(o.id, f"{o.name} ({o.credit_code})") for o in _candidates()]
        if can_change
        else []
    )
    status = 200
    if request.method == "POST":
        if not can_change:
            raise Forbidden(_("Only the regulator keeps the red and black lists."))
        if form.validate_on_submit():
            import datetime as dt

            until = (
                dt.datetime.combine(form.until.data, dt.time(), tzinfo=dt.UTC)
                if form.until.data
                else None
            )
            try:
                services.add_entry(
                    db.session,
                    g.actor,
                    form.list_name.data,
                    organization_id=form.organization_id.data or None,
                    subject=form.subject.data,
                    reason=form.reason.data,
                    until=until,
                )
            except DomainError as exc:
                db.session.rollback()
                _place_errors(exc, form)
                status = exc.status
            else:
                flash(_("Listed."), "success")
                return redirect(url_for("governance.lists"))
        else:
            status = 422
    current = services.public_lists(db.session)
    return render_template(
        "governance/lists.html",
        lists=current,
        list_labels=LIST_LABELS,
        form=form,
        remove_form=ListRemoveForm(),
        can_change=can_change,
        bonus_percent=_bonus_percent(),
    ), status


def _bonus_percent() -> int:
    from flask import current_app

    return int(
        current_app.config.get(
            "MARKET_RED_LIST_QUOTA_BONUS_PERCENT", services.DEFAULT_RED_QUOTA_BONUS_PERCENT
        )
    )


def _remove(list_name: str, **target: int):
    if not _is_regulator():
        raise Forbidden(_("Only the regulator keeps the red and black lists."))
    form = ListRemoveForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for the removal."), "error")
        return redirect(url_for("governance.lists"))
    try:
        services.remove_entry(db.session, g.actor, list_name, reason=form.reason.data, **target)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("Removed from the list."), "success")
    return redirect(url_for("governance.lists"))


@bp.post("/lists/<list_name>/<int:organization_id>/remove")
@login_required
def remove_organization(list_name: str, organization_id: int):
    return _remove(list_name, organization_id=organization_id)


@bp.post("/lists/<list_name>/subjects/<int:entry_id>/remove")
@login_required
def remove_subject(list_name: str, entry_id: int):
    return _remove(list_name, entry_id=entry_id)


@bp.get("/governance/grading")
@login_required
def grading():
    """Datasets by security level and open grade, and the registration certificates
    (regulator, operator)."""
    if g.actor.role not in ("regulator", "operator"):
        raise Forbidden(_("Only the regulator and the operator see this page."))
    rows = db.session.execute(
        sa.select(Dataset.security_level, Dataset.open_grade, sa.func.count(Dataset.id))
        .where(Dataset.status == VersionStatus.listed)
        .group_by(Dataset.security_level, Dataset.open_grade)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for level, grade, n in rows:
        counts.setdefault(level, {})[grade] = n
    refused_core = db.session.scalar(
        sa.select(sa.func.count(Dataset.id)).where(Dataset.security_level == "core")
    )
    important = db.session.scalars(
        sa.select(Dataset)
        .where(Dataset.security_level == "important", Dataset.status == VersionStatus.listed)
        .order_by(Dataset.title)
    ).all()
    certificates = db.session.scalars(
        sa.select(RegistrationCertificate).order_by(RegistrationCertificate.id.desc()).limit(50)
    ).all()
    chart = {"levels": ["general", "important"], "grades": ["open", "conditional"]}
    chart_data = {
        "labels": [str(label("security_level", lv)) for lv in chart["levels"]],
        "series": [
            {
                "label": str(label("grade", gr)),
                "data": [counts.get(lv, {}).get(gr, 0) for lv in chart["levels"]],
            }
            for gr in chart["grades"]
        ],
    }
    return render_template(
        "governance/grading.html",
        counts=counts,
        chart=chart,
        chart_data=chart_data,
        refused_core=refused_core or 0,
        important=important,
        certificates=certificates,
        now=utcnow(),
    )


@bp.route("/governance/license-approvals", methods=["GET", "POST"])
@login_required
def license_approvals():
    """Pending license applications over important data, for the regulator's decision."""
    from licenses.models import License

    if not services._can_change_lists(g.actor):
        raise Forbidden(_("Only the regulator decides on licenses for important data."))
    form = RegulatorReviewForm()
    if request.method == "POST":
        license_id = request.form.get("license_id", type=int)
        decision = request.form.get("decision", "")
        if form.validate_on_submit() and license_id:
            try:
                services.regulator_review(
                    db.session, g.actor, license_id, decision=decision,
                    comment=form.comment.data,
                )
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "error")
            else:
                flash(_("Decision recorded."), "success")
                return redirect(url_for("governance.license_approvals"))
        else:
            flash(_("The form has expired: try again."), "error")
    pending = services.fast_track_first(db.session, [
        lic
        for lic in db.session.scalars(
            sa.select(License).where(License.status == "pending_review").order_by(License.id)
        ).unique()
        if services.license_needs_regulator(lic)
    ])
    decided = {lic.id: services.regulator_decision(db.session, lic.id) for lic in pending}
    return render_template(
        "governance/license_approvals.html", pending=pending, decided=decided, form=form
    )
