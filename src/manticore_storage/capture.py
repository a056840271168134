"""Capturing a book's changes for storage without event dictionaries, and turning them into rows.

The persister registers a change recorder on its book (:mod:`manticore_orderbook.changes`). At the end
of each command, in the book's thread, :func:`capture` copies what storage needs out of the change
log into a tuple of flat records. That is all the book thread pays. The writer thread later turns the
records into table rows (:class:`RowBuilder`), converting ticks and lots into exact decimals on the
market's grid.

Records hold only strings, numbers, booleans and None. Such tuples are untracked by Python's cyclic
garbage collector once they survive a collection, so a long queue of captured commands costs the
collector (and the book thread it interrupts) almost nothing; holding the book's own order and trade
objects, or dictionaries, would make every full collection scan the whole queue.

The rows are those the event path would write for the same command: an order with an event other
than fills gets a full row, an order that was only filled gets the fill columns, and every order row
carries the sequence of the last event about that order (``last_sequence``), so writes stay
idempotent and interchangeable with replayed events. One difference: the event path stores the
visible quantity an order had at its last event, which is 0 for an order that rested after its
ORDER_ADDED or ORDER_MODIFIED; captured rows hold the visible quantity the order really has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any, Final, cast

from manticore_orderbook import EventType
from manticore_orderbook.changes import (
    CHANGE_ADDED,
    CHANGE_CANCELLED,
    CHANGE_CLEARED,
    CHANGE_EXPIRED,
    CHANGE_TRADE,
    ChangeEntry,
)
from manticore_orderbook.model import Order

from .records import Market
from .rows import FILL_COLUMNS, ORDER_COLUMNS, TRADE_COLUMNS, FillValues, TradeValues

__all__ = [
    "RECORD_CLEARED",
    "RECORD_FILL",
    "RECORD_ORDER",
    "RECORD_TRADE",
    "ClearedRecord",
    "FillRecord",
    "OrderRecord",
    "Record",
    "RowBuilder",
    "TradeRecord",
    "capture",
    "decimal_text",
    "order_record",
]

_EXACT = Context(prec=999, rounding=ROUND_FLOOR, Emax=999999, Emin=-999999)

#: ``(RECORD_ORDER, last_sequence, kind, reason, order_id, side, order_type, tif, user_id, timestamp,
#: stp, peak, trail, trail_is_percent, price, quantity, filled, open, visible, expiry, stop_price,
#: trail_ref, triggered, pending, rank, client_order_id)``: an order's full state (``kind`` is its last
#: full-state change kind from :mod:`manticore_orderbook.changes`; enums as their string values).
RECORD_ORDER: Final = 0
#: ``(RECORD_FILL, last_sequence, order_id, filled, open, visible, rank)``: an order that was only filled.
RECORD_FILL: Final = 1
#: ``(RECORD_TRADE, number, sequence, price, quantity, maker_order_id, taker_order_id, maker_user_id,
#: taker_user_id, taker_side, timestamp, maker_client_order_id, taker_client_order_id)``.
RECORD_TRADE: Final = 2
#: ``(RECORD_CLEARED, sequence)``: ``clear()`` cancelled every live order of the symbol.
RECORD_CLEARED: Final = 3

#: A user id as the book keeps it (str or int, None for an anonymous order).
UserIdValue = str | int | None

#: The layout of :data:`RECORD_ORDER` (ticks and lots as ints; see the comment above it).
OrderRecord = tuple[
    int,  # RECORD_ORDER
    int,  # last_sequence
    int,  # kind
    "str | None",  # reason
    str,  # order_id
    str,  # side
    str,  # order_type
    str,  # tif
    UserIdValue,  # user_id
    float,  # timestamp
    str,  # stp
    "int | None",  # peak
    Any,  # trail (ticks, or a percentage when trail_is_percent)
    bool,  # trail_is_percent
    "int | None",  # price
    int,  # quantity
    int,  # filled
    int,  # open
    int,  # visible
    "float | None",  # expiry
    "int | None",  # stop_price
    "int | None",  # trail_ref
    bool,  # triggered
    bool,  # pending
    int,  # rank
    "str | None",  # client_order_id
]
#: The layout of :data:`RECORD_FILL`.
FillRecord = tuple[int, int, str, int, int, int, int]
#: The layout of :data:`RECORD_TRADE`.
TradeRecord = tuple[
    int, int, int, int, int, str, str, UserIdValue, UserIdValue, str, float, "str | None", "str | None"
]
#: The layout of :data:`RECORD_CLEARED`.
ClearedRecord = tuple[int, int]
#: Any captured record; its first item says which layout it has.
Record = OrderRecord | FillRecord | TradeRecord | ClearedRecord


def capture(entries: list[ChangeEntry]) -> tuple[Record, ...]:
    """Copy what storage needs out of one command's change log (runs in the book's thread).

    Returns the records in an order that can be applied as given: per stretch between ``clear()``
    calls, one record per touched order, then the trades.
    """
    records: list[Record] = []
    # order_id -> [order, last_sequence, full, kind, extra]
    touched: dict[str, list[Any]] = {}
    trades: list[TradeRecord] = []
    for kind, a, b, c in entries:
        if kind == CHANGE_TRADE:
            fields = a.fields(b, c)
            trades.append((RECORD_TRADE,) + fields)  # noqa: RUF005 (one copy; unpacking builds a list)
            sequence = fields[1]
            # the trade's maker and taker ids, from the tuple (an attribute of a compiled order each);
            # maker then taker, written out (no tuple of pairs and loop per trade)
            maker_id = fields[4]
            state = touched.get(maker_id)
            if state is None:
                touched[maker_id] = [b, sequence + 1, False, kind, None]
            else:
                state[0] = b
                state[1] = sequence + 1
            taker_id = fields[5]
            state = touched.get(taker_id)
            if state is None:
                touched[taker_id] = [c, sequence + 2, False, kind, None]
            else:
                state[0] = c
                state[1] = sequence + 2
        elif kind == CHANGE_CLEARED:
            _snapshot(touched, records)
            records.extend(trades)
            touched, trades = {}, []
            records.append((RECORD_CLEARED, b))
        else:
            touched[a.order_id] = [a, b, True, kind, c]
    _snapshot(touched, records)
    records.extend(trades)
    return tuple(records)


def _snapshot(touched: dict[str, list[Any]], records: list[Record]) -> None:
    for order, sequence, is_full, kind, extra in touched.values():
        if not is_full:
            records.append((RECORD_FILL, sequence) + order.progress())  # noqa: RUF005
            continue
        records.append(order_record(order, sequence, kind, extra))


def order_record(order: Order, sequence: int, kind: int, extra: Any) -> OrderRecord:
    """The full-state record of ``order`` for one change log entry ``(kind, order, sequence, extra)``.

    The order's fields come from one call of :meth:`Order.fields` (reading them one by one from a
    compiled order cost ~200 instructions an attribute). Records are tuples joined with ``+``: a
    starred display (``(a, *t)``) builds a list and copies it, ~45% slower here."""
    if extra is None:
        return (RECORD_ORDER, sequence, kind, None) + order.fields()  # noqa: RUF005
    reason, open_, quantity = extra
    return (RECORD_ORDER, sequence, kind, reason) + order.fields(quantity, open_)  # noqa: RUF005


#: The event type a full row is reported as, by the kind of the order's last full-state change (a
#: replay applies the full state whatever the type; modifies and triggers report ORDER_MODIFIED).
_FULL_STATE_TYPES = {
    CHANGE_ADDED: EventType.ORDER_ADDED,
    CHANGE_CANCELLED: EventType.ORDER_CANCELLED,
    CHANGE_EXPIRED: EventType.ORDER_EXPIRED,
}


#: A decimal as the database driver takes it (see :func:`manticore_storage.batch.store_decimal`):
#: the Decimal itself, or its text on SQLite.
StoreDecimal = Callable[[Decimal], object]


def _same(value: Decimal) -> object:
    return value


class RowBuilder:
    """Turns one market's records into rows (runs in the writer's thread).

    Decimals are exact on the market's grid; the values met recently are remembered, since prices and
    quantities repeat. :meth:`order_values` and :meth:`trade_values` give rows as lists in the tables'
    column order (:data:`~manticore_storage.rows.ORDER_COLUMNS`,
    :data:`~manticore_storage.rows.TRADE_COLUMNS`) with every decimal passed through ``store`` (the
    form the database driver takes), ready for a prebuilt ``executemany``; :meth:`order_row`,
    :meth:`fill_change` and :meth:`trade_row` give the same rows as dicts of Decimals.
    """

    __slots__ = (
        "_id_prefix",
        "_maker_rate",
        "_price",
        "_price_out",
        "_qty",
        "_qty_out",
        "_store",
        "_symbol",
        "_taker_rate",
    )

    def __init__(self, symbol: str, market: Market, id_prefix: str, store: StoreDecimal = _same) -> None:
        self._symbol = symbol
        self._id_prefix = id_prefix
        price_grid, qty_grid = market.price_grid(), market.quantity_grid()
        to_price, to_qty = price_grid.to_decimal, qty_grid.to_decimal
        self._price = _Decimals(to_price)
        self._qty = _Decimals(to_qty)
        self._store = store
        if store is _same:
            self._price_out: _Decimals = self._price
            self._qty_out: _Decimals = self._qty
        elif store is decimal_text:
            # Grid.to_str writes format(to_decimal(units), "f") from the integer, without a Decimal.
            self._price_out = _Decimals(price_grid.to_str, store(Decimal(0)))
            self._qty_out = _Decimals(qty_grid.to_str, store(Decimal(0)))
        else:
            self._price_out = _Decimals(lambda units: store(to_price(units)), store(Decimal(0)))
            self._qty_out = _Decimals(lambda units: store(to_qty(units)), store(Decimal(0)))
        self._maker_rate = market.maker_fee_rate
        self._taker_rate = market.taker_fee_rate

    def order_values(self, record: OrderRecord, now: float | None) -> list[Any]:
        """The full ``manticore_orders`` row of a :data:`RECORD_ORDER`, in column order, decimals stored.

        A list, so that a later fill of the same order in one batch can be merged in place."""
        (
            _,
            sequence,
            kind,
            reason,
            order_id,
            side,
            order_type,
            tif,
            user_id,
            timestamp,
            stp,
            peak,
            trail,
            trail_is_percent,
            price_ticks,
            quantity,
            filled,
            open_,
            visible,
            expiry,
            stop_ticks,
            trail_ref,
            triggered,
            pending,
            rank,
            client_order_id,
        ) = record
        price, qty = self._price_out, self._qty_out
        if trail is None:
            trail_value = None
        elif trail_is_percent:
            trail_value = self._store(Decimal(trail))
        else:
            trail_value = price[trail]
        # The status the event path stores: a cancel or an expiry by kind, then by what is left open.
        if kind == CHANGE_CANCELLED:
            status = "cancelled"
        elif kind == CHANGE_EXPIRED:
            status = "expired"
        elif pending:
            status = "pending"
        elif open_ == 0:
            status = "filled" if filled else "cancelled"
        else:
            status = "partially_filled" if filled else "open"
        # A resting order's open and visible quantities are mostly its quantity: one cache read.
        stored_quantity = qty[quantity]
        stored_open = stored_quantity if open_ == quantity else qty[open_]
        if user_id.__class__ is str:
            stored_user: str | None = user_id
            user_is_int = False
        else:
            stored_user = None if user_id is None else str(user_id)
            user_is_int = isinstance(user_id, int) and not isinstance(user_id, bool)
        return [
            self._symbol,
            order_id,
            side,
            None if price_ticks is None else price[price_ticks],
            stored_quantity,
            qty[filled],
            stored_open,
            stored_open if visible == open_ else qty[visible],
            qty[peak] if peak else None,
            order_type,
            tif,
            expiry,
            stored_user,
            user_is_int,
            timestamp,
            None if stop_ticks is None else price[stop_ticks],
            trail_value,
            trail_is_percent,
            None if trail_ref is None else price[trail_ref],
            stp,
            triggered,
            status,
            reason if status == "cancelled" else None,
            rank,
            sequence,
            now,
            client_order_id,
        ]

    def fill_values(self, record: FillRecord, now: float | None) -> FillValues:
        """The changed columns of a :data:`RECORD_FILL`, in :data:`~manticore_storage.rows.FILL_COLUMNS`
        order (decimals stored)."""
        _, sequence, order_id, filled, open_, visible, rank = record
        qty = self._qty_out
        return (
            qty[filled],
            qty[open_],
            qty[visible],
            rank,
            "partially_filled" if open_ else "filled",
            sequence,
            now,
            order_id,
        )

    def trade_values(self, record: TradeRecord) -> TradeValues:
        """The ``manticore_trades`` row of a :data:`RECORD_TRADE` in column order, fees exact from the
        market's rates (decimals stored)."""
        (
            _,
            number,
            sequence,
            ticks,
            lots,
            maker_id,
            taker_id,
            maker_user,
            taker_user,
            taker_side,
            ts,
            maker_client_id,
            taker_client_id,
        ) = record
        notional = _EXACT.multiply(self._price[ticks], self._qty[lots])
        store = self._store
        return (
            self._symbol,
            f"{self._id_prefix}T{number}",
            sequence,
            self._price_out[ticks],
            self._qty_out[lots],
            maker_id,
            taker_id,
            None if maker_user is None else str(maker_user),
            None if taker_user is None else str(taker_user),
            taker_side,
            store(_EXACT.multiply(notional, self._maker_rate)),
            store(_EXACT.multiply(notional, self._taker_rate)),
            ts,
            maker_client_id,
            taker_client_id,
        )

    def order_row(self, record: OrderRecord, now: float | None) -> dict[str, Any]:
        """The full ``manticore_orders`` row of a :data:`RECORD_ORDER` as a dict."""
        return dict(zip(ORDER_COLUMNS, self.order_values(record, now), strict=True))

    def fill_change(self, record: FillRecord, now: float | None) -> dict[str, Any]:
        """The fill columns of a :data:`RECORD_FILL` (keyed ``b_symbol``/``b_order_id`` for the update)."""
        values = self.fill_values(record, now)
        change = dict(zip(FILL_COLUMNS, values, strict=False))
        change["b_symbol"] = self._symbol
        change["b_order_id"] = values[-1]
        return change

    def trade_row(self, record: TradeRecord) -> dict[str, Any]:
        """The ``manticore_trades`` row of a :data:`RECORD_TRADE` as a dict."""
        return dict(zip(TRADE_COLUMNS, self.trade_values(record), strict=True))

    def events(self, records: Iterable[Record]) -> list[tuple[EventType, dict[str, Any]]]:
        """The records as event-shaped dicts, in sequence order (for the failed-events table)."""
        events: list[tuple[EventType, dict[str, Any]]] = []
        for record in records:
            tag = record[0]
            if tag == RECORD_ORDER:
                order = cast(OrderRecord, record)
                data = self.order_row(order, None)
                data["sequence"] = data["last_sequence"]
                data["order_timestamp"] = data["timestamp"]
                data["reason"] = data["cancel_reason"]
                events.append((_FULL_STATE_TYPES.get(order[2], EventType.ORDER_MODIFIED), data))
            elif tag == RECORD_FILL:
                data = self.fill_change(cast(FillRecord, record), None)
                data["symbol"] = data.pop("b_symbol")
                data["order_id"] = data.pop("b_order_id")
                data["sequence"] = data["last_sequence"]
                events.append((EventType.ORDER_FILLED, data))
            elif tag == RECORD_TRADE:
                events.append((EventType.TRADE_EXECUTED, self.trade_row(cast(TradeRecord, record))))
            else:
                events.append((EventType.BOOK_CLEARED, {"symbol": self._symbol, "sequence": record[1]}))
        events.sort(key=lambda item: int(item[1]["sequence"]))
        return events


def decimal_text(value: Decimal) -> object:
    """A Decimal as SQLite stores it (see :class:`~manticore_storage.schema.ExactDecimal`): its ``"f"``
    format."""
    return format(value, "f")


class _Decimals(dict[int, Any]):
    """Units -> exact Decimal on one grid (or its stored form): ``decimals[units]``, remembering up to
    4096 values. A dict whose ``__missing__`` converts: a value met before is one dict lookup in C (a
    call of an instance would go through a type slot and an interpreter frame every time)."""

    __slots__ = ("_convert",)

    def __init__(self, convert: Callable[[int], Any], zero: object = Decimal(0)) -> None:
        super().__init__({0: zero})  # zero without decimal places, as events give
        self._convert = convert

    def __missing__(self, units: int) -> Any:
        value = self._convert(units)
        if len(self) < 4096:
            self[units] = value
        return value
