"""The persister: one book's changes, grouped per command, written through storage.

Attach with :meth:`manticore_storage.StorageManager.attach`. In ``"write_behind"`` mode a command's
changes are handed to the background writer when the command ends (the book call does not wait for the
database). In ``"sync"`` mode they are committed before the book call returns; if that fails for longer
than ``sync_timeout`` seconds, :class:`~manticore_storage.PersistenceError` leaves the book call, and
the command, already applied in memory, must be treated as not acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.changes import CHANGE_CLEARED, CHANGE_TRADE, ChangeEntry

from .apply import OneOrderHeader, PackedUnit, UnitTuple
from .capture import capture, order_record
from .records import Market

__all__ = ["PERSISTED_EVENTS", "BookPersister", "Mode"]

Mode = Literal["write_behind", "sync"]

#: The event types storage keeps (an attached persister captures their changes without subscribing);
#: price-level events are derived data and are not stored.
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
    """Captures one book's changes per command and passes them on as one unit.

    Units are plain tuples (:data:`~manticore_storage.apply.UnitTuple`): a command that touched one
    order without trading, the most common kind, becomes a single flat tuple.

    It registers a change recorder on the book (no event dictionaries are built for storage): at the
    end of each command it copies the touched orders' integer fields and the command's trades
    (:func:`~manticore_storage.capture.capture`), and the writer turns those into rows.
    """

    __slots__ = ("_deliver", "_recorder", "_started", "book", "market", "mode", "symbol")

    def __init__(
        self, book: OrderBook, market: Market, mode: Mode, deliver: Callable[[UnitTuple], None]
    ) -> None:
        self.book = book
        self.market = market
        self.mode: Mode = mode
        self.symbol = book.symbol
        self._deliver = deliver
        self._started = False
        symbol = self.symbol
        id_prefix = book.order_id_prefix

        def on_changes(
            entries: list[ChangeEntry],
            sequence: int,
            trade_count: int,
            generated: int,
            last_trade: int | None,
        ) -> None:
            if len(entries) == 1:  # most commands: one order rests, or is cancelled, without trading
                kind, order, order_sequence, extra = entries[0]
                if kind != CHANGE_TRADE and kind != CHANGE_CLEARED:
                    header: OneOrderHeader = (symbol, sequence, trade_count, generated, last_trade, id_prefix)
                    deliver(header + order_record(order, order_sequence, kind, extra))
                    return
            packed: PackedUnit = (
                symbol,
                (),
                sequence,
                trade_count,
                generated,
                last_trade,
                capture(entries),
                id_prefix,
                True,
            )
            deliver(packed)

        self._recorder = on_changes

    def start(self) -> None:
        """Record the book's changes from its next command on (again after :meth:`stop`); idempotent."""
        if not self._started:
            self.book.add_change_recorder(self._recorder)
            self._started = True

    def stop(self) -> None:
        """Stop recording the book's changes (no change log is kept while stopped); idempotent."""
        if self._started:
            self.book.remove_change_recorder(self._recorder)
            self._started = False

    @property
    def buffered(self) -> int:
        """Changes of the command in progress not handed on yet (always 0: a unit leaves at command end)."""
        return 0
