"""Pages for self-registration, the admission queue and account management."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice

from market.accounts import permissions as perm
from market.accounts import services
from market.accounts.forms import AdmissionForm, OrganizationForm, RegisterForm, UserForm
from market.accounts.models import Organization, OrgStatus, User
from market.auth import login_required, start_session
from market.errors import DomainError
from market.extensions import db, limiter
from market.web import registry
from market.web.forms import apply_domain_errors

bp = Blueprint("accounts", __name__)

registry.nav_link("accounts.admissions", _l("Admissions"), roles={"operator"}, order=80)
registry.nav_link("accounts.organizations", _l("Organizations"), roles={"operator", "regulator"}, order=90)
registry.nav_link(
    "accounts.security", _l("Sign-in sessions"),
    roles={"department", "buyer", "operator", "regulator", "subject"}, order=99,
)


@registry.panel("admissions", roles={"operator"}, title=_l("Admission queue"), order=30)
def _admissions_panel(user):
    pending = db.session.scalar(
        sa.select(sa.func.count()).select_from(Organization).where(Organization.status == OrgStatus.pending)
    )
    return {"pending": pending}


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            org, user = services.register(
                db.session,
                organization_name=form.organization_name.data,
                credit_code=form.credit_code.data,
                kind=form.kind.data,
                email=form.email.data,
                password=form.password.data,
            )
        except DomainError as exc:
            db.session.rollback()
            apply_domain_errors(form, exc)
        else:
            db.session.commit()
            start_session(user)
            flash(_("Registered. The operator will review your organization; you will be able to apply for licenses once it is admitted."), "success")
            return redirect(url_for("web.dashboard"))
    return render_template("accounts/register.html", form=form), (422 if form.errors or getattr(form, "form_errors", None) else 200)


def _require(check: bool) -> None:
    if not check:
        abort(403)


@bp.route("/admin/admissions", methods=["GET", "POST"])
@login_required
def admissions():
    _require(perm.can_admit_organization(g.actor))
    form = AdmissionForm()
    if form.validate_on_submit():
        try:
            org = services.decide_admission(
                db.session, g.actor, int(form.org_id.data), decision=form.decision.data, reason=form.reason.data or ""
            )
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message + " " + " ".join(m for msgs in exc.errors.values() for m in msgs), "error")
        else:
            db.session.commit()
            flash(_("%(name)s: %(status)s", name=org.name, status=_("admitted") if org.status == "active" else _("refused")), "success")
            return redirect(url_for("accounts.admissions"))
    pending = db.session.scalars(
        sa.select(Organization).where(Organization.status == OrgStatus.pending).order_by(Organization.created_at)
    ).all()
    decided = db.session.scalars(
        sa.select(Organization).where(Organization.status == OrgStatus.refused).order_by(Organization.id.desc()).limit(20)
    ).all()
    return render_template("accounts/admissions.html", pending=pending, refused=decided, form=form)


@bp.route("/admin/organizations", methods=["GET", "POST"])
@login_required
def organizations():
    _require(perm.can_list_organizations(g.actor))
    org_form = OrganizationForm(prefix="org")
    user_form = UserForm(prefix="user")
    orgs = db.session.scalars(sa.select(Organization).order_by(Organization.kind, Organization.name)).all()
    user_form.organization_id.choices = [SelectChoice(str(o.id), f"{o.name} ({o.kind})") for o in orgs]
    if perm.can_create_organization(g.actor):
        if org_form.name.data and org_form.validate_on_submit():
            try:
                services.create_organization(
                    db.session, g.actor, name=org_form.name.data, kind=org_form.kind.data, credit_code=org_form.credit_code.data
                )
            except DomainError as exc:
                db.session.rollback()
                apply_domain_errors(org_form, exc)
            else:
                db.session.commit()
                flash(_("Organization created."), "success")
                return redirect(url_for("accounts.organizations"))
        elif user_form.email.data and user_form.validate_on_submit():
            try:
                services.create_user(
                    db.session, g.actor, email=user_form.email.data, password=user_form.password.data,
                    organization_id=user_form.organization_id.data,
                )
            except DomainError as exc:
                db.session.rollback()
                apply_domain_errors(user_form, exc)
            else:
                db.session.commit()
                flash(_("User created."), "success")
                return redirect(url_for("accounts.organizations"))
    users = db.session.scalars(sa.select(User).order_by(User.organization_id, User.email)).all()
    return render_template(
        "accounts/organizations.html", orgs=orgs, users=users, org_form=org_form, user_form=user_form,
        can_manage=perm.can_create_organization(g.actor),
    )


@bp.get("/account/security")
@login_required
def security():
    """The signed-in user's live browser sessions, and "log out everywhere"."""
    from market.accounts import sessions
    from market.web.forms import LogoutForm

    live = sessions.live_sessions(db.session, g.user.id)
    return render_template(
        "accounts/security.html", sessions=live, current_sid=g.get("session_sid"),
        form=LogoutForm(),
    )
