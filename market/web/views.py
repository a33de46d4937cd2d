from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from market.accounts import services as accounts
from market.auth import login_required, public, start_session
from market.errors import Unauthenticated
from market.extensions import db, limiter
from market.keys import pseudonym_key
from market.web import registry
from market.web.forms import LoginForm, LogoutForm

bp = Blueprint("web", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative redirects after login (no open redirect)."""
    if not target:
        return url_for("web.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.dashboard")
    return target


@bp.get("/")
def index():
    if g.get("user") is not None:
        return redirect(url_for("web.dashboard"))
    return render_template("index.html")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(
                db.session, form.email.data, form.password.data, key=pseudonym_key()
            )
        except Unauthenticated as exc:
            # Record the failed attempt in its own transaction, then show the form again.
            from market.audit import services as audit

            db.session.rollback()
            type_, subject, data = exc.audit
            audit.record(db.session, type_, g.actor, subject, data)
            db.session.commit()
            error = _("The e-mail or password is wrong.")
        else:
            start_session(user)
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    form = LogoutForm()
    if form.validate_on_submit() and g.get("user") is not None:
        accounts.logout(db.session, g.user)
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("web.index"))


@bp.get("/dashboard")
@login_required
def dashboard():
    role = g.user.organization.kind
    panels = [(p, p.context(g.user)) for p in registry.panels_for(role)]
    return render_template(
        "dashboard.html",
        role=role,
        panels=panels,
        pending=g.user.organization.status != "active",
    )


@bp.get("/api/v1/docs")
@public
def api_docs():
    return render_template("api_docs.html")
