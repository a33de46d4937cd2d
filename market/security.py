"""Security headers for every response, and guards on what a request may carry.

Guards (before the view): an id in the URL that no row can hold is a 404; a JSON body is
capped at ``MARKET_MAX_JSON_BYTES`` (413) and refused (400) when nested or numbered past what
the parser survives.

The CSP allows scripts and styles only from this origin: no inline scripts, no ``on*=``
handlers, no CDNs (every asset is vendored under /static). Pages pass data to scripts through
``data-*`` attributes or ``<script type="application/json">`` blocks, which are not executed.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, request

from market.i18n import N_, translate

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Swagger UI sets inline styles from its bundle; the docs page alone gets them.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def _headers(response):
    response.headers.setdefault(
        "Content-Security-Policy", DOCS_CSP if request.path == "/api/v1/docs" else CSP
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.path.startswith("/api/") or getattr(request, "_market_no_store", False):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


DEFAULT_MAX_JSON_BYTES = 1024 * 1024

#: The largest id any table can hold on every backend (PostgreSQL ``integer``).
MAX_PATH_ID = 2**31 - 1


def _bounded_path_ids() -> None:
    """An id in the URL that no row can have is simply not found (not a database error)."""
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and not 0 <= value <= MAX_PATH_ID:
            from flask_babel import gettext as _

            from market.errors import NotFound

            raise NotFound(_("No such object."))


def _json_body_guard() -> None:
    """Check a JSON body before anyone parses it: at most ``MARKET_MAX_JSON_BYTES`` (413; a
    JSON document is held in memory whole, unlike a streamed upload), and no shape that makes
    the parser itself fail (400): nesting past ``MAX_JSON_DEPTH`` (RecursionError) or a number
    past Python's integer-string limit (ValueError)."""
    if not request.is_json or request.method not in _BODY_METHODS:
        return
    limit = current_app.config.get("MARKET_MAX_JSON_BYTES", DEFAULT_MAX_JSON_BYTES)
    length = request.content_length
    if limit and length is not None and length > limit:
        _too_large(limit)
    if length is None:
        # Chunked: read at most one byte more than allowed; what was read stays cached.
        data = request.stream.read(limit + 1) if limit else request.stream.read()
        if limit and len(data) > limit:
            _too_large(limit)
        request._cached_data = data  # type: ignore[attr-defined]
    problem = json_shape_problem(request.get_data(cache=True))
    if problem:
        from werkzeug.exceptions import BadRequest

        raise BadRequest(problem)


MAX_JSON_DEPTH = 64
MAX_JSON_NUMBER_DIGITS = 1000
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
_LONG_DIGITS = re.compile(rb"\d{%d,}" % (MAX_JSON_NUMBER_DIGITS + 1))


def json_shape_problem(data: bytes) -> str | None:
    """Why ``data`` would break the JSON parser rather than fail validation, or None.

    It does not validate JSON (the parser does that); it only looks for what the parser
    cannot survive. Cheap for ordinary bodies: the scan runs only when there are more
    brackets than the depth limit or a long run of digits somewhere.
    """
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH and not _LONG_DIGITS.search(data):
        return None
    bare = _JSON_STRING.sub(b'""', data)  # brackets and digits inside strings are text
    depth = 0
    for match in _JSON_BRACKET.finditer(bare):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            return translate(N_("The JSON body is nested more than %(depth)s levels deep."),
                             {"depth": MAX_JSON_DEPTH})
    if _LONG_DIGITS.search(bare):
        return translate(N_("The JSON body has a number with more than %(digits)s digits."),
                         {"digits": MAX_JSON_NUMBER_DIGITS})
    return None


def _too_large(limit: int) -> None:
    from flask_babel import gettext as _

    from market.errors import TooLarge

    raise TooLarge(_("The JSON body is larger than %(limit)s bytes.", limit=limit))


_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _nul_field(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string in ``value`` holding a NUL, or None."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return path or "body"
            found = _nul_field(item, name)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_field(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def _refuse_nul(field: str) -> None:
    from flask_babel import gettext as _

    from market.errors import ValidationFailed

    raise ValidationFailed(
        _("The request contains a NUL character (U+0000) in %(field)s.", field=field),
        {field: [_("NUL characters are not allowed.")]},
    )


def _nul_guard() -> None:
    """NUL (U+0000) in a query parameter, a path segment, a form field or a JSON string is
    refused here, before any view: PostgreSQL cannot store it in text and used to answer 500.
    (Uploaded files are the pipeline's business: it reports NUL cells itself.)"""
    if b"%00" in request.query_string or b"\x00" in request.query_string:
        for key, values in request.args.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                _refuse_nul(key.replace("\x00", "") or "query")
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            _refuse_nul(key)
    if request.mimetype == "application/x-www-form-urlencoded":
        for key, values in request.form.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                _refuse_nul(key.replace("\x00", "") or "form")
    if request.is_json and request.method in _BODY_METHODS:
        data = request.get_data(cache=True)
        # A NUL inside a JSON string is always the escape (a raw control byte is invalid JSON).
        if b"\\u0000" in data:
            field = _nul_field(request.get_json(silent=True))
            if field:
                _refuse_nul(field)


def schema_state() -> str:
    """``ok`` if the database is at the migrations' head, ``outdated`` if at another
    revision, ``missing`` if it was never migrated (an empty database is not healthy)."""
    import sqlalchemy as sa

    from market.extensions import db

    heads = _migration_heads()
    try:
        current = set(db.session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    except Exception:
        db.session.rollback()
        return "missing"
    if not current:
        return "missing"
    return "ok" if current == heads else "outdated"


def _migration_heads() -> set[str]:
    cached = current_app.extensions.get("market_migration_heads")
    if cached is None:
        from pathlib import Path

        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option(
            "script_location", str(Path(__file__).resolve().parent.parent / "migrations")
        )
        cached = set(ScriptDirectory.from_config(config).get_heads())
        current_app.extensions["market_migration_heads"] = cached
    return cached


DEFAULT_MAX_URL_BYTES = 8000


def _url_length_guard() -> None:
    """A URL longer than ``MARKET_MAX_URL_BYTES`` is a 414 in the error envelope (gunicorn's
    own limit, ``limit_request_line`` in gunicorn.conf.py, is set just above it)."""
    limit = current_app.config.get("MARKET_MAX_URL_BYTES", DEFAULT_MAX_URL_BYTES)
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    length = len(raw) if raw else (
        len(request.path.encode("utf-8")) + len(request.query_string) + 1
    )
    if limit and length > limit:
        from flask_babel import gettext as _
        from werkzeug.exceptions import RequestURITooLarge

        raise RequestURITooLarge(
            _("The URL is longer than %(limit)s bytes; send long parameters in a JSON body.",
              limit=limit)
        )


def init_security(app: Flask) -> None:
    app.before_request(_url_length_guard)
    app.before_request(_bounded_path_ids)
    app.before_request(_json_body_guard)
    app.before_request(_nul_guard)
    app.after_request(_headers)
