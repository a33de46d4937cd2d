"""Flask extensions, created unbound at import time and bound in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from market.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
api = Api()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def per_user_key() -> str:
    """Rate-limit key: the signed-in user, else the client address."""
    from flask import g

    user_id = g.get("user_id")
    return f"user:{user_id}" if user_id is not None else get_remote_address()

SUPPORTED_LOCALES = ("zh", "en")


def select_locale() -> str:
    """The language of this request's messages and pages.

    In this order: ``?lang=`` (one request); the language the signed-in user chose (saved on
    the user, ``PATCH /api/v1/me`` or the header's switcher); the ``lang`` cookie (the
    switcher's choice before signing in); for API clients that are not a signed-in browser
    (tokens, anonymous calls), their ``Accept-Language``; else Chinese, the product's
    default: pages, and the API calls a page makes for its signed-in user, follow the page's
    language and not the browser's setting.
    """
    from flask import g, has_request_context

    if not has_request_context():
        return "zh"
    wanted = request.args.get("lang")
    if wanted in SUPPORTED_LOCALES:
        return wanted
    # The ORM user if this request loaded it (its language may have just changed), else the
    # language market.auth read with the caller (a token caller's user is loaded lazily).
    user = vars(g._get_current_object()).get("user")
    chosen = user.language if user is not None else g.get("user_language")
    if chosen in SUPPORTED_LOCALES:
        return chosen
    wanted = request.cookies.get("lang")
    if wanted in SUPPORTED_LOCALES:
        return wanted
    if request.path.startswith("/api/") and g.get("via") != "session":
        best = request.accept_languages.best_match(SUPPORTED_LOCALES)
        if best in SUPPORTED_LOCALES:
            return best
    return "zh"
