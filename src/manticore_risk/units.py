"""Exact amounts as integers: ``units x 10**-exp``.

The ledger and the tracked orders keep their amounts as Python ints with an exponent (``exp``: the number
of decimal places they count in), so that the hot paths (a limit order's check and hold, a trade's
settlement) run on native integer arithmetic. ``Decimal`` remains the public type: these helpers convert
exactly at the edges, and an exponent only ever grows (a finer amount arriving rescales the ints it
joins, which changes no value).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from .amounts import EXACT

__all__ = ["add_units", "decimals", "from_units", "parse_units", "pow10", "same_amount", "to_units"]

_POW10: Final[list[int]] = [10**n for n in range(64)]


def pow10(n: int) -> int:
    """``10 ** n`` for ``n >= 0`` (the common ones precomputed)."""
    return _POW10[n] if n < 64 else 10**n


def decimals(value: Decimal) -> int:
    """The decimal places ``value`` (finite) needs: 0 for an integer, 2 for ``1.50`` (trailing zeros do not
    count)."""
    if not value:
        return 0
    exponent = value.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int), value
    return max(0, -exponent)


def to_units(value: Decimal, exp: int) -> tuple[int, int]:
    """``(units, exp')`` with ``units x 10**-exp' == value`` exactly and ``exp' = max(exp, decimals(value))``.
    ``value`` must be finite."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), value
    if -exponent > exp:
        exp = max(exp, decimals(value))
    return int(value.scaleb(exp, EXACT)), exp


def from_units(units: int, exp: int) -> Decimal:
    """``units x 10**-exp`` as a Decimal (exponent ``-exp``)."""
    if not exp:
        return Decimal(units)
    return Decimal(units).scaleb(-exp, EXACT)


def parse_units(text: str, exp: int) -> int | None:
    """The decimal string ``text`` as units of ``10**-exp``, exactly; None when it has more than ``exp``
    decimal places or is not a plain decimal with digits on both sides of its point (an exponent, an
    underscore, trailing spaces, ``.5``: ``Decimal`` reads those, this does not). The book's exact
    number strings are plain decimals, so this spares a ``Decimal`` per amount of an event."""
    if not text[-1:].isdigit() or "_" in text:
        return None
    dot = text.find(".")
    if dot < 0:
        digits = text
        places = 0
    else:
        places = len(text) - dot - 1
        if places > exp or not text[dot - 1 : dot].isdigit():  # a digit before the point: no "-.5"
            return None
        digits = text.replace(".", "", 1)
    try:
        units = int(digits)
    except ValueError:
        return None
    if places != exp:
        units *= pow10(exp - places)
    return units


def add_units(units: int, exp: int, more: int, more_exp: int) -> tuple[int, int]:
    """``units x 10**-exp + more x 10**-more_exp`` as ``(units, exp)`` in the finer of the two units."""
    if exp == more_exp:
        return units + more, exp
    if exp < more_exp:
        return units * pow10(more_exp - exp) + more, more_exp
    return units + more * pow10(exp - more_exp), exp


def same_amount(units: int, exp: int, other: int, other_exp: int) -> bool:
    """Whether ``units x 10**-exp == other x 10**-other_exp``."""
    if exp == other_exp:
        return units == other
    if exp < other_exp:
        return units * pow10(other_exp - exp) == other
    return units == other * pow10(exp - other_exp)
