"""Resolving the caller of each request: a Bearer token (API) or a browser session (web).

Sets ``g.user`` and ``g.actor``. API requests that ride on a browser session must carry the
CSRF token, so a cookie alone never authorizes a state change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import wraps

from flask import Flask, current_app, g, has_request_context, redirect, request, session, url_for
from flask.ctx import _AppCtxGlobals
from flask_babel import lazy_gettext as _l
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

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
    # The OpenAPI document says so: no token needed (flask-smorest reads ``_apidoc`` when the
    # blueprint is registered, after this decorator ran).
    apidoc = getattr(view, "_apidoc", None)
    if isinstance(apidoc, dict):
        manual = dict(apidoc.get("manual_doc", {}))
        manual["security"] = []
        view._apidoc = {**apidoc, "manual_doc": manual}
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


class RequestGlobals(_AppCtxGlobals):
    """``flask.g`` with ``g.user`` and ``g.token`` loaded on first use for token callers.

    A Bearer token is checked on every request by one Core statement (``accounts.token_caller``:
    revocation, expiry and a deactivated user take effect at once), which gives the actor, the
    user's id and language; most API endpoints need nothing more, so the ORM ``User`` and
    ``ApiToken`` are only loaded if a view reads ``g.user`` or ``g.token``.
    """

    def __getattr__(self, name: str):
        loader = _LAZY.get(name)
        if loader is None or "_lazy_" + name not in self.__dict__:
            raise AttributeError(name)
        value = loader(self.__dict__.pop("_lazy_" + name))
        self.__dict__[name] = value
        return value

    def get(self, name: str, default=None):
        if name not in self.__dict__ and "_lazy_" + name in self.__dict__:
            return getattr(self, name)
        return self.__dict__.get(name, default)

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__ or "_lazy_" + item in self.__dict__


def _load_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(_l("The token is unknown, expired or revoked."))
    return user


def _load_token(token_id: int):
    from market.accounts.models import ApiToken

    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise Unauthenticated(_l("The token is unknown, expired or revoked."))
    return token


_LAZY = {"user": _load_user, "token": _load_token}


def load_caller() -> None:
    g.user = None
    g.user_id = None
    g.user_language = None
    g.actor = ANONYMOUS
    g.via = None
    g.token = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(_l("Send the token as 'Authorization: Bearer <token>'."))
        found = accounts.token_caller(db.session, token.strip())
        if found is None:
            raise Unauthenticated(_l("The token is unknown, expired or revoked."))
        del g.user, g.token
        g._lazy_user, g._lazy_token = found.user_id, found.token_id
        g.user_id, g.user_language, g.via = found.user_id, found.language, "token"
        g.actor = found.actor
        return
    if request.endpoint != "static":
        user = _from_session()
        if user is not None:
            g.user, g.via = user, "session"
            g.user_id, g.user_language = user.id, user.language
            if request.path.startswith("/api/") and request.method not in _SAFE:
                csrf.protect()
    if g.user is not None:
        g.actor = Actor.from_user(g.user)
    elif request.path.startswith("/api/") and not _open_to_anonymous():
        raise Unauthenticated(_l("Sign in, or send a valid API token."))


def current_actor() -> Actor:
    """The authenticated actor; raises Unauthenticated for anonymous callers."""
    if g.get("user_id") is None:
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


# ------------------------------------------------------- authorization before validation


class InvalidArguments(Mapping):
    """Stands in for a view's arguments that failed validation (see ``AuthorizationFirst``).

    It has the schema's field names as keys (so ``**body`` still unpacks), and every value is
    an :class:`_Invalid` that raises the parser's 422 as soon as anything is done with it. A
    view checks the caller first, so a caller who may not use the endpoint gets the 403 or
    404 and never learns the field rules; a caller who may gets the 422.
    """

    def __init__(self, error: HTTPException, fields: list[str]):
        self.error = error
        self.fields = fields
        self.used = False

    def fail(self):
        self.used = True
        raise self.error

    def __getitem__(self, key):
        if key not in self.fields:
            raise KeyError(key)
        return _Invalid(self)

    def __iter__(self):
        return iter(self.fields)

    def __len__(self):
        return len(self.fields)


def _raise_invalid(self, *args, **kwargs):
    object.__getattribute__(self, "_owner").fail()


class _Invalid:
    """A value that failed validation: any use of it raises the 422."""

    __slots__ = ("_owner",)

    def __init__(self, owner: InvalidArguments):
        object.__setattr__(self, "_owner", owner)

    def __repr__(self) -> str:  # logging must not raise
        return "<invalid argument>"

    __getattr__ = __setattr__ = __call__ = __str__ = __format__ = __bytes__ = _raise_invalid
    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = __hash__ = _raise_invalid
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _raise_invalid
    __int__ = __float__ = __index__ = __round__ = __neg__ = __abs__ = _raise_invalid
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _raise_invalid
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __rmod__ = _raise_invalid


class AuthorizationFirst(FlaskParser):
    """flask-smorest's argument parser, with validation errors handed to the view late.

    A 422 found while parsing is not raised before the view runs: the view gets an
    :class:`InvalidArguments` instead, which raises it when first used, after the view's
    permission checks. If the view never uses it, :func:`deferred_validation_guard` turns the
    response into that 422 anyway (and the request's work is rolled back), so no invalid
    input is ever accepted.
    """

    def parse(self, argmap, req=None, **kwargs):
        try:
            return super().parse(argmap, req, **kwargs)
        except HTTPException as exc:
            if exc.code != 422 or not has_request_context():
                raise
            schema = self._get_schema(argmap, req or request)
            fields = [name for name, field in schema.fields.items() if not field.dump_only]
            invalid = InvalidArguments(exc, fields)
            g.setdefault("invalid_arguments", []).append(invalid)
            return invalid


#: What a view may answer although its arguments were invalid: the caller may not call it.
_REFUSALS = {401, 403, 404, 429}


def deferred_validation_guard(response):
    """A request whose arguments were invalid answers their 422, unless the view refused the
    caller first (401, 403, 404, 429). Whatever else the view did is rolled back: a view
    that ignored its invalid arguments, or stumbled on them in some other way (a 409, a 500),
    accepts nothing."""
    pending = g.get("invalid_arguments")
    if not pending or response.status_code in _REFUSALS or response.status_code == 422:
        return response
    from market.extensions import db

    db.session.rollback()
    return current_app.make_response(current_app.handle_user_exception(pending[0].error))


def init_auth(app: Flask) -> None:
    import flask_smorest.arguments

    # The one parser every smorest Blueprint uses (looked up per request): authorization
    # comes before validation on every /api/ route (#14.8).
    parser = flask_smorest.arguments.ArgumentsMixin.ARGUMENTS_PARSER
    if not isinstance(parser, AuthorizationFirst):
        parser.__class__ = AuthorizationFirst
    app.app_ctx_globals_class = RequestGlobals
    app.before_request(load_caller)
    app.after_request(_no_session_on_error)
