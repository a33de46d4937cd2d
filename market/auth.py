"""Resolving the caller of each request: a Bearer token (API) or a browser session (web).

Sets ``g.user`` and ``g.actor``. API requests that ride on a browser session must carry the
CSRF token, so a cookie alone never authorizes a state change.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask_babel import lazy_gettext as _l

from market.accounts import services as accounts
from market.accounts import sessions as server_sessions
from market.accounts.actor import ANONYMOUS, Actor
from market.accounts.models import User
from market.accounts.sessions import SessionPolicy, ThrottlePolicy
from market.errors import Unauthenticated
from market.extensions import csrf, db

_SAFE = {"GET", "HEAD", "OPTIONS"}

#: Per client address, shared by the login form and ``POST /api/v1/auth/token`` (one bucket;
#: the per-account backoff is ``market.accounts.services.login``).
LOGIN_RATE_LIMIT = "10 per minute"


def session_policy() -> SessionPolicy:
    config = current_app.config
    return SessionPolicy(
        idle=dt.timedelta(minutes=config["MARKET_SESSION_IDLE_MINUTES"]),
        lifetime=dt.timedelta(hours=config["MARKET_SESSION_MAX_HOURS"]),
    )


def throttle_policy() -> ThrottlePolicy:
    config = current_app.config
    return ThrottlePolicy(
        free=config["MARKET_LOGIN_FREE_ATTEMPTS"],
        max_seconds=config["MARKET_LOGIN_BACKOFF_MAX_SECONDS"],
    )


def _from_session() -> User | None:
    """The user of a live server-side session, or None (and the cookie is emptied).

    A cookie without a session identifier (one made before sessions lived on the server)
    grants nothing.
    """
    sid = session.get("sid")
    if not sid:
        if session.get("uid"):
            session.clear()
        return None
    row = server_sessions.resolve_session(db.session, sid, session_policy())
    user = db.session.get(User, row.user_id) if row is not None else None
    if user is None or not user.is_active or session.get("epoch") != user.session_epoch:
        session.clear()
        return None
    g.session_sid = sid
    return user


def public(view):
    """Mark an API view method as open to anonymous callers.

    Every other ``/api/`` route answers 401 to an anonymous caller before its body or query is
    even parsed, so that nobody learns an endpoint's validation rules without a token.
    """
    view.market_public = True
    return view


def _open_to_anonymous() -> bool:
    if request.endpoint is None or request.method == "OPTIONS":
        return True  # 404 and 405 come from routing; OPTIONS reveals only the methods
    if request.blueprint == "api-docs":
        return True  # the OpenAPI document and its interactive page
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return getattr(view, "market_public", False)
    method = getattr(view_class, request.method.lower(), None)
    if method is None and request.method == "HEAD":
        method = getattr(view_class, "get", None)
    return getattr(method, "market_public", False)


def load_caller() -> None:
    g.user = None
    g.actor = ANONYMOUS
    g.via = None
    g.token = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(_l("Send the token as 'Authorization: Bearer <token>'."))
        found = accounts.resolve_token(db.session, token.strip())
        if found is None:
            raise Unauthenticated(_l("The token is unknown, expired or revoked."))
        g.user, g.via, g.token = found.user, "token", found
    elif request.endpoint != "static":
        user = _from_session()
        if user is not None:
            g.user, g.via = user, "session"
            if request.path.startswith("/api/") and request.method not in _SAFE:
                csrf.protect()
    if g.user is not None:
        g.actor = Actor.from_user(g.user)
    elif request.path.startswith("/api/") and not _open_to_anonymous():
        raise Unauthenticated(_l("Sign in, or send a valid API token."))


def current_actor() -> Actor:
    """The authenticated actor; raises Unauthenticated for anonymous callers."""
    if g.get("user") is None:
        raise Unauthenticated(_l("Sign in, or send a valid API token."))
    return g.actor


def session_values(user: User) -> dict:
    """Open a server-side session for ``user`` (flushed, not committed) and return what the
    cookie carries: the session identifier and the user's epoch."""
    return {"sid": server_sessions.open_session(db.session, user), "epoch": user.session_epoch}


def start_session(user: User) -> None:
    """Log a browser in: a fresh session (no fixation), held on the server.

    The cookie is only handed out if the response succeeds: an error page after this call
    (a failed commit, a broken redirect) sends no working session (see ``_no_session_on_error``).
    """
    session.clear()
    session.permanent = True
    session.update(session_values(user))
    g.session_started = True


def end_session() -> None:
    """Log this browser out: its server-side session ends, its cookie is emptied."""
    sid = session.get("sid")
    if sid:
        server_sessions.end_session(db.session, sid, "logout")
    session.clear()


def _no_session_on_error(response):
    if g.get("session_started") and response.status_code >= 400:
        session.clear()
    return response


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("web.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def init_auth(app: Flask) -> None:
    app.before_request(load_caller)
    app.after_request(_no_session_on_error)
