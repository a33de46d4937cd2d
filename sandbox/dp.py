"""Differential privacy for conditional data: deterministic Laplace noise.

The noise of a release is drawn from a hash of (secret, the query's canonical scope, the
measurement, the group's key values). So the same question, however it is spelled (spacing,
case, aliases, order of AND terms or of outputs), gets the same noisy answer, and repeating it
cannot average the noise away. Each *different* question spends budget; the lead's ledger
charges `CheckedQuery.epsilon_cost` before the query runs.

The guarantee is record-level (one row added or removed), by sequential composition over the
outputs of one query and parallel composition over its disjoint groups. Sums and averages use
inputs clamped to the column bounds, so one record moves a sum by at most max(|lo|, |hi|).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from market.crypto import canonical_json

from .query import CheckedQuery, DPMeasurement

_DOMAIN = b"sandbox.dp.laplace.v1\x00"
_TWO_128 = Decimal(2) ** 128
SUM_PLACES = Decimal("0.01")  # noisy sums and averages are released to two decimals


def laplace_noise(seed_material: bytes, scale: Decimal) -> Decimal:
    """A Laplace(0, scale) sample that depends only on `seed_material` and `scale`.

    Inverse-CDF sampling from 128 bits of SHA-256, computed in 50-digit Decimal arithmetic
    (no floats). Raises ValueError if scale is negative.
    """
    if scale < 0:
        raise ValueError("scale must be >= 0")
    if scale == 0:
        return Decimal(0)
    digest = hashlib.sha256(_DOMAIN + seed_material).digest()
    n = int.from_bytes(digest[:16], "big")
    with localcontext() as ctx:
        ctx.prec = 50
        u = (Decimal(n) + Decimal("0.5")) / _TWO_128  # uniform in (0, 1), never 0 or 1
        half = Decimal("0.5")
        if u < half:
            x = scale * (2 * u).ln()
        else:
            x = -scale * (2 * (1 - u)).ln()
        return +x


def _value_key(value: Any) -> list[str]:
    """A typed, stable text form of a group key value for the seed."""
    if value is None:
        return ["null", ""]
    if isinstance(value, bool):
        return ["bool", str(value)]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, Decimal):
        return ["num", format(value.normalize(), "f")]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return [type(value).__name__, value.isoformat()]
    return [type(value).__name__, str(value)]


def seed_material(secret: bytes | str, scope: str, measurement: str, group: Sequence[Any]) -> bytes:
    """The bytes a release's noise is drawn from."""
    key = secret.decode("utf-8", "surrogateescape") if isinstance(secret, bytes) else secret
    return canonical_json([key, scope, measurement, [_value_key(v) for v in group]])


def _to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest repr, not the binary expansion
    return Decimal(value)


def apply_dp(checked: CheckedQuery, rows: Sequence[Sequence[Any]], secret: bytes | str) -> list:
    """Add noise to the count/sum/avg outputs of full engine rows (hidden columns included).

    Counts become non-negative integers; sums and averages Decimals with two places, averages
    clamped into the column bounds. Rows are returned in order, same width. Raises ValueError
    if the query has no DP plan or `secret` is empty.
    """
    plan = checked.dp
    if plan is None:
        raise ValueError("this query has no differential-privacy plan")
    if not secret:
        raise ValueError("a secret is required for differential privacy")
    index = {name: i for i, name in enumerate(checked.engine_columns)}
    group_idx = [index[c] for c in plan.group_columns]
    out: list = []
    for row in rows:
        new = list(row)
        group = [row[i] for i in group_idx]
        for m in plan.measurements:
            new[m.output_index] = _noisy(m, row, index, secret, plan.scope, group)
        out.append(tuple(new))
    return out


def _noisy(
    m: DPMeasurement,
    row: Sequence[Any],
    index: dict[str, int],
    secret: bytes | str,
    scope: str,
    group: Sequence[Any],
) -> Any:
    def noise(canonical: str, scale: Decimal) -> Decimal:
        return laplace_noise(seed_material(secret, scope, canonical, group), scale)

    if m.kind == "count":
        value = _to_decimal(row[m.output_index]) or Decimal(0)
        noisy = value + noise(m.canonical, m.scale)
        return max(0, int(noisy.to_integral_value(rounding=ROUND_HALF_EVEN)))
    if m.kind == "sum":
        value = _to_decimal(row[m.output_index])
        if value is None:
            return None
        return (value + noise(m.canonical, m.scale)).quantize(SUM_PLACES, ROUND_HALF_EVEN)
    # avg: noisy clamped sum / noisy count, then clamped into the bounds
    assert m.sum_column and m.count_column and m.count_canonical and m.count_scale is not None
    total = _to_decimal(row[index[m.sum_column]])
    count = _to_decimal(row[index[m.count_column]]) or Decimal(0)
    if total is None or count == 0:
        return None
    noisy_sum = total + noise(m.canonical, m.scale)
    noisy_count = max(Decimal(1), count + noise(m.count_canonical, m.count_scale))
    avg = noisy_sum / noisy_count
    if m.lower is not None and m.upper is not None:
        avg = min(max(avg, m.lower), m.upper)
    return avg.quantize(SUM_PLACES, ROUND_HALF_EVEN)
