"""Names, in the reader's language, for the codes the platform stores.

Codes (event types, statuses, categories, refusal rules) stay stable and English in the
database and the API; pages show these names and keep the code in a ``title`` tooltip
(the ``label`` Jinja filter). Unknown codes are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from pricing.categories import CATEGORY_LABELS

EVENT_TYPES: Mapping[str, object] = {
    "access.denied": _l("Access denied"),
    "access.rate_limited": _l("Too many requests"),
    "access.unauthenticated": _l("Unauthenticated access"),
    "audit.verified": _l("Audit chain verified"),
    "audit.exported": _l("Audit log exported"),
    "auth.login": _l("Signed in"),
    "auth.login_failed": _l("Failed sign-in"),
    "auth.logout": _l("Signed out"),
    "accounts.language_changed": _l("Language chosen"),
    "auth.token_issued": _l("API token issued"),
    "auth.token_revoked": _l("API token revoked"),
    "blacklist.added": _l("Added to the blacklist"),
    "blacklist.removed": _l("Removed from the blacklist"),
    "blacklist.refused": _l("Refused: blacklisted"),
    "consent.requested": _l("Consent requested"),
    "consent.granted": _l("Consent granted"),
    "consent.denied": _l("Consent denied"),
    "consent.revoked": _l("Consent revoked"),
    "consent.recorded": _l("Authorization letter recorded"),
    "dataset.registered": _l("Dataset registered"),
    "dataset.uploaded": _l("Dataset version uploaded"),
    "dataset.processed": _l("Dataset version processed"),
    "dataset.failed": _l("Dataset processing failed"),
    "dataset.reviewed": _l("Dataset reviewed"),
    "dataset.listed": _l("Dataset listed"),
    "dataset.refused": _l("Dataset refused"),
    "dataset.treatments_changed": _l("Dataset treatments changed"),
    "dataset.edited": _l("Dataset description edited"),
    "dataset.change_proposed": _l("Dataset change proposed for review"),
    "dataset.change_reviewed": _l("Dataset change reviewed"),
    "dataset.change_superseded": _l("Dataset change superseded by a newer edit"),
    "dataset.privacy_changed": _l("Dataset privacy settings changed"),
    "dataset.withdrawn": _l("Dataset withdrawn"),
    "license.applied": _l("License applied for"),
    "license.created": _l("License created"),
    "license.approved": _l("License approved"),
    "license.rejected": _l("License rejected"),
    "license.activated": _l("License activated"),
    "license.expired": _l("License expired"),
    "license.suspended": _l("License suspended"),
    "license.reinstated": _l("License reinstated"),
    "license.revoked": _l("License revoked"),
    "license.free_refused": _l("Free license refused"),
    "lists.added": _l("Added to a red or black list"),
    "lists.removed": _l("Removed from a red or black list"),
    "lookup.performed": _l("Consented lookup"),
    "lookup.refused": _l("Lookup refused"),
    "organization.registered": _l("Organization registered"),
    "organization.created": _l("Organization created"),
    "organization.admitted": _l("Organization admitted"),
    "organization.refused": _l("Organization refused"),
    "payment.created": _l("Payment opened"),
    "payment.settled": _l("Payment settled"),
    "payment.failed": _l("Payment failed"),
    "payment.canceled": _l("Payment canceled"),
    "payment.mismatch": _l("Payment amount mismatch"),
    "payment.unapplied": _l("Payment not applied"),
    "payment.refunded": _l("Payment refunded"),
    "payment.refund_failed": _l("Refund failed"),
    "pricing.parameters_seeded": _l("Pricing parameters seeded"),
    "pricing.parameters_updated": _l("Pricing parameters updated"),
    "pricing.proposal_created": _l("Pricing proposal made"),
    "product.created": _l("Data product drafted"),
    "product.published": _l("Data product published"),
    "product.withdrawn": _l("Data product withdrawn"),
    "product.applied": _l("Data product applied for"),
    "license.use_refused": _l("Use refused: not in the data product"),
    "quote.created": _l("Quote issued"),
    "refund.credit_note_paid": _l("Credit note paid back"),
    "refund.retried": _l("Refund retried"),
    "revenue.payout": _l("Revenue paid out"),
    "sandbox.query": _l("Sandbox query"),
    "scenario.created": _l("Scenario drafted"),
    "scenario.revised": _l("Scenario revised"),
    "scenario.submitted": _l("Scenario submitted"),
    "scenario.approved": _l("Scenario approved"),
    "scenario.rejected": _l("Scenario rejected"),
    "user.created": _l("User created"),
    "welfare_body.added": _l("Public-welfare body added"),
    "welfare_body.removed": _l("Public-welfare body removed"),
}

LICENSE_STATUSES: Mapping[str, object] = {
    "pending_review": _l("Waiting for review"),
    "awaiting_payment": _l("Awaiting payment"),
    "active": _l("Active"),
    "expired": _l("Expired"),
    "revoked": _l("Revoked"),
    "suspended": _l("Suspended"),
    "rejected": _l("Rejected"),
}

CONSENT_STATUSES: Mapping[str, object] = {
    "requested": _l("Requested"),
    "granted": _l("Granted"),
    "denied": _l("Denied"),
    "revoked": _l("Revoked"),
    "expired": _l("Expired"),
}

PAYMENT_STATUSES: Mapping[str, object] = {
    "pending": _l("Waiting"),
    "settled": _l("Paid"),
    "failed": _l("Failed"),
    "canceled": _l("Canceled"),
    "paid": _l("Paid back"),
    "succeeded": _l("Refunded"),
}

#: Refusal reasons recorded on refused lookups and licenses (``data.reason`` / ``errors.rule``).
REFUSAL_RULES: Mapping[str, object] = {
    "no_valid_consent": _l("No valid consent"),
    "quota_exhausted": _l("Query quota used up"),
    "blacklisted": _l("Blacklisted"),
    "product_access": _l("Not granted by the data product"),
}

CATEGORIES: Mapping[str, object] = {key: _l(label) for key, label in CATEGORY_LABELS.items()}

#: Notes the platform writes itself (people's own notes are shown as they wrote them).
NOTES: Mapping[str, object] = {
    "default parameters": _l("Default parameters"),
}

KINDS: Mapping[str, Mapping[str, object]] = {
    "event": EVENT_TYPES,
    "license_status": LICENSE_STATUSES,
    "consent_status": CONSENT_STATUSES,
    "payment_status": PAYMENT_STATUSES,
    "rule": REFUSAL_RULES,
    "category": CATEGORIES,
    "note": NOTES,
}


def name(kind: str, code: object) -> str:
    """The name of ``code`` in the current locale, or the code itself when it has none."""
    label = KINDS[kind].get(str(code))
    return str(label) if label is not None else str(code)


def label_filter(code: object, kind: str) -> Markup:
    """``{{ e.type|label('event') }}``: the name, with the code in a tooltip."""
    if code is None or code == "":
        return Markup("")
    return Markup('<span class="code-label" title="{}">{}</span>').format(
        escape(str(code)), escape(name(kind, code))
    )
