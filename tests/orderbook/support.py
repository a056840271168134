"""Helpers shared by the order book tests: a fake clock, an event recorder and exact number helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from manticore_orderbook import EventType, OrderBook

#: The keys every published event must carry (issue section 5).
COMMON_KEYS = frozenset({"symbol", "timestamp", "sequence"})

#: The data keys each event type must carry at least (issue section 5).
REQUIRED_KEYS: dict[EventType, frozenset[str]] = {
    EventType.ORDER_ADDED: frozenset(
        {
            "order_id",
            "side",
            "price",
            "quantity",
            "order_type",
            "time_in_force",
            "expiry_time",
            "user_id",
            "timestamp",
        }
    ),
    EventType.ORDER_FILLED: frozenset(
        {
            "order_id",
            "trade_id",
            "fill_price",
            "fill_quantity",
            "filled_quantity",
            "remaining_quantity",
            "is_maker",
            "fee",
            "user_id",
        }
    ),
    EventType.TRADE_EXECUTED: frozenset(
        {
            "trade_id",
            "maker_order_id",
            "taker_order_id",
            "maker_user_id",
            "taker_user_id",
            "taker_side",
            "price",
            "quantity",
            "maker_fee",
            "taker_fee",
        }
    ),
    EventType.ORDER_MODIFIED: frozenset(
        {
            "order_id",
            "old_price",
            "new_price",
            "old_quantity",
            "new_quantity",
            "old_expiry_time",
            "new_expiry_time",
        }
    ),
    EventType.ORDER_CANCELLED: frozenset({"order_id", "reason"}),
    EventType.ORDER_EXPIRED: frozenset({"order_id"}),
    EventType.ORDER_TRIGGERED: frozenset({"order_id"}),
    EventType.PRICE_LEVEL_ADDED: frozenset({"side", "price", "quantity", "order_count"}),
    EventType.PRICE_LEVEL_CHANGED: frozenset({"side", "price", "quantity", "order_count"}),
    EventType.PRICE_LEVEL_REMOVED: frozenset({"side", "price", "quantity", "order_count"}),
    EventType.BOOK_CLEARED: frozenset(),
    EventType.ERROR: frozenset(),
}

TERMINAL_EVENTS = (EventType.ORDER_CANCELLED, EventType.ORDER_EXPIRED)


@dataclass
class FakeClock:
    """An injectable clock: ``clock()`` returns ``now`` until the test moves it."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recorder:
    """An event handler that keeps (event_type, shallow copy of data) for every event it receives."""

    events: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, event_type: EventType, data: dict[str, Any]) -> None:
        self.events.append((event_type, dict(data)))

    def types(self) -> list[EventType]:
        return [event_type for event_type, _ in self.events]

    def of(self, event_type: EventType) -> list[dict[str, Any]]:
        return [data for kind, data in self.events if kind is event_type]

    def since(self, start: int) -> list[tuple[EventType, dict[str, Any]]]:
        return self.events[start:]

    def clear(self) -> None:
        self.events.clear()


def make_book(
    symbol: str = "TEST/USD", clock: FakeClock | None = None, **kwargs: Any
) -> tuple[OrderBook, Recorder, FakeClock]:
    """A book on a fake clock with a recorder on every event (tick 0.01, lot 0.001 unless given)."""
    clock = clock if clock is not None else FakeClock()
    kwargs.setdefault("tick_size", "0.01")
    kwargs.setdefault("lot_size", "0.001")
    book = OrderBook(symbol, clock=clock, **kwargs)
    recorder = Recorder()
    book.event_manager.subscribe_all(recorder)
    return book, recorder, clock


def dec(value: object) -> Decimal:
    """The exact decimal a user reads from a book output (float, str, int or Decimal)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
        return Decimal(value)
    raise AssertionError(f"not a number output: {value!r}")


def levels(book: OrderBook, side: str = "bids") -> list[tuple[Decimal, Decimal, int]]:
    """The snapshot's levels on one side as exact (price, quantity, order_count) tuples."""
    return [(dec(lv["price"]), dec(lv["quantity"]), lv["order_count"]) for lv in book.get_snapshot()[side]]


def trades_of(recorder: Recorder) -> list[tuple[str, str, Decimal, Decimal]]:
    """(maker_order_id, taker_order_id, price, quantity) of every TRADE_EXECUTED recorded."""
    return [
        (d["maker_order_id"], d["taker_order_id"], dec(d["price"]), dec(d["quantity"]))
        for d in recorder.of(EventType.TRADE_EXECUTED)
    ]


def cancelled_quantity(data: dict[str, Any]) -> Decimal:
    """The quantity an ORDER_CANCELLED event says was left (and is now cancelled)."""
    value = data.get("cancelled_quantity", data.get("remaining_quantity"))
    return dec(value)


def order_of(book: OrderBook, order_id: str) -> dict[str, Any]:
    """``book.get_order(order_id)``, which must exist."""
    order = book.get_order(order_id)
    assert order is not None, f"order {order_id!r} is not live"
    return order


def state_of(book: OrderBook) -> tuple[Any, ...]:
    """Everything observable about a book (for 'nothing changed' assertions)."""
    return (book.get_snapshot(), book.sequence, book.get_orders(), len(book), book.get_trade_history(None))
