"""The change log: a compact record of what one book command touched, for persisters.

Building event dictionaries costs more than matching does. A consumer that only needs the final state
of what a command changed (storage, say) can instead register a *change recorder* with
:meth:`OrderBook.add_change_recorder`. While one is registered, the book appends one tuple per touch
to the log of the command in progress, and after the command's events were delivered it calls every
recorder once with that log and the book's counters. No dictionary is built for this.

Each entry is a 4-tuple whose first item is its kind:

* ``(CHANGE_ADDED, order, sequence, None)``: ``order`` was accepted (its ORDER_ADDED).
* ``(CHANGE_ORDER, order, sequence, None)``: ``order`` was modified (by the user, by self-trade
  decrement or by a trailing stop's move) or triggered; ``sequence`` is the number of that event.
* ``(CHANGE_CANCELLED, order, sequence, (reason, open, quantity))`` and ``(CHANGE_EXPIRED, order,
  sequence, (None, open, quantity))``: ``order`` left the book for good; ``open`` and ``quantity``
  are its lots at that event (the book may zero a dead order's open quantity afterwards).
* ``(CHANGE_TRADE, trade, maker, taker)``: one execution (its ORDER_FILLED events are covered by
  this entry: ``trade.sequence + 1`` is the maker's and ``trade.sequence + 2`` the taker's).
* ``(CHANGE_CLEARED, None, sequence, None)``: ``clear()`` removed every order.

Entries are in event order. The :class:`~manticore_orderbook.Order` objects are the book's own and
keep changing after the call; a recorder that keeps data past its call must copy what it needs
during it (it runs in the book's thread, under the book's lock). An order that re-entered the book
through a priority-losing modify appears as a new object with the same ``order_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "CHANGE_ADDED",
    "CHANGE_CANCELLED",
    "CHANGE_CLEARED",
    "CHANGE_EXPIRED",
    "CHANGE_ORDER",
    "CHANGE_TRADE",
    "ChangeEntry",
    "ChangeRecorder",
]

CHANGE_ORDER: Final = 0
CHANGE_CANCELLED: Final = 1
CHANGE_EXPIRED: Final = 2
CHANGE_TRADE: Final = 3
CHANGE_CLEARED: Final = 4
CHANGE_ADDED: Final = 5

#: One entry of a command's change log (see the module docstring for the layout per kind).
ChangeEntry = tuple[int, Any, Any, Any]

#: ``recorder(entries, sequence, trade_count, generated_count, last_trade_ticks)``: called once per
#: command that changed something, with the book's counters after it (``last_trade_ticks`` is None
#: before the first trade).
ChangeRecorder = Callable[[list[ChangeEntry], int, int, int, "int | None"], None]
