"""Exact amounts as integers: ``units x 10**-exp``.

The ledger and the tracked orders keep their amounts as Python ints with an exponent (``exp``: the number
of decimal places they count in), so that the hot paths (a limit order's check and hold, a trade's
settlement) run on native integer arithmetic. ``Decimal`` remains the public type: these helpers convert
exactly at the edges, and an exponent only ever grows (a finer amount arriving rescales the ints it
joins, which changes no value).
"""

from __future__ import annotations

from decimal import Decimal
from types import FunctionType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the compiled build's native 64-bit int; plain ``int`` when interpreted
    from mypy_extensions import i64

from .amounts import EXACT

__all__ = [
    "add_units",
    "decimals",
    "from_units",
    "parse_units",
    "pow10",
    "read_units",
    "same_amount",
    "to_units",
]

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
    decimal places or is not a plain decimal: an optional ``-``, ASCII digits with at most one point and
    digits on both sides of it (an exponent, a ``+``, an underscore, spaces, other digits, ``.5``, ``5.``:
    ``Decimal`` reads some of those, this does not). The book's exact number strings and ``str`` of a
    Decimal without an exponent are plain decimals, so this spares a ``Decimal`` per amount.

    Compiled, one pass over the characters with ``ord(text[i])`` (an inline read, no call), so that a
    string costs a few hundred instructions instead of a slice, a ``replace`` and an ``int(str)``.
    Interpreted, where that loop costs a bytecode dispatch per character, the string methods of
    :func:`_parse_long` (a few C calls) read it, with the same contract."""
    if not _NATIVE:  # interpreted: the string methods, without read_units' pair
        return _parse_long(text, exp)
    units, ok = read_units(text, exp)
    return units if ok else None


def read_units(text: str, exp: int) -> tuple[int, bool]:
    """:func:`parse_units` as a pair: ``(units, True)``, or ``(0, False)`` where it gives None (same
    contract). For the hot paths of the compiled build: a ``tuple[int, bool]`` is returned by value, so a
    result below 2**62 needs no int object (``int | None`` boxes every result, and the caller unboxes and
    frees it: ~150 instructions per string)."""
    n: i64 = len(text)
    if n > _PLAIN_MAX or not _NATIVE:  # beyond 64 bits, or interpreted: the string methods
        found = _parse_long(text, exp)
        return (0, False) if found is None else (found, True)
    i: i64 = 0
    negative = False
    if n and ord(text[0]) == 45:  # "-"
        negative = True
        i = 1
    first = i
    if i >= n:
        return 0, False
    units: i64 = 0
    places: i64 = -1  # -1 until the point
    while i < n:
        c: i64 = ord(text[i])
        if 48 <= c <= 57:
            units = units * 10 + (c - 48)
            if places >= 0:
                places += 1
        elif c == 46 and places < 0 and i > first:  # the point, after a digit
            places = 0
        else:
            return 0, False
        i += 1
    if places < 0:
        places = 0
    elif places == 0:  # "5.": no digit after the point
        return 0, False
    if places > exp:
        return 0, False
    result: int = -units if negative else units  # an int from here: scaling may pass 2**63
    if places != exp:
        result *= pow10(exp - places)
    return result, True


#: The longest string :func:`parse_units` reads in 64-bit integers (18 digits stay below 2**63).
_PLAIN_MAX: Final = 18
#: Whether this module is compiled (mypyc): its functions are then native, not Python functions.
_NATIVE: Final = not isinstance(pow10, FunctionType)


def _parse_long(text: str, exp: int) -> int | None:
    """:func:`parse_units` with string methods (same contract): for a string too long for 64-bit
    integers, and for every string when interpreted (a few C calls, no per-character bytecode)."""
    whole, point, fraction = text.partition(".")
    places = len(fraction)
    if places > exp or (point and not places):
        return None
    negative = whole[:1] == "-"
    if negative:
        whole = whole[1:]
    digits = whole + fraction if places else whole
    if not whole or not digits.isascii() or not digits.isdigit():
        return None
    units = int(digits)
    if places != exp:
        scale = exp - places
        units *= _POW10[scale] if scale < 64 else 10**scale
    return -units if negative else units


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
