"""The page of security-level changes (GB/T 43697-2024): a department asks, the operator and
the regulator decide a lowering."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from market.auth import login_required
from market.datasets.models import Dataset
from market.errors import DomainError
from market.extensions import db
from market.governance import levels
from market.web import registry

bp = Blueprint("levels", __name__)

registry.nav_link(
    "levels.index", _l("Security levels"), roles={"department", "operator", "regulator"},
    order=76,
)


def level_labels() -> dict[str, str]:
    return {
        "general": _("General (一般数据)"),
        "important": _("Important (重要数据)"),
        "core": _("Core (核心数据)"),
    }


def status_labels() -> dict[str, str]:
    return {
        levels.PENDING: _("Awaiting approval"),
        levels.APPLIED: _("Applied"),
        levels.REJECTED: _("Rejected"),
    }


def decision_labels() -> dict[str, str]:
    return {"approve": _("Approved"), "reject": _("Rejected")}


class RequestForm(FlaskForm):
    dataset_id = SelectField(_l("Dataset"), coerce=int)
    to_level = SelectField(_l("New security level"))
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(message=_l("Give the reason.")), Length(max=levels.MAX_TEXT)],
    )


class DecideForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=[SelectChoice("approve", _l("Approve")),
                                                      SelectChoice("reject", _l("Reject"))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=levels.MAX_TEXT)])


def _own_datasets() -> list[Dataset]:
    return list(db.session.scalars(
        sa.select(Dataset)
        .where(Dataset.department_id == g.actor.org_id, Dataset.status != "withdrawn")
        .order_by(Dataset.id)
    ))


def _page(form: RequestForm | None = None, decide: dict | None = None, status: int = 200):
    try:
        changes = list(db.session.scalars(levels.list_changes(g.actor).limit(200)))
    except DomainError:
        abort(403)
    is_department = g.actor.role == "department"
    form = form or RequestForm(formdata=None)
    if is_department:
        form.dataset_id.choices = [
            SelectChoice(d.id, f"{d.title} ({level_labels()[d.security_level]})")
            for d in _own_datasets()
        ]
        form.to_level.choices = [SelectChoice(k, v) for k, v in level_labels().items()]
    decide = decide or {}
    for c in changes:
        decide.setdefault(c.id, DecideForm(formdata=None))
    titles = dict(db.session.execute(
        sa.select(Dataset.id, Dataset.title).where(
            Dataset.id.in_(sorted({c.dataset_id for c in changes}))
        )
    ).all())
    return render_template(
        "governance/levels.html", changes=changes, form=form, decide=decide,
        is_department=is_department, can_decide=levels.can_decide(g.actor),
        role=g.actor.role, titles=titles, level_labels=level_labels(),
        status_labels=status_labels(), decision_labels=decision_labels(),
    ), status


@bp.get("/security-levels")
@login_required
def index():
    return _page()


@bp.post("/security-levels")
@login_required
def ask():
    if g.actor.role != "department":
        abort(403)
    form = RequestForm()
    form.dataset_id.choices = [SelectChoice(d.id, d.title) for d in _own_datasets()]
    form.to_level.choices = [SelectChoice(k, v) for k, v in level_labels().items()]
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        change = levels.request_change(
            db.session, g.actor, form.dataset_id.data, form.to_level.data, form.reason.data
        )
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        placed = False
        for name, messages in (exc.errors or {}).items():
            field = getattr(form, name, None)
            if field is not None and hasattr(field, "errors") and isinstance(messages, list):
                field.errors = [*list(field.errors or []), *messages]
                placed = True
        if not placed:
            flash(exc.message, "error")
        return _page(form, status=exc.status)
    if change.status == levels.APPLIED:
        flash(_("Security level raised: the stricter rules apply now."), "success")
    else:
        flash(_("Request sent: the operator and the regulator must both approve it."),
              "success")
    return redirect(url_for("levels.index"))


@bp.post("/security-levels/<int:change_id>/decision")
@login_required
def decide(change_id: int):
    if not levels.can_decide(g.actor):
        abort(403)
    form = DecideForm()
    if not form.validate_on_submit():
        return _page(decide={change_id: form}, status=422)
    try:
        levels.decide_change(db.session, g.actor, change_id, form.decision.data,
                             form.comment.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            raise
        for name, messages in (exc.errors or {}).items():
            field = getattr(form, name, None)
            if field is not None and isinstance(messages, list):
                field.errors = [*list(field.errors or []), *messages]
        if not exc.errors:
            flash(exc.message, "error")
        return _page(decide={change_id: form}, status=exc.status)
    flash(_("Decision recorded."), "success")
    return redirect(url_for("levels.index"))
