"""Resolving the caller of each request: a Bearer token (API) or a browser session (web).

Sets ``g.user`` and ``g.actor``. API requests that ride on a browser session must carry the
CSRF token, so a cookie alone never authorizes a state change.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from flask import Flask, current_app, g, redirect, request, session, url_for

from market.accounts import services as accounts
from market.accounts.actor import ANONYMOUS, Actor
from market.accounts.models import User
from market.db import utcnow
from market.errors import Unauthenticated
from market.extensions import csrf, db

_SAFE = {"GET", "HEAD", "OPTIONS"}


def _from_session() -> User | None:
    user_id = session.get("uid")
    if not user_id:
        return None
    user = db.session.get(User, user_id)
    last = session.get("seen")
    idle = dt.timedelta(minutes=current_app.config["MARKET_SESSION_IDLE_MINUTES"])
    expired = last is None or utcnow() - dt.datetime.fromtimestamp(last, dt.UTC) > idle
    if user is None or not user.is_active or session.get("epoch") != user.session_epoch or expired:
        session.clear()
        return None
    session["seen"] = int(utcnow().timestamp())
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
            raise Unauthenticated("Send the token as 'Authorization: Bearer <token>'.")
        found = accounts.resolve_token(db.session, token.strip())
        if found is None:
            raise Unauthenticated("The token is unknown, expired or revoked.")
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
        raise Unauthenticated("Sign in, or send a valid API token.")


def current_actor() -> Actor:
    """The authenticated actor; raises Unauthenticated for anonymous callers."""
    if g.get("user") is None:
        raise Unauthenticated("Sign in, or send a valid API token.")
    return g.actor


def start_session(user: User) -> None:
    """Log a browser in: a fresh session (no fixation), bound to the user's epoch."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["epoch"] = user.session_epoch
    session["seen"] = int(utcnow().timestamp())


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("web.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def init_auth(app: Flask) -> None:
    app.before_request(load_caller)
