"""Exact decimal arithmetic for money: parsing, the exact context and canonical output strings.

Every sum and product of money goes through :data:`EXACT`, a context with 999 digits that *raises*
instead of rounding (``Inexact``/``Rounded`` are trapped), so an amount is either exact or an error,
never silently rounded. Floats are never used for money.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded
from typing import Final

__all__ = [
    "EXACT",
    "ZERO",
    "add",
    "amount_str",
    "mul",
    "parse_amount",
    "parse_number",
    "plain_digits",
    "sub",
    "to_decimal",
]

EXACT: Final = Context(
    prec=999,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, Inexact, Rounded, Overflow],
)
ZERO: Final = Decimal(0)

add: Final = EXACT.add
sub: Final = EXACT.subtract
mul: Final = EXACT.multiply


def to_decimal(value: object) -> Decimal:
    """A book output (exact ``str`` or ``Decimal``) as a Decimal. Raises ``ValueError`` for anything else."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    raise ValueError(f"expected an exact decimal string, got {type(value).__name__} {value!r}")


def parse_number(value: object, what: str, *, allow_float: bool = True) -> Decimal:
    """``value`` (Decimal, int, str, or float read as the decimal it prints as) as a finite Decimal.

    Raises ``ValueError`` naming ``what`` for bools, other types, NaN, infinities and non-numeric
    strings. Floats are read through ``repr`` (``0.3`` is ``Decimal("0.3")``), exactly like the order
    book reads them, so a hold computed here matches the price the book will use.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float) and allow_float:
        if not math.isfinite(value):
            raise ValueError(f"{what} must be finite, got {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a number") from None
    else:
        kinds = "a Decimal, int, float or numeric string" if allow_float else "a Decimal, int or string"
        raise ValueError(f"{what} must be {kinds}, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return result


def parse_amount(value: object, what: str = "amount") -> Decimal:
    """A money amount for deposits and withdrawals: Decimal, int or str, finite and > 0.

    Floats are refused (``ValueError``): pass ``"0.1"`` or ``Decimal("0.1")``, not ``0.1``.
    """
    amount = parse_number(value, what, allow_float=False)
    if amount <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return amount


def plain_digits(value: Decimal) -> str | None:
    """``value`` (finite, not zero) written without trailing zeros when ``str`` writes it without an
    exponent (its exponent <= 0 and it is not below 1e-6: every digit exact); None otherwise.

    About half the cost of normalize + format, which every balance message and fill fee paid."""
    text = str(value)
    if "E" in text:
        return None
    if "." in text:
        text = text.rstrip("0")
        if text[-1] == ".":
            text = text[:-1]
    return text


def amount_str(value: Decimal) -> str:
    """The canonical exact string of an amount: no exponent, no trailing zeros (``"0"``, ``"12.5"``)."""
    if not value:
        return "0"
    text = plain_digits(value) if value.is_finite() else None
    return format(EXACT.normalize(value), "f") if text is None else text
