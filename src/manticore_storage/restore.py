"""Restore: a symbol's live order rows straight into an empty book, in integer units.

Storage restores rows it wrote itself, so it takes the book's trusted path
(:func:`manticore_orderbook.restore.load_trusted`): the rows are read with the driver's own cursor
(no SQLAlchemy row or type processing), every stored decimal is turned into ticks or lots once per
distinct value (exactly, on the book's grid; a value off the grid is an error), and the book checks
only cheap invariants instead of validating every order as a new command would be.

What costs most in a restore of a million orders is the driver turning column values into Python
objects (roughly 0.1 us a column, even for a NULL) and the book touching its levels. So each live
order is read as seven columns: the kind columns (side, order type, time in force, STP, pending,
triggered, user id type) are folded into one small integer by the database, and the columns that are
usually empty or implied (an unfilled order's quantity and filled quantity, a visible quantity equal
to the open one, the iceberg, expiry, stop and trailing fields) are read, by a second query, only for
the orders that need them ("detailed" orders, flagged in the same integer). And the rows come sorted
by price, then priority: the book fills one level at a time instead of jumping between many levels
at every order (a price stored in two spellings, which SQLite sorts apart, still ends up in one level
in priority order).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from functools import cache
from itertools import chain, product
from typing import Any

from sqlalchemy import Connection

from manticore_orderbook import (
    InvalidOrderError,
    OrderBook,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from manticore_orderbook.restore import load_trusted

from . import schema

__all__ = ["UnitCache", "restore_book"]

#: The enum-like columns folded into an order's kind key, with the values each may hold (a NULL STP
#: means the book's default). A value not listed makes the key NULL, which the book rejects.
_KEY_COLUMNS: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("side", tuple(member.value for member in Side)),
    ("order_type", tuple(member.value for member in OrderType)),
    ("time_in_force", tuple(member.value for member in TimeInForce)),
    ("self_trade_prevention", (None, *(member.value for member in SelfTradePrevention))),
)
#: True when a row needs its details: any column that is not implied by an unfilled, fully visible
#: GTC order resting without a stop. Comparisons with equal text or equal numbers only, so the
#: shortcut is exact on every backend (text on SQLite, NUMERIC or DECIMAL elsewhere).
_DETAILED = (
    "displayed_quantity IS NOT NULL OR expiry_time IS NOT NULL OR stop_price IS NOT NULL"
    " OR trail_value IS NOT NULL OR trail_reference_price IS NOT NULL"
    " OR quantity <> remaining_quantity OR filled_quantity <> '0'"
    " OR (visible_quantity IS NOT NULL AND visible_quantity <> '0'"
    " AND visible_quantity <> remaining_quantity)"
)
#: The yes/no conditions folded into the key, after the enum columns.
_KEY_FLAGS = ("status = 'pending'", "triggered", "user_id_is_int", _DETAILED)
#: A detailed order's extra columns, in the layout of ``load_trusted``'s details.
_DETAIL_COLUMNS = (
    "priority",
    "quantity",
    "filled_quantity",
    "visible_quantity",
    "displayed_quantity",
    "expiry_time",
    "stop_price",
    "trail_value",
    "trail_is_percent",
    "trail_reference_price",
)
#: Rows fetched at a time: a restore streams, so that each row is used while it is in the cache.
_CHUNK = 2000


@cache
def _kind_key_sql(dialect: str) -> str:
    """The SQL expression of an order's kind key: a mixed-radix number of the key's fields.

    MySQL and MariaDB compare the text columns as bytes here: their usual collations ignore case and
    trailing spaces, which would let ``'BUY'`` pass for ``'buy'``."""
    binary = dialect in ("mysql", "mariadb")
    terms = []
    weight = 1
    for name, values in _KEY_COLUMNS:
        column = f"CAST({name} AS BINARY)" if binary else name
        whens = " ".join(
            f"WHEN {column} IS NULL THEN {i}" if value is None else f"WHEN {column} = '{value}' THEN {i}"
            for i, value in enumerate(values)
        )
        terms.append(f"{weight} * (CASE {whens} END)")
        weight *= len(values)
    for condition in _KEY_FLAGS:
        if binary:
            condition = condition.replace("status = ", "CAST(status AS BINARY) = ")
        terms.append(f"(CASE WHEN {condition} THEN {weight} ELSE 0 END)")
        weight *= 2
    return " + ".join(terms)


def _kind_keys() -> dict[object, tuple[Any, ...]]:
    """Every kind key -> ``(side, order_type, time_in_force, self_trade_prevention, pending,
    triggered, user_id_is_int, detailed)``, the record layout of ``load_trusted``."""
    fields = [values for _, values in _KEY_COLUMNS] + [(False, True)] * len(_KEY_FLAGS)
    keys: dict[object, tuple[Any, ...]] = {}
    for combination in product(*(tuple(enumerate(values)) for values in fields)):
        key = 0
        weight = 1
        for (index, _), values in zip(combination, fields, strict=True):
            key += index * weight
            weight *= len(values)
        keys[key] = tuple(value for _, value in combination)
    return keys


_KIND_KEYS = _kind_keys()
#: The columns of a restore record, the record layout of ``load_trusted``, but for the
#: kind key that ends it.
_COLUMNS = ("order_id", "price", "remaining_quantity", "user_id", "timestamp", "priority")
_PRIORITY = _COLUMNS.index("priority")


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


class _Details(Mapping[Any, tuple[Any, ...]]):
    """The details of the detailed orders by priority, read at the first look-up: a book of plain
    orders (the usual big book) never pays for the query."""

    def __init__(self, rows: dict[Any, tuple[Any, ...]], load: Callable[[], list[Any]]) -> None:
        self._rows = rows
        self._load: Callable[[], list[Any]] | None = load

    def _loaded(self) -> dict[Any, tuple[Any, ...]]:
        if self._load is not None:
            load, self._load = self._load, None
            for row in load():
                self._rows[row[0]] = tuple(row)
        return self._rows

    def __getitem__(self, rank: Any) -> tuple[Any, ...]:
        return self._loaded()[rank]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def get(self, rank: Any, default: Any = None) -> Any:
        return self._loaded().get(rank, default)


def _live_rows(
    connection: Connection, cursor: Any, symbol: str
) -> tuple[Iterator[tuple[Any, ...]], Mapping[Any, tuple[Any, ...]]]:
    """The symbol's live orders as ``load_trusted`` records, by price and then priority, streamed,
    and the details of the detailed ones by priority.

    Rows written by the guide's methods carry no priority: they come last, by arrival, numbered on
    from the highest stored priority."""
    what = ", ".join((*_COLUMNS, f"{_kind_key_sql(connection.dialect.name)} AS kind_key"))
    details_what = ", ".join(_DETAIL_COLUMNS)
    cursor.execute(_select(connection, "max(priority)", "priority > 0"), (symbol,))
    top = cursor.fetchone()[0] or 0
    cursor.execute(_select(connection, f"{what}, {details_what}", "priority <= 0", "timestamp"), (symbol,))
    unprioritised = []
    known: dict[Any, tuple[Any, ...]] = {}
    width = len(_COLUMNS) + 1
    for rank, row in enumerate(cursor.fetchall(), top + 1):
        unprioritised.append((*row[:_PRIORITY], rank, *row[_PRIORITY + 1 : width]))
        known[rank] = (rank, *row[width + 1 :])

    def load() -> list[Any]:  # on a cursor of its own: the main one is in the middle of its rows
        details_cursor = connection.connection.cursor()
        try:
            sql = _select(connection, details_what, f"priority > 0 AND ({_DETAILED})")
            details_cursor.execute(sql, (symbol,))
            return list(details_cursor.fetchall())
        finally:
            details_cursor.close()

    cursor.execute(_select(connection, what, "priority > 0", "price, priority"), (symbol,))
    # PyMySQL's fetchmany ends with (), the other drivers' with []: any empty chunk ends the stream.
    rows = chain(chain.from_iterable(iter(lambda: cursor.fetchmany(_CHUNK) or [], [])), unprioritised)
    return rows, _Details(known, load)


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
        cursor.execute(
            _select(connection, "order_id, client_order_id", "client_order_id IS NOT NULL"), (book.symbol,)
        )
        client_ids = dict(cursor.fetchall())
        records, details = _live_rows(connection, cursor, book.symbol)
        return load_trusted(
            book,
            records,
            _KIND_KEYS,
            details,
            prices,
            lots,
            sequence,
            trade_count,
            generated,
            last_price,
            client_ids,
        )
    finally:
        cursor.close()
        if gc_was_enabled:
            _age_everything()
            gc.enable()


def _age_everything() -> None:
    """Put every object the collector tracks in its oldest generation, in constant time.

    A restore makes millions of long-lived objects while the collector is off; turned back on, it
    would go through all of them in a young-generation collection at once (about 0.4 s a million
    orders), and again in the next generation. Moving them straight to the oldest generation skips
    those scans: only full collections look at them, as they would soon anyway. Skipped when the
    process keeps objects frozen (``gc.freeze()``, say before forking): unfreezing would undo that.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
