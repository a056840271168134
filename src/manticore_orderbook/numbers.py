"""Exact conversion between user numbers and the integer units (ticks, lots) the book works in.

A :class:`Grid` is one step size (a tick size for prices, a lot size for quantities). Inputs may be
``int``, ``float``, ``str`` or :class:`~decimal.Decimal`; a value that is not a positive whole number of
steps, or is NaN, infinite, of the wrong type or larger than ``max_units`` steps, raises
:class:`~manticore_orderbook.errors.InvalidOrderError`. Outputs are exact: a float output is the float
nearest to the exact decimal value (so ``0.3`` in gives ``0.3`` out), a string or Decimal output is the
exact decimal with the grid's number of decimal places.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from types import FunctionType
from typing import Final, Literal

from .errors import InvalidOrderError

__all__ = ["MAX_UNITS", "Grid", "NumberFormat", "decimal_text", "to_decimal"]

NumberFormat = Literal["float", "str", "decimal"]

_EXACT = Context(prec=999, Emax=999999, Emin=-999999)

#: Largest number of steps a price or quantity may have by default: 2**53 - 1, so that every value
#: also has an exact float neighbour and integer arithmetic on it stays cheap.
MAX_UNITS = 2**53 - 1

#: How many distinct float and str inputs a grid remembers the units of; past that the memory starts
#: again. Prices near the top of a book and order sizes repeat, so a few hundred hit.
_CACHE_SIZE = 4096


def _probe() -> None:
    """Only its type matters (below)."""


#: True when this module runs as Python source, False when mypyc compiled it. Remembering float
#: inputs pays in the interpreter (a dict lookup instead of a dozen bytecodes) and costs compiled
#: code, whose float conversion is a few native operations (about 390 instructions more per input,
#: measured): only the interpreter remembers floats. Strings are remembered by both.
_INTERPRETED: Final = isinstance(_probe, FunctionType)


def to_decimal(value: object, what: str) -> Decimal:
    """Return ``value`` (int, float, str or Decimal) as a finite Decimal, or raise InvalidOrderError.

    Floats are read through their shortest ``repr`` (``0.3`` becomes ``Decimal("0.3")``).
    """
    if isinstance(value, bool):
        raise InvalidOrderError(f"{what} must be a number, not a bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidOrderError(f"{what} {value!r} is not a number") from None
    else:
        raise InvalidOrderError(f"{what} must be a number or a numeric string, not {type(value).__name__}")
    if not result.is_finite():
        raise InvalidOrderError(f"{what} must be finite, got {value!r}")
    return result


class Grid:
    """One step size and the conversions between user values and whole numbers of steps.

    ``step`` must be a positive decimal (``0.01``, ``"0.5"``, ``1``). ``units = value / step``.
    """

    __slots__ = (
        "_cache",
        "_exp",
        "_float_scale",
        "_format",
        "_max_units",
        "_num",
        "_scale",
        "_texts",
        "name",
        "step",
    )

    def __init__(
        self, step: object, name: str, number_format: NumberFormat = "float", max_units: int = MAX_UNITS
    ) -> None:
        dec = to_decimal(step, f"{name} step")
        if dec <= 0:
            raise InvalidOrderError(f"{name} step must be positive, got {step!r}")
        dec = dec.normalize()
        exponent = int(dec.as_tuple().exponent)
        places = -exponent if exponent < 0 else 0
        self.name = name
        self.step = dec
        self._exp = places
        self._scale: int = int(10**places)  # value * scale is an integer multiple of num
        self._num = int(dec.scaleb(places))  # step == num / scale
        self._float_scale = float(self._scale)
        self._max_units = max_units
        if number_format not in ("float", "str", "decimal"):
            raise InvalidOrderError(
                f"number_format must be 'float', 'str' or 'decimal', got {number_format!r}"
            )
        self._format = number_format
        # Units of float and str inputs already converted (valid ones only). Not Decimals: hashing
        # one costs more than converting it, and Decimal(0.1) == 0.1 where only the float is on a
        # 0.1 grid (no other type may look a float key up).
        self._cache: dict[object, int] = {}
        self._texts: dict[int, str] = {}  # to_str's answers by units

    @property
    def max_units(self) -> int:
        """The largest number of steps a value may have (larger ones are refused)."""
        return self._max_units

    @max_units.setter
    def max_units(self, value: int) -> None:
        # Forget what was remembered: every remembered answer is within the bound it was made under,
        # so a hit needs no test of the bound (the book's fast path reads the memo directly).
        self._max_units = value
        self._cache.clear()

    def float_divisor(self) -> float:
        """``d`` such that ``units / d`` is this grid's float output, or 0.0 when that does not hold
        (a non-float format, or a step that is not a power of ten)."""
        if self._format == "float" and self._num == 1:
            return self._float_scale
        return 0.0

    def to_output(self, units: int) -> object:
        """``units * step`` in this grid's number format (float, exact str or Decimal)."""
        if self._format == "float":
            if self._scale == 1:
                return float(units * self._num)
            return units * self._num / self._float_scale
        if self._format == "str":
            return self.to_str(units)
        return self.to_decimal(units)

    def to_units(self, value: object, remember: bool = True) -> int:
        """Return ``value`` as a positive whole number of steps.

        Raises InvalidOrderError for a wrong type, NaN/infinity, zero or negative values, values off the
        grid and values above ``max_units`` steps. Valid str inputs (and float inputs in the
        interpreter, see ``_INTERPRETED``) are remembered, up to ``_CACHE_SIZE`` of them, unless
        ``remember`` is False; the answer is the same either way.
        """
        kind = type(value)
        if remember and (kind is str or (kind is float and _INTERPRETED)):
            cached = self._cache.get(value)
            if cached is not None:  # within the bound: setting ``max_units`` forgets them all
                return cached
            units = self.to_units(value, False)
            cache = self._cache
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[value] = units
            return units
        if kind is float:
            assert isinstance(value, float)
            scaled = value * self._float_scale
            # Positive and below 1e15 (false for NaN and infinities): zero, negative, non-finite and
            # huge values take the Decimal path below, which rejects them with the same messages.
            if 0.0 < scaled < 1e15:
                # The nearest integer, half-way cases up: no value on the grid is half-way, and unlike
                # ``round`` this compiles to a C conversion under mypyc (``round`` is a builtin call).
                n = int(scaled + 0.5)
                # ``n / scale == value`` exactly when value is the float nearest to the decimal n/scale.
                if n / self._float_scale == value:
                    num = self._num
                    if num == 1:  # a power-of-ten step: spares a multiplication, slow under mypyc
                        units = n  # once a factor passes 2**30 (prices in 1e-8 ticks do)
                    else:
                        units = n // num
                        if units * num != n:
                            self._off_grid(value)
                    if 0 < units <= self._max_units:
                        return units
                    return self._check_range(units, value)
                self._off_grid(value)
        elif kind is int:
            assert isinstance(value, int)
            num = self._num
            scaled_int = value * self._scale
            units = scaled_int // num
            if units * num != scaled_int:
                self._off_grid(value)
            if 0 < units <= self._max_units:
                return units
            return self._check_range(units, value)
        dec = to_decimal(value, self.name)
        if dec.adjusted() > 30:
            raise InvalidOrderError(f"{self.name} {value!r} is too large")
        numerator, denominator = dec.as_integer_ratio()
        units, rest = divmod(numerator * self._scale, denominator * self._num)
        if rest:
            self._off_grid(value)
        return self._check_range(units, value)

    def _check_range(self, units: int, value: object) -> int:
        if units <= 0:
            raise InvalidOrderError(f"{self.name} must be positive, got {value!r}")
        if units > self._max_units:
            raise InvalidOrderError(
                f"{self.name} {value!r} is too large (at most {self.to_str(self._max_units)})"
            )
        return units

    def _off_grid(self, value: object) -> None:
        raise InvalidOrderError(
            f"{self.name} {value!r} is not a multiple of the {self.name} step {self.step}"
        )

    def to_float(self, units: int) -> float:
        """The float nearest to ``units * step`` (exact for values with an exact float)."""
        return units * self._num / self._float_scale if self._scale != 1 else float(units * self._num)

    def to_decimal(self, units: int) -> Decimal:
        """``units * step`` as an exact Decimal with the grid's decimal places."""
        return _EXACT.scaleb(Decimal(units * self._num), -self._exp)

    def to_str(self, units: int) -> str:
        """``units * step`` as an exact decimal string with the grid's decimal places.

        The same string as ``format(self.to_decimal(units), "f")``, written from the integer's digits:
        a ``Decimal`` and its formatting cost about ten times as much, and exchanges format every
        price and quantity of every event this way. Answers are remembered per ``units`` (up to
        ``_CACHE_SIZE`` of them; then the memory starts again): prices and sizes repeat.
        """
        text = self._texts.get(units)
        if text is None:
            text = decimal_text(units * self._num, self._exp)
            texts = self._texts
            if len(texts) >= _CACHE_SIZE:
                texts.clear()
            texts[units] = text
        return text


def decimal_text(value: int, places: int) -> str:
    """``value * 10**-places`` as an exact decimal string with ``places`` (>= 0) decimals: the same
    string as ``format(Decimal(value).scaleb(-places), "f")`` (``"-0.05"`` for ``(-5, 2)``)."""
    if not places:
        return str(value)
    if value < 0:
        return "-" + _with_point(str(-value), places)
    return _with_point(str(value), places)


def _with_point(digits: str, places: int) -> str:
    """``digits`` (a non-negative integer's) with a decimal point ``places`` (> 0) digits from the right."""
    if len(digits) <= places:
        digits = "0" * (places + 1 - len(digits)) + digits
    return f"{digits[:-places]}.{digits[-places:]}"
