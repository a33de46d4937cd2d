"""One small named check per action on consents and lookups (role *and* object).

``subject_code`` is the credit code of the caller's organization, which the services load;
an enterprise acts on a consent only when the consent names its own code.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from market.accounts.actor import Actor
from market.accounts.models import OrgStatus
from market.consents.models import Consent

#: The 403 message for an organization the operator has not admitted yet.
AWAITING_ADMISSION = _l(
    "Your organization is awaiting admission by the operator; it can act on consents once "
    "it is admitted."
)


def is_active(actor: Actor) -> bool:
    return actor.is_user and actor.org_status == OrgStatus.active


def is_buyer(actor: Actor) -> bool:
    return actor.is_user and actor.role == "buyer"


def is_subject(actor: Actor) -> bool:
    return actor.is_user and actor.role == "subject"


def sees_all(actor: Actor) -> bool:
    return actor.is_user and actor.role in ("operator", "regulator")


def can_request_consent(actor: Actor) -> bool:
    """The role check; admission and the blacklist are checked with their own messages."""
    return is_buyer(actor)


def is_consent_subject(actor: Actor, consent: Consent, subject_code: str | None) -> bool:
    return (
        is_subject(actor)
        and subject_code is not None
        and subject_code == consent.subject_credit_code
    )


def can_view_consent(actor: Actor, consent: Consent, subject_code: str | None) -> bool:
    if sees_all(actor):
        return True
    if is_buyer(actor):
        return consent.buyer_org_id == actor.org_id
    return is_consent_subject(actor, consent, subject_code) and is_active(actor)


def can_decide_consent(actor: Actor, consent: Consent, subject_code: str | None) -> bool:
    return is_consent_subject(actor, consent, subject_code) and is_active(actor)


def can_revoke_consent(actor: Actor, consent: Consent, subject_code: str | None) -> bool:
    return can_decide_consent(actor, consent, subject_code)


def can_record_authorization(actor: Actor) -> bool:
    return actor.role == "operator" and is_active(actor)


def can_look_up(actor: Actor) -> bool:
    return is_buyer(actor)


def can_read_access_log(actor: Actor) -> bool:
    return is_subject(actor)
