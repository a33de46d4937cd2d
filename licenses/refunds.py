"""Refunds on revocation, and their exact split back over the original payment.

Refund policy (stated in every paid license's ODRL duty, :data:`licenses.odrl.REFUND_RULE`):
the buyer gets back the unused share of what it paid for, measured on both things a license
sells — its term and its query quota — and the **smaller** of the two shares applies, so a
license whose queries are all spent refunds nothing however much term is left, and one whose
term is over refunds nothing however many queries are left (:func:`usage_refund`).

Rounding policy: the refund is **rounded up** to the fen. A
revocation is the platform's act, so a fraction of a fen goes to the buyer, not to the
platform. Whether a revocation refunds at all (revocation for the buyer's breach may not) is
the caller's decision; this module only does the arithmetic.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction

from licenses.errors import InvalidRefund, InvalidSplit
from licenses.split import Split, apportion, check_fen
from market.i18n import N_

_MICROSECOND = timedelta(microseconds=1)

#: The key of the operator's fee in the party map used by :func:`split_refund`. Department ids
#: are ints or strings, so a tuple cannot collide with one.
_OPERATOR = ("operator",)


def _micros(delta: timedelta) -> int:
    return delta // _MICROSECOND


def prorata_refund(
    amount_fen: int, starts_at: datetime, ends_at: datetime, revoked_at: datetime
) -> int:
    """The part of ``amount_fen`` for the time left between ``revoked_at`` and ``ends_at``.

    ``amount × remaining / term`` in exact microsecond arithmetic, rounded up. A revocation
    before the start refunds everything; one at or after the end refunds nothing.

    Raises :class:`InvalidRefund` if the amount is negative or not an int, a datetime is naive
    (no timezone), or the term does not end after it starts.
    """
    try:
        check_fen(amount_fen, "amount")
    except InvalidSplit as exc:
        raise InvalidRefund(exc.message, **exc.params) from None
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at), ("revoked_at", revoked_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidRefund(N_("%(name)s must be timezone-aware"), name=name)
    term = _micros(ends_at - starts_at)
    if term <= 0:
        raise InvalidRefund(N_("ends_at must be after starts_at"))
    remaining = min(max(_micros(ends_at - revoked_at), 0), term)
    return math.ceil(Fraction(amount_fen * remaining, term))


def _share_left(total: int, left: int) -> Fraction:
    for name, value in (("query_quota", total), ("quota_remaining", left)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRefund(N_("%(name)s must be an integer"), name=name)
        if value < 0:
            raise InvalidRefund(N_("%(what)s must not be negative"), what=name)
    if left > total:
        raise InvalidRefund(N_("quota_remaining exceeds query_quota"))
    # A license without a quota (0 queries) is bounded by its term alone.
    return Fraction(left, total) if total else Fraction(1)


def usage_refund(
    amount_fen: int,
    starts_at: datetime,
    ends_at: datetime,
    revoked_at: datetime,
    query_quota: int,
    quota_remaining: int,
) -> int:
    """The part of ``amount_fen`` that was not used: ``amount × min(term left / term,
    queries left / quota)``, exact, rounded up to the fen.

    Raises :class:`InvalidRefund` like :func:`prorata_refund`, and if the quota figures are
    not non-negative ints or more queries are left than were granted.
    """
    quota_share = _share_left(query_quota, quota_remaining)
    term_refund = prorata_refund(amount_fen, starts_at, ends_at, revoked_at)
    if quota_share == 1:
        return term_refund
    term = _micros(ends_at - starts_at)
    remaining = min(max(_micros(ends_at - revoked_at), 0), term)
    share = min(Fraction(remaining, term), quota_share)
    return math.ceil(amount_fen * share)


def split_refund(refund_fen: int, original: Split, already_refunded: Split | None = None) -> Split:
    """Divide a refund over the parties of ``original``, in proportion to what each still holds.

    The weights are each party's original share minus what earlier refunds took from it, so
    repeated partial refunds never take more from a party than it received, and refunding
    everything that is left returns each party's remaining share exactly. Rounding is
    largest remainder (:func:`licenses.split.apportion`), so the parts sum exactly to
    ``refund_fen``.

    Raises :class:`InvalidRefund` if the refund is negative, exceeds what is left, or
    ``already_refunded`` names a party ``original`` does not have or takes more than it had.
    """
    try:
        check_fen(refund_fen, "refund")
    except InvalidSplit as exc:
        raise InvalidRefund(exc.message, **exc.params) from None
    previous = already_refunded or Split(0, {})
    unknown = set(previous.departments) - set(original.departments)
    if unknown:
        raise InvalidRefund(
            N_("earlier refunds name departments not in the split: %(departments)s"),
            departments=sorted(map(str, unknown)),
        )

    remaining: dict[object, int] = {_OPERATOR: original.operator_fee - previous.operator_fee}
    for dept, amount in original.departments.items():
        remaining[dept] = amount - previous.departments.get(dept, 0)
    if any(v < 0 for v in remaining.values()):
        raise InvalidRefund(N_("earlier refunds exceed a party's original share"))
    left = sum(remaining.values())
    if refund_fen > left:
        raise InvalidRefund(
            N_("refund of %(refund)s fen exceeds the %(left)s fen left to refund"),
            refund=refund_fen, left=left,
        )

    parts = apportion(refund_fen, remaining)
    return Split(
        operator_fee=parts.pop(_OPERATOR),
        departments={dept: parts[dept] for dept in original.departments},
    )
