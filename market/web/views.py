from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from market.accounts import services as accounts
from market.accounts import sessions
from market.auth import (
    LOGIN_RATE_LIMIT,
    end_session,
    login_required,
    public,
    start_session,
    throttle_policy,
)
from market.errors import RateLimited, Unauthenticated
from market.extensions import db, limiter
from market.keys import pseudonym_key
from market.web import registry
from market.web.forms import LoginForm, LogoutForm

bp = Blueprint("web", __name__)

#: Characters that never belong in a redirect target: control characters (CR/LF would break
#: the Location header) and the backslash (browsers read ``/\\host`` as ``//host``).
_UNSAFE_NEXT = re.compile(r"[\x00-\x1f\x7f\\\u2028\u2029]")
MAX_NEXT = 2000


def safe_next(target: str | None) -> str | None:
    """``target`` (as decoded from the query string) percent-encoded, if it is a same-site
    path: one leading slash and not two (``//host`` is another site), no scheme, no host, no
    control character or backslash. Otherwise None."""
    if not target or len(target) > MAX_NEXT or _UNSAFE_NEXT.search(target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return quote(target, safe="/?&=:@!$'()*+,;%-._~#")


@bp.get("/")
def index():
    if g.get("user") is not None:
        return redirect(url_for("web.dashboard"))
    return render_template("index.html")


@bp.route("/login", methods=["GET", "POST"])
@limiter.shared_limit(LOGIN_RATE_LIMIT, scope="login", methods=["POST"])
def login():
    # Decided before anything else: an unsafe target is dropped, never redirected to after
    # the session is made (a broken redirect used to fail after the login).
    target = safe_next(request.args.get("next")) or url_for("web.dashboard")
    form = LoginForm()
    error = None
    status = 200
    retry_after = None
    if form.validate_on_submit():
        try:
            user = accounts.login(
                db.session, form.email.data, form.password.data, key=pseudonym_key(),
                throttle=throttle_policy(),
            )
        except (Unauthenticated, RateLimited) as exc:
            # Record the refusal (and count the failure) in a transaction of its own, then
            # show the form again.
            from market.audit import services as audit

            db.session.rollback()
            if exc.after_rollback is not None:
                exc.after_rollback()
            type_, subject, data = exc.audit
            audit.record(db.session, type_, g.actor, subject, data)
            db.session.commit()
            error, status, retry_after = str(exc.message), exc.status, exc.retry_after
        else:
            start_session(user)
            return redirect(target)
    response = make_response(render_template("login.html", form=form, error=error), status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/logout")
def logout():
    form = LogoutForm()  # CSRFProtect has checked the token before this view runs
    if form.validate_on_submit() and g.get("user") is not None:
        accounts.logout(db.session, g.user)
    end_session()
    flash(_("You have signed out."), "info")
    return redirect(url_for("web.index"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """End every session and revoke every API token of the signed-in user."""
    sessions.logout_everywhere(db.session, g.user, g.actor)
    session.clear()
    flash(_("You have signed out on every device, and your API tokens are revoked."), "info")
    return redirect(url_for("web.index"))


def _without_lang(target: str | None) -> str | None:
    """``target`` without its ``lang`` parameter, which would override the new choice."""
    if not target:
        return target
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


@bp.post("/language")
def choose_language():
    """The header's switcher: remember the language in a cookie and, for a signed-in user, on
    the user (so that it follows them to other browsers and to their API calls)."""
    from market.extensions import SUPPORTED_LOCALES

    lang = request.form.get("lang")
    target = safe_next(_without_lang(request.form.get("next"))) or url_for("web.index")
    if lang not in SUPPORTED_LOCALES:
        return redirect(target)
    if g.get("user") is not None:
        accounts.set_language(db.session, g.actor, g.user, lang)
    response = redirect(target)
    response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


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


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page says; pages link the SVG. The few
    hundred bytes are answered from memory (no file handle left to the server to close)."""
    import os

    from flask import Response, current_app

    path = os.path.join(current_app.static_folder or "", "favicon.ico")
    with open(path, "rb") as fh:
        data = fh.read()
    response = Response(data, mimetype="image/vnd.microsoft.icon")
    response.cache_control.public = True
    response.cache_control.max_age = 7 * 24 * 3600
    return response


@bp.get("/api/v1/docs")
@public
def api_docs():
    return render_template("api_docs.html")
