"""Navigation, labels and the error handling shared by the license pages."""

from __future__ import annotations

from flask import flash, g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from licenses.errors import LicenseError
from market.errors import DomainError, Forbidden
from market.extensions import db
from market.i18n import translate
from market.web import registry

registry.nav_link(
    "licenses.index", _l("Licenses"), roles={"buyer", "operator", "regulator"}, order=45
)
registry.nav_link("licenses.review_queue", _l("License review"), roles={"operator"}, order=46)
registry.nav_link("licenses.settlements", _l("Settlements"), roles={"operator"}, order=47)
registry.nav_link(
    "licenses.revenue", _l("Revenue"), roles={"department", "operator", "regulator"}, order=48
)
registry.nav_link("licenses.blacklist", _l("Blacklist"), roles={"operator", "regulator"}, order=75)
registry.nav_link(
    "licenses.welfare_bodies", _l("Public-welfare bodies"), roles={"operator", "regulator"},
    order=76,
)

STATUS_LABELS = {
    "pending_review": _l("Pending review"),
    "awaiting_payment": _l("Awaiting payment"),
    "active": _l("Active"),
    "expired": _l("Expired"),
    "revoked": _l("Revoked"),
    "suspended": _l("Suspended"),
    "rejected": _l("Rejected"),
}


def failed(exc: DomainError | LicenseError, form=None) -> int:
    """Undo the failed change, keep any refusal event, and show the errors on the page."""
    db.session.rollback()
    event = getattr(exc, "audit", None)
    if event is not None:
        from market.audit import services as audit

        type_, subject, data = event
        audit.record(db.session, type_, g.actor, subject, data)
        db.session.commit()
    # A pure licence error carries an English msgid and its values: shown in the page's language.
    message = translate(getattr(exc, "message", None) or str(exc), getattr(exc, "params", None))
    placed = False
    for name, messages in (getattr(exc, "errors", None) or {}).items():
        field = getattr(form, name, None) if form is not None else None
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + list(messages)
            placed = True
    if not placed:
        flash(message, "error")
    return getattr(exc, "status", 422)


def require(allowed: bool) -> None:
    if not allowed:
        raise Forbidden(_("You do not have permission to see this page."))
