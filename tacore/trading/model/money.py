"""Exact money: every price, quantity, amount and fee is a ``Decimal`` with at most ``PLACES`` decimals.

Products and quotients are rounded once (half-even) to ``PLACES`` in a 60-digit context, so the value kept
in memory is exactly the value stored (``Numeric(38, 10)`` on servers, text on SQLite). Inputs are bounded
(``MAX_VALUE``) so sums stay exact in Python's default 28-digit context too.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

PLACES = 10
QUANTUM = Decimal(1).scaleb(-PLACES)
#: the largest quantity, price or amount TACore accepts (sums of a few stay well inside 28 digits)
MAX_VALUE = Decimal(10) ** 15
ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)

_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)


def to_decimal(value: object) -> Decimal:
    """A Decimal from an int, a string or a float (by its shortest repr: 0.1 is 0.1); ValueError otherwise."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError("not a number")
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def quantize(value: Decimal) -> Decimal:
    """``value`` rounded half-even to ``PLACES`` decimals."""
    return value.quantize(QUANTUM, context=_CTX)


def quantize_down(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_DOWN, context=_CTX)


def mul(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.multiply(a, b).quantize(QUANTUM, context=_CTX)


def div(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.divide(a, b).quantize(QUANTUM, context=_CTX)


def mul_div(a: Decimal, b: Decimal, c: Decimal) -> Decimal:
    """a x b / c, rounded once (a share of an amount: the cost a partial sale removes)."""
    return _CTX.divide(_CTX.multiply(a, b), c).quantize(QUANTUM, context=_CTX)


def bps_factor(bps: Decimal) -> Decimal:
    """1 + bps / 10,000, exactly."""
    return ONE + _CTX.divide(bps, BPS)


def places(value: Decimal) -> int:
    """Decimal places ``value`` carries once trailing zeros are dropped (0 for an integer)."""
    exponent = value.normalize(_CTX).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fmt(value: Decimal | None) -> str | None:
    """The canonical text of a value: no exponent, no trailing zeros (``"150.25"``, ``"100"``, ``"0.0001"``)."""
    if value is None:
        return None
    if value == 0:
        return "0"
    text = format(value.normalize(_CTX), "f")
    return text
