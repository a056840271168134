"""Restore: a symbol's live order rows straight into an empty book, in integer units.

Storage restores rows it wrote itself, so it takes the book's trusted path
(``OrderBook._restore_trusted``): the rows are read with the driver's own cursor (no SQLAlchemy row
or type processing), every stored decimal is turned into ticks or lots once per distinct value
(exactly, on the book's grid; a value off the grid is an error), and the book checks only cheap
invariants instead of validating every order as a new command would be.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from itertools import chain
from typing import Any

from sqlalchemy import Connection

from manticore_orderbook import InvalidOrderError, OrderBook

from . import schema

__all__ = ["UnitCache", "restore_book"]

#: The columns read for a restore: the record layout of ``OrderBook._restore_trusted``.
_COLUMNS = (
    "order_id",
    "side",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "visible_quantity",
    "displayed_quantity",
    "order_type",
    "time_in_force",
    "expiry_time",
    "user_id",
    "timestamp",
    "stop_price",
    "trail_value",
    "trail_is_percent",
    "trail_reference_price",
    "self_trade_prevention",
    "triggered",
    "status = 'pending'",
    "priority",
    "user_id_is_int",
)
_USER_ID = _COLUMNS.index("user_id")
_TIMESTAMP = _COLUMNS.index("timestamp")
_PRIORITY = _COLUMNS.index("priority")
_USER_ID_IS_INT = _COLUMNS.index("user_id_is_int")
#: Rows fetched at a time: a restore streams, so that each row is used while it is in the cache.
_CHUNK = 2000


def _placeholder(connection: Connection) -> str:
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    if style == "numeric":
        return ":1"
    raise ValueError(f"unsupported DB-API paramstyle {style!r}")


def _select(connection: Connection, what: str, where: str, order_by: str = "") -> str:
    statuses = ", ".join(f"'{status}'" for status in schema.LIVE_STATUSES)
    return (
        f"SELECT {what} FROM {schema.orders.name} "
        f"WHERE symbol = {_placeholder(connection)} AND status IN ({statuses}) AND {where}"
        + (f" ORDER BY {order_by}" if order_by else "")
    )


def _live_rows(connection: Connection, cursor: Any, symbol: str) -> Iterator[tuple[Any, ...]]:
    """The symbol's live orders as ``_restore_trusted`` records, in time priority, streamed.

    Rows written by the guide's methods carry no priority: they come last, by arrival, numbered on
    from the highest stored priority."""
    what = ", ".join(_COLUMNS)
    cursor.execute(_select(connection, "max(priority)", "priority > 0"), (symbol,))
    top = cursor.fetchone()[0] or 0
    cursor.execute(_select(connection, what, "priority <= 0", "timestamp"), (symbol,))
    unprioritised = [
        (*row[:_PRIORITY], top + i, *row[_PRIORITY + 1 :]) for i, row in enumerate(cursor.fetchall(), 1)
    ]
    cursor.execute(_select(connection, what, "priority > 0", "priority"), (symbol,))
    return chain(chain.from_iterable(iter(partial(cursor.fetchmany, _CHUNK), [])), unprioritised)


class UnitCache(dict[object, int | None]):
    """Stored decimals (text or Decimal) -> whole steps of one grid, computed once per distinct value.

    Exact: a value that is not a whole number of steps raises :class:`InvalidOrderError`. Zero and
    negative values convert too (the book checks the ranges); None stays None.
    """

    def __init__(self, step: Decimal, what: str) -> None:
        super().__init__()
        step = step.normalize()
        exponent = int(step.as_tuple().exponent)
        self.places = -exponent if exponent < 0 else 0
        self.num = int(step.scaleb(self.places))
        self.what = what
        self[None] = None

    def __missing__(self, value: object) -> int | None:
        units = self.convert(value)
        self[value] = units
        return units

    def convert(self, value: object) -> int:
        if isinstance(value, str):
            text = value
        elif isinstance(value, Decimal):
            text = format(value, "f")
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        else:
            raise InvalidOrderError(f"stored {self.what} {value!r} is not a decimal")
        whole, _, fraction = text.partition(".")
        digits = whole[1:] if whole.startswith("-") else whole
        if (
            digits.isdigit()
            and digits.isascii()
            and (not fraction or (fraction.isdigit() and fraction.isascii()))
        ):
            fraction = fraction.rstrip("0")
            if len(fraction) <= self.places:
                scaled = int(whole + fraction.ljust(self.places, "0"))
                units, rest = divmod(scaled, self.num)
                if not rest:
                    return units
            raise InvalidOrderError(f"stored {self.what} {text} is not on the book's {self.what} grid")
        try:  # an unusual spelling (exponent, spaces): exact through Decimal
            numerator, denominator = Decimal(text).as_integer_ratio()
        except (ArithmeticError, ValueError):
            raise InvalidOrderError(f"stored {self.what} {value!r} is not a finite decimal") from None
        scale: int = 10**self.places
        units, rest = divmod(numerator * scale, denominator * self.num)
        if rest:
            raise InvalidOrderError(f"stored {self.what} {text} is not on the book's {self.what} grid")
        return units


def restore_book(connection: Connection, book: OrderBook, market: Any) -> int:
    """Load the live orders of ``book.symbol`` into the empty ``book``; ``market`` is the symbol's
    ``manticore_markets`` row (or None). Returns the number of orders. Raises InvalidOrderError."""
    prices = UnitCache(book.tick_size, "price")
    lots = UnitCache(book.lot_size, "quantity")
    sequence = trade_count = generated = 0
    last_price = None
    if market is not None:
        sequence = int(market["last_sequence"])
        trade_count = int(market["trade_count"])
        generated = int(market["generated_order_count"])
        last_price = prices[market["last_trade_price"]]
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million new objects would trigger full collections many times over
    cursor = connection.connection.cursor()
    try:
        return book._restore_trusted(
            _live_rows(connection, cursor, book.symbol),
            prices,
            lots,
            sequence,
            trade_count,
            generated,
            last_price,
        )
    finally:
        cursor.close()
        if gc_was_enabled:
            gc.enable()
