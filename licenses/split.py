"""Exact revenue split of a payment between the operator and the providing departments.

All arithmetic is in :class:`fractions.Fraction`; shares are integer fen. The departments'
part is apportioned with the largest-remainder (Hamilton) method, so the shares sum exactly to
the payment and each is within one fen of its exact quota.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from numbers import Rational
from typing import Any, NamedTuple, TypeVar

from licenses.errors import InvalidSplit
from market.i18n import N_

DepartmentId = int | str
Weight = int | Fraction | Decimal

K = TypeVar("K", bound=Hashable)


class SplitItem(NamedTuple):
    """One licensed dataset of a payment: its amount and who provides it, with weights.

    Plain ``(dataset_id, amount_fen, [(department_id, weight), ...])`` tuples work as well.
    """

    dataset_id: int | str
    amount_fen: int
    departments: Sequence[tuple[DepartmentId, Weight]]


@dataclass(frozen=True)
class Split:
    """Who gets what of one payment (or of one refund), in fen.

    ``departments`` is ordered by department id and lists every providing department, even
    one whose share rounds to 0, so that a statement can show it.
    """

    operator_fee: int
    departments: dict[DepartmentId, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.operator_fee + sum(self.departments.values())


def order_key(key: Any) -> tuple[Any, ...]:
    """A total order over ints, strings and tuples of them, used to break ties.

    Ids of mixed types would not compare with ``<``; ints sort before strings.
    """
    if isinstance(key, bool):
        raise InvalidSplit(N_("unsupported id type: %(type)s"), type=type(key).__name__)
    if isinstance(key, int):
        return (0, key)
    if isinstance(key, str):
        return (1, key)
    if isinstance(key, tuple):
        return (2, tuple(order_key(k) for k in key))
    raise InvalidSplit(N_("unsupported id type: %(type)s"), type=type(key).__name__)


def to_fraction(value: Any, what: str = "value") -> Fraction:
    """Exact conversion of an int, Fraction or Decimal; floats are refused (they are inexact).

    Raises :class:`InvalidSplit` for floats, bools, non-finite Decimals and other types.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidSplit(
            N_("%(what)s must be an int, Fraction or Decimal, not %(type)s"),
            what=what, type=type(value).__name__,
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidSplit(N_("%(what)s must be finite"), what=what)
        return Fraction(value)
    if isinstance(value, Rational):
        return Fraction(value.numerator, value.denominator)
    raise InvalidSplit(
        N_("%(what)s must be an int, Fraction or Decimal, not %(type)s"),
        what=what, type=type(value).__name__,
    )


def check_fen(amount: Any, what: str = "amount") -> int:
    """Return ``amount`` if it is a non-negative int (not a bool); raise InvalidSplit otherwise."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidSplit(N_("%(what)s must be an integer number of fen"), what=what)
    if amount < 0:
        raise InvalidSplit(N_("%(what)s must not be negative"), what=what)
    return amount


def apportion(total_fen: int, weights: Mapping[K, Weight]) -> dict[K, int]:
    """Divide ``total_fen`` in proportion to ``weights`` by the largest-remainder method.

    Each key gets the floor of its exact quota; the fen left over go, one each, to the keys
    with the largest fractional remainders, ties broken by :func:`order_key` of the key. The
    result is ordered by key, sums exactly to ``total_fen``, and each share is within one fen
    of (strictly: floor or ceiling of) its quota. Keys with weight 0 get 0.

    Raises :class:`InvalidSplit` if an amount or weight is negative or inexact, or if
    ``total_fen`` > 0 and the weights sum to 0.
    """
    check_fen(total_fen, "total")
    exact = {k: to_fraction(w, f"weight of {k!r}") for k, w in weights.items()}
    if any(w < 0 for w in exact.values()):
        raise InvalidSplit(N_("weights must not be negative"))
    keys = sorted(exact, key=order_key)
    weight_sum = sum(exact.values(), Fraction(0))
    if weight_sum == 0:
        if total_fen:
            raise InvalidSplit(N_("cannot apportion a positive amount over zero weights"))
        return {k: 0 for k in keys}

    quotas = {k: total_fen * exact[k] / weight_sum for k in keys}
    shares = {k: math.floor(q) for k, q in quotas.items()}
    left = total_fen - sum(shares.values())
    # sorted() is stable, so equal remainders keep the key order established above.
    by_remainder = sorted(keys, key=lambda k: quotas[k] - shares[k], reverse=True)
    for k in by_remainder[:left]:
        shares[k] += 1
    return shares


def split_payment(
    total_fen: int,
    operator_fee_share: Fraction | Decimal | int,
    items: Sequence[SplitItem | tuple[Any, int, Sequence[tuple[DepartmentId, Weight]]]],
) -> Split:
    """Split a payment between the operator's fee and the providing departments.

    - The operator's fee is ``floor(total_fen × operator_fee_share)``.
    - The rest goes to the departments: in proportion to the items' amounts across items,
      and by the declared weights within an item. A department that appears in several items
      gets the sum of its quotas before rounding.
    - Rounding is by :func:`apportion`: shares sum exactly to the rest, and each is within
      one fen of its exact quota *of the rest*.

    ``total_fen`` need not equal the sum of the item amounts (a discount, an upgrade priced
    as a difference): the item amounts are only proportions. A free licence (total 0) gives
    zeros to every listed department.

    Raises :class:`InvalidSplit` if the share is outside [0, 1] or a float; an amount or
    weight is negative; an item with a positive amount has no department with a positive
    weight; or a positive rest has nothing to be apportioned over (items summing to 0).
    """
    check_fen(total_fen, "total")
    share = to_fraction(operator_fee_share, "operator_fee_share")
    if not 0 <= share <= 1:
        raise InvalidSplit(N_("%(setting)s must be between 0 and 1"), setting="operator_fee_share")
    fee = math.floor(total_fen * share)
    rest = total_fen - fee

    weights: dict[DepartmentId, Fraction] = {}
    for item in items:
        try:
            dataset_id, amount, departments = item
        except (TypeError, ValueError):
            raise InvalidSplit(
                N_("each item must be (dataset_id, amount_fen, departments)")
            ) from None
        check_fen(amount, f"amount of dataset {dataset_id!r}")
        declared = [
            (dept, to_fraction(w, f"weight of department {dept!r}")) for dept, w in departments
        ]
        if any(w < 0 for _, w in declared):
            raise InvalidSplit(
                N_("dataset %(dataset)r has a negative department weight"), dataset=dataset_id
            )
        item_weight = sum((w for _, w in declared), Fraction(0))
        if amount and item_weight == 0:
            raise InvalidSplit(
                N_("dataset %(dataset)r has an amount but no providing department"),
                dataset=dataset_id,
            )
        for dept, w in declared:
            order_key(dept)  # rejects unsupported id types early, with a clear message
            weights[dept] = weights.get(dept, Fraction(0)) + (
                amount * w / item_weight if amount else Fraction(0)
            )

    if rest and not any(weights.values()):
        raise InvalidSplit(
            N_("the items sum to 0, so the payment cannot be divided among them")
        )
    return Split(operator_fee=fee, departments=apportion(rest, weights))


def split_payment_by_rates(
    total_fen: int,
    items: Sequence[SplitItem | tuple[Any, int, Sequence[tuple[DepartmentId, Weight]]]],
    fee_shares: Mapping[tuple[Any, DepartmentId], Fraction | Decimal | int],
    default_fee_share: Fraction | Decimal | int,
) -> Split:
    """Split a payment when each department agreed its own share (授权运营协议).

    ``fee_shares[(dataset_id, department_id)]`` is the operator's fee share of that
    department's part of that item (``default_fee_share`` where absent). Each department's
    exact part of the payment is its quota as in :func:`split_payment` (item amounts across
    items, declared weights within one); the operator's fee is
    ``floor(Σ part × fee share)``, and the rest is apportioned over the departments in
    proportion to ``part × (1 − fee share)`` by largest remainder. So the shares sum exactly
    to ``total_fen``, and with one share for everyone the result equals
    :func:`split_payment`'s.

    Raises :class:`InvalidSplit` like :func:`split_payment`, or for a share outside [0, 1].
    """
    check_fen(total_fen, "total")
    default = to_fraction(default_fee_share, "default_fee_share")
    shares = {k: to_fraction(v, f"fee share of {k!r}") for k, v in fee_shares.items()}
    if any(not 0 <= s <= 1 for s in (default, *shares.values())):
        raise InvalidSplit("fee shares must be between 0 and 1")

    quota: dict[DepartmentId, Fraction] = {}
    fee_weight = Fraction(0)
    rest_weights: dict[DepartmentId, Fraction] = {}
    for item in items:
        try:
            dataset_id, amount, departments = item
        except (TypeError, ValueError):
            raise InvalidSplit("each item must be (dataset_id, amount_fen, departments)") from None
        check_fen(amount, f"amount of dataset {dataset_id!r}")
        declared = [
            (dept, to_fraction(w, f"weight of department {dept!r}")) for dept, w in departments
        ]
        if any(w < 0 for _, w in declared):
            raise InvalidSplit(f"dataset {dataset_id!r} has a negative department weight")
        item_weight = sum((w for _, w in declared), Fraction(0))
        if amount and item_weight == 0:
            raise InvalidSplit(f"dataset {dataset_id!r} has an amount but no providing department")
        for dept, w in declared:
            order_key(dept)
            part = amount * w / item_weight if amount else Fraction(0)
            share = shares.get((dataset_id, dept), default)
            quota[dept] = quota.get(dept, Fraction(0)) + part
            fee_weight += part * share
            rest_weights[dept] = rest_weights.get(dept, Fraction(0)) + part * (1 - share)

    parts_sum = sum(quota.values(), Fraction(0))
    if parts_sum == 0:
        if total_fen:
            raise InvalidSplit("the items sum to 0, so the payment cannot be divided among them")
        return Split(operator_fee=0, departments=apportion(0, rest_weights))
    fee = math.floor(total_fen * fee_weight / parts_sum)
    return Split(operator_fee=fee, departments=apportion(total_fen - fee, rest_weights))
