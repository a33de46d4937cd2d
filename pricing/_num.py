"""Exact-arithmetic helpers shared by the pricing modules. No floats anywhere."""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache
from typing import Any

from market.i18n import N_

from .errors import PricingError

#: Working precision for coefficient curves (powers, ratios). Far beyond what a fen needs, so
#: rounding here never decides a fen.
CURVE = Context(
    prec=50,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
#: Products of quantized factors are computed exactly: ~10 factors of <= 10 decimal places and a
#: few integer digits each stay far below this precision.
EXACT = Context(
    prec=400,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

#: Every explained factor is quantized to this many places; the amount is computed from the
#: quantized factors, so the explanation is the computation, not an approximation of it.
FACTOR_PLACES = 10
FACTOR_QUANTUM = Decimal(1).scaleb(-FACTOR_PLACES)
#: The amortized base is kept to 1/100 fen, rounded up so cost recovery holds.
BASE_QUANTUM = Decimal("0.01")

ZERO = Decimal(0)
ONE = Decimal(1)


def to_decimal(value: Any, field: str, error: type[PricingError]) -> Decimal:
    """Accept int, Decimal or a decimal string; reject floats and bools.

    Raises ``error`` naming ``field`` when the value is not an exact finite number.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise error(
            field, N_("must be an exact number (int, Decimal or decimal string), not float")
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise error(field, N_("must be a decimal number such as '1.25'")) from None
    else:
        raise error(field, N_("must be a number, not %(type)s"), type=type(value).__name__)
    if not result.is_finite():
        raise error(field, N_("must be a finite number"))
    return result


def to_int(value: Any, field: str, error: type[PricingError]) -> int:
    """Accept a Python int only (bools and floats are refused), raising ``error`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(field, N_("must be an integer, not %(type)s"), type=type(value).__name__)
    return value


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only reach here
    return max(0, -exponent)


def quantize_factor(value: Decimal) -> Decimal:
    return value.quantize(FACTOR_QUANTUM, rounding=ROUND_HALF_EVEN, context=EXACT)


def ceil_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING, context=EXACT))


def floor_int(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR, context=EXACT))


@lru_cache(maxsize=65_536)
def power_ratio(numerator: int, denominator: int, exponent: Decimal) -> Decimal:
    """``(numerator / denominator) ** exponent`` quantized to factor places.

    Cached because scopes repeat (durations are 1..60 months); the result only depends on
    the arguments, so the cache cannot make quotes order-dependent.
    """
    if numerator == denominator:
        return quantize_factor(ONE)
    ratio = CURVE.divide(Decimal(numerator), Decimal(denominator))
    return quantize_factor(CURVE.power(ratio, exponent))


def plain(value: Decimal) -> str:
    """A JSON-safe string without exponent or trailing zeros: ``'0.84'``, ``'10'``."""
    text = format(value.normalize(EXACT), "f")
    return "0" if text in {"-0", "0"} else text
