"""The licence state machine.

The whole machine is the :data:`TRANSITIONS` table; :func:`transition` only looks it up, so the
table is what the tests enumerate and what the documentation shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from licenses.errors import IllegalTransition


class LicenseStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    AWAITING_PAYMENT = "awaiting_payment"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    REJECTED = "rejected"


class LicenseEvent(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    PAY_SETTLED = "pay_settled"
    EXPIRE = "expire"
    REVOKE = "revoke"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


_S = LicenseStatus
_E = LicenseEvent

#: (current status, event) → next status. Every pair not listed is illegal.
TRANSITIONS: Mapping[tuple[LicenseStatus, LicenseEvent], LicenseStatus] = MappingProxyType(
    {
        (_S.PENDING_REVIEW, _E.APPROVE): _S.AWAITING_PAYMENT,
        (_S.PENDING_REVIEW, _E.REJECT): _S.REJECTED,
        (_S.AWAITING_PAYMENT, _E.PAY_SETTLED): _S.ACTIVE,
        # A suspended licence still runs out: suspension pauses access, not the clock.
        (_S.ACTIVE, _E.EXPIRE): _S.EXPIRED,
        (_S.SUSPENDED, _E.EXPIRE): _S.EXPIRED,
        (_S.PENDING_REVIEW, _E.REVOKE): _S.REVOKED,
        (_S.AWAITING_PAYMENT, _E.REVOKE): _S.REVOKED,
        (_S.ACTIVE, _E.REVOKE): _S.REVOKED,
        (_S.SUSPENDED, _E.REVOKE): _S.REVOKED,
        (_S.ACTIVE, _E.SUSPEND): _S.SUSPENDED,
        (_S.SUSPENDED, _E.REINSTATE): _S.ACTIVE,
    }
)

#: Statuses no event leads out of.
TERMINAL_STATUSES: frozenset[LicenseStatus] = frozenset(
    s for s in LicenseStatus if not any(cur == s for cur, _ in TRANSITIONS)
)


def transition(current: LicenseStatus | str, event: LicenseEvent | str) -> LicenseStatus:
    """The status a licence in ``current`` moves to on ``event``.

    Raises :class:`IllegalTransition` if the event is not allowed in that status, and
    ``ValueError`` if ``current`` or ``event`` is not a known status or event name.
    """
    status = LicenseStatus(current)
    ev = LicenseEvent(event)
    try:
        return TRANSITIONS[(status, ev)]
    except KeyError:
        raise IllegalTransition(status.value, ev.value) from None


def allowed_events(current: LicenseStatus | str) -> frozenset[LicenseEvent]:
    """The events accepted in ``current`` (for UI buttons); raises ``ValueError`` if unknown."""
    status = LicenseStatus(current)
    return frozenset(ev for cur, ev in TRANSITIONS if cur == status)


def grants_access(status: LicenseStatus | str) -> bool:
    """Whether a licence in ``status`` may run sandbox queries and lookups."""
    return LicenseStatus(status) is LicenseStatus.ACTIVE
