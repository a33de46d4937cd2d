"""Domain errors and the one error envelope.

Services raise the typed errors below; this module maps them to HTTP in one table and renders
every error (4xx, 5xx, raised in a view or outside one) as
``{"code", "status", "message", "errors"}`` for API clients, or an HTML page for browsers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from market.i18n import N_

log = logging.getLogger(__name__)


class DomainError(Exception):
    """Base class; ``status`` is the HTTP code the API answers with."""

    status = 400

    def __init__(
        self,
        message: str,
        errors: dict[str, Any] | None = None,
        *,
        audit: tuple[str, tuple[str, Any] | None, dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        #: ``(type, subject, data)`` of an event that must be recorded even though the
        #: request fails (a failed login, a refused query). Written after the rollback.
        self.audit = audit
        #: Seconds, sent as ``Retry-After`` (429, 503).
        self.retry_after = retry_after
        #: Work that must persist although the request fails (a failed-login count): run
        #: after the rollback, in the transaction that records ``audit``.
        self.after_rollback: Callable[[], None] | None = None


class ValidationFailed(DomainError):
    status = 422


class Unauthenticated(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class TooLarge(DomainError):
    status = 413


class RateLimited(DomainError):
    status = 429


#: The pure packages raise their own typed errors; this table is the one place that maps
#: them to HTTP. Subclasses match their nearest listed base. ``(dotted class path, status)``.
EXTERNAL_ERRORS: list[tuple[str, int]] = [
    ("pricing.errors.InvalidScope", 422),
    ("pricing.errors.InvalidParameters", 422),
    ("pricing.errors.NotPriceable", 422),
    ("pricing.errors.InvalidRevenueInput", 422),
    ("pricing.errors.PricingError", 422),
    ("licenses.errors.IllegalTransition", 409),
    ("licenses.errors.InvalidPolicy", 422),
    ("licenses.errors.InvalidSplit", 422),
    ("licenses.errors.InvalidRefund", 422),
    ("licenses.errors.InvalidPaymentRequest", 422),
    ("licenses.errors.InvalidWebhook", 400),
    ("licenses.errors.PaymentProviderError", 502),
    ("sandbox.errors.PolicyViolation", 422),
    ("sandbox.errors.QueryTimeout", 422),
    ("sandbox.errors.ResourceLimit", 422),
    ("market.pipeline.errors.PipelineError", 422),
]


def _resolve_external() -> list[tuple[type[BaseException], int]]:
    from importlib import import_module

    resolved = []
    for path, status in EXTERNAL_ERRORS:
        module, _, name = path.rpartition(".")
        try:
            resolved.append((getattr(import_module(module), name), status))
        except (ImportError, AttributeError):
            continue
    return resolved


def external_status(exc: BaseException) -> int | None:
    for cls, status in _resolve_external():
        if isinstance(exc, cls):
            return status
    return None


def external_errors(exc: BaseException) -> dict | None:
    """Field errors of a pure-package exception, if it offers them."""
    for attr in ("to_errors",):
        fn = getattr(exc, attr, None)
        if callable(fn):
            return fn()
    rule = getattr(exc, "rule", None)
    return {"rule": rule} if rule else None


def envelope(code: int, message: str | None = None, errors: dict | None = None) -> dict:
    body: dict[str, Any] = {
        "code": code,
        "status": HTTPStatus(code).phrase,
        # str(): a lazy (not yet translated) message is rendered in the request's locale.
        "message": str(message or HTTPStatus(code).description or HTTPStatus(code).phrase),
    }
    if errors:
        body["errors"] = errors
    return body


def wants_json() -> bool:
    """API paths always get JSON; elsewhere, whatever the client prefers."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes[
        "text/html"
    ]


def _render(code: int, message: str | None, errors: dict | None = None):
    if wants_json():
        response = jsonify(envelope(code, message, errors))
        response.status_code = code
        return response
    return render_template("error.html", code=code, message=message, errors=errors or {}), code


def _after_error(
    code: int, message: str, event: tuple | None = None,
    after_rollback: Callable[[], None] | None = None,
) -> None:
    """Roll back the failed request's work, then record security-relevant refusals.

    The denial event goes in a transaction of its own: the request's transaction is being
    rolled back, and a regulator must still see that someone was refused.
    """
    from market.extensions import db

    db.session.rollback()
    if event is None and after_rollback is None and code not in (401, 403, 429):
        return
    from market.accounts.actor import ANONYMOUS
    from market.audit import services as audit

    try:
        if after_rollback is not None:
            after_rollback()
        if event is not None:
            type_, subject, data = event
            audit.record(db.session, type_, g.get("actor") or ANONYMOUS, subject, data)
        elif code == 429:
            audit.record(
                db.session, "access.rate_limited", g.get("actor") or ANONYMOUS, None,
                {"method": request.method, "path": request.path},
            )
        else:
            audit.record_denial(code=code, message=message)
        db.session.commit()
    except Exception:  # pragma: no cover - a broken DB must not mask the original error
        log.exception("could not record the refusal event")
        db.session.rollback()


