"""The persister: one book's events, grouped per command, written through storage.

Attach with :meth:`manticore_storage.StorageManager.attach`. In ``"write_behind"`` mode a command's
events are handed to the background writer when the command ends (the book call does not wait for the
database). In ``"sync"`` mode they are committed before the book call returns; if that fails for longer
than ``sync_timeout`` seconds, :class:`~manticore_storage.PersistenceError` leaves the book call, and
the command, already applied in memory, must be treated as not acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from manticore_orderbook import EventType, OrderBook

from .apply import Unit
from .records import Market

__all__ = ["PERSISTED_EVENTS", "BookPersister", "Mode"]

Mode = Literal["write_behind", "sync"]

#: The event types storage needs; price-level events are derived data and are not stored.
PERSISTED_EVENTS: tuple[EventType, ...] = (
    EventType.ORDER_ADDED,
    EventType.ORDER_MODIFIED,
    EventType.ORDER_CANCELLED,
    EventType.ORDER_EXPIRED,
    EventType.ORDER_TRIGGERED,
    EventType.ORDER_FILLED,
    EventType.TRADE_EXECUTED,
    EventType.BOOK_CLEARED,
)


class BookPersister:
    """Collects one book's persisted events and passes each command's events on as one :class:`Unit`."""

    __slots__ = ("_buffer", "_deliver", "_handler", "book", "market", "mode", "symbol")

    def __init__(self, book: OrderBook, market: Market, mode: Mode, deliver: Callable[[Unit], None]) -> None:
        self.book = book
        self.market = market
        self.mode: Mode = mode
        self.symbol = book.symbol
        self._deliver = deliver
        self._buffer: list[tuple[EventType, dict[str, Any]]] = []
        symbol = self.symbol
        buffer_append = self._buffer.append

        def on_event(event_type: EventType, data: dict[str, Any]) -> None:
            if data["symbol"] == symbol:
                buffer_append((event_type, data))

        self._handler = on_event

    def start(self) -> None:
        manager = self.book.event_manager
        for event_type in PERSISTED_EVENTS:
            manager.subscribe(event_type, self._handler)
        manager.add_command_listener(self.on_command)

    def stop(self) -> None:
        manager = self.book.event_manager
        for event_type in PERSISTED_EVENTS:
            manager.unsubscribe(event_type, self._handler)
        manager.remove_command_listener(self.on_command)

    @property
    def buffered(self) -> int:
        """Events of the command in progress, not yet handed on."""
        return len(self._buffer)

    def on_command(self, symbol: str, sequence: int) -> None:
        """The book finished a command: hand its events on as one unit."""
        if symbol != self.symbol or not self._buffer:
            return
        _, trade_count, generated = self.book.counters()
        unit = Unit(
            symbol,
            self._buffer[:],
            sequence,
            trade_count,
            generated,
            self.book.last_trade_price,
        )
        self._buffer.clear()
        self._deliver(unit)