OUT_OF_RANGE = N_("A number or date in the request is out of range.")
TOO_MANY = N_("Too many requests; slow down and try again later.")
INTERNAL = N_("Something went wrong on our side. The error has been logged.")
#: Werkzeug's default descriptions are English; a person reads these instead (#15).
HTTP_MESSAGES: dict[int, str] = {
    400: N_("The request could not be understood."),
    401: N_("Sign in first."),
    403: N_("You do not have permission to do this."),
    404: N_("The page or object was not found."),
    405: N_("This method is not allowed here."),
    406: N_("No acceptable answer format was asked for."),
    409: N_("The request conflicts with the current state."),
    413: N_("The request is too large."),
    415: N_("This content type is not supported."),
}


def _out_of_range(exc: BaseException) -> bool:
    """Errors that only a too-large or impossible value in the request can cause."""
    if isinstance(exc, OverflowError):
        return True
    try:
        from sqlalchemy.exc import DataError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return False
    # PostgreSQL: numeric_value_out_of_range (22003), datetime_field_overflow (22008).
    return isinstance(exc, DataError) and getattr(exc.orig, "sqlstate", None) in {"22003", "22008"}


#: Retry-After (seconds) sent with a 503 while the database cannot be reached.
DB_RETRY_AFTER_SECONDS = 30


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached (refused, down, gone mid-request, disk missing),
    as opposed to a query that failed: the client should retry, not report a bug."""
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        # PostgreSQL: connection exceptions (08), shutdown / cannot connect now (57P0x).
        return sqlstate.startswith("08") or sqlstate.startswith("57P")
    text = str(exc.orig).lower()
    # psycopg before a connection exists carries no sqlstate; SQLite names its failures.
    return any(marker in text for marker in (
        "connection", "could not connect", "unable to open database", "disk i/o error",
        "server closed", "terminating",
    ))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError):
        _after_error(exc.status, exc.message, exc.audit, exc.after_rollback)
        response = _render(exc.status, exc.message, exc.errors)
        if exc.retry_after is not None:
            response = make_response(response)
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        from market.i18n import translate

        code = exc.code or 500
        errors = None
        message = exc.description
        if message == type(exc).description and code in HTTP_MESSAGES:
            message = translate(HTTP_MESSAGES[code])
        # flask-smorest / webargs put field errors in exc.data["messages"].
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and "messages" in data:
            messages = data["messages"]
            # webargs nests by location ("json", "query", "form"); flatten one level.
            if isinstance(messages, dict) and len(messages) == 1:
                (only,) = messages.values()
                errors = only if isinstance(only, dict) else messages
            else:
                errors = messages
            from market.field_messages import SCHEMA_ENVELOPE, translate_errors
            from market.i18n import translate

            errors = translate_errors(errors)
            message = translate(SCHEMA_ENVELOPE)
        if code == 429:
            message = translate(TOO_MANY)
        _after_error(code, message or HTTPStatus(code).phrase)
        response = make_response(_render(code, message, errors))
        # What the exception says about retrying or the allowed methods (405 → Allow).
        for name, value in exc.get_headers():
            if name in ("Allow", "Retry-After", "WWW-Authenticate"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        from market.i18n import translate

        status = external_status(exc)
        if status is not None:
            # The msgid (with its values apart) where the error keeps one: its formatted
            # English ``message`` is not a msgid, so it would stay English.
            params = getattr(exc, "params", None)
            if params and _is_pipeline_error(exc):
                # Codes in its values (a treatment, a PII kind) named in the reader's language.
                from market.datasets.reasons import labelled

                params = labelled(params)
            message = translate(
                (getattr(exc, "msgid", None) if params else None)
                or getattr(exc, "message", None)
                or str(exc),
                params,
            )
            _after_error(status, message, getattr(exc, "audit", None))
            return _render(status, message, external_errors(exc))
        if _out_of_range(exc):
            # A number the schema let through but no column or date can hold (an id past
            # 2**63 on SQLite, past 2**31 in a PostgreSQL integer, a year past 9999): the
            # client's mistake, not ours. The value itself stays out of the message.
            log.info("out-of-range value on %s %s: %s", request.method, request.path,
                     type(exc).__name__)
            _after_error(422, OUT_OF_RANGE)
            return _render(422, translate(OUT_OF_RANGE))
        if database_unavailable(exc):
            log.error("database unavailable on %s %s: %s", request.method, request.path,
                      type(exc).__name__)
            from flask_babel import gettext as _

            message = _("The service is temporarily unavailable; try again shortly.")
            _after_error(503, message)
            response = make_response(_render(503, message))
            response.headers["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
            return response
        # The message is generic on purpose: engine errors and data values stay in the log.
        log.exception("unhandled error on %s %s", request.method, request.path)
        _after_error(500, "internal error")
        return _render(500, translate(INTERNAL))


def _is_pipeline_error(exc: BaseException) -> bool:
    from market.pipeline.errors import PipelineError

    return isinstance(exc, PipelineError)
