"""One market inside the exchange: its configuration, its book, the capture of its events, its recent
trades."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from manticore_orderbook import EventManager, OrderBook
from manticore_storage.persister import BookPersister

from .commands import ORDER_ID, TEXT_MEMO
from .config import MarketConfig
from .errors import OrderNotFound
from .feed import CommandCapture

__all__ = ["RECENT_TRADES", "TRADE_KEYS", "Market", "find_live", "new_book", "owned"]

#: How many trades each market keeps for ``Exchange.recent_trades`` (and its checkpoint).
RECENT_TRADES = 1_000
#: The keys of a recent trade, taken from its TRADE_EXECUTED event.
TRADE_KEYS = ("trade_id", "price", "quantity", "taker_side", "timestamp", "sequence")


@dataclass
class Market:
    """A market's parts: ``trades`` holds the latest :data:`RECENT_TRADES` trades, oldest first.

    ``expiries`` is a min-heap of ``(expiry time, order id)`` with an entry for every GTD expiry a live
    order of the book may have (entries of orders that ended or changed their expiry stay until they
    are due): when its first time is in the future, no order of the book is due, which lets a command
    skip the expiry step in O(1). ``persister`` records the book's changes for storage; a replay
    stops it while it replays commands that storage holds already."""

    config: MarketConfig
    book: OrderBook
    capture: CommandCapture
    trades: deque[dict[str, Any]]
    expiries: list[tuple[float, str]] = field(default_factory=list)
    #: The storage persister attached to the book (its change log feeds storage).
    persister: BookPersister | None = None
    #: The record's text of price and quantity strings that a plain limit order of this market gave
    #: (:func:`~.commands.order_args`), by the string as given: the same string always gives the same
    #: text on the same grid, so an order whose two strings are both here needs no Decimal (see
    #: ``Exchange.place_order``). At most :data:`~.commands.TEXT_MEMO` entries each.
    prices: dict[str, str] = field(default_factory=dict)
    quantities: dict[str, str] = field(default_factory=dict)

    def remember_texts(self, price: str, price_text: str, quantity: str, quantity_text: str) -> None:
        """Note what a plain limit order's ``price`` and ``quantity`` strings gave (emptying a memo
        that is full first)."""
        prices = self.prices
        if len(prices) >= TEXT_MEMO:
            prices.clear()
        prices[price] = price_text
        quantities = self.quantities
        if len(quantities) >= TEXT_MEMO:
            quantities.clear()
        quantities[quantity] = quantity_text

    def expires(self, at: float | None, order_id: str) -> None:
        """Note that the live order ``order_id`` expires at ``at`` (None: never)."""
        if at is not None:
            heapq.heappush(self.expiries, (at, order_id))

    def index_expiries(self) -> None:
        """Rebuild :attr:`expiries` from the book's live orders (after a checkpoint is loaded)."""
        self.expiries = [
            (order["expiry_time"], order["order_id"])
            for order in self.book.get_orders()
            if order.get("expiry_time") is not None
        ]
        heapq.heapify(self.expiries)

    def next_expiry(self) -> float | None:
        """The earliest time at which an order of the book may be due (None: none is)."""
        return self.expiries[0][0] if self.expiries else None

    def forget_expiries(self, now: float) -> None:
        """Drop the entries due at ``now``, once the book has expired its due orders."""
        expiries = self.expiries
        while expiries and expiries[0][0] <= now:
            heapq.heappop(expiries)


def new_book(config: MarketConfig, manager: EventManager, clock: Callable[[], float]) -> OrderBook:
    """An empty book for ``config``'s market, publishing to ``manager``, reading ``clock``: exact
    string numbers, order ids ``<symbol without "/">-<n>`` for the book's own ids."""
    return OrderBook(
        config.symbol,
        event_manager=manager,
        maker_fee_rate=config.maker_fee_rate,
        taker_fee_rate=config.taker_fee_rate,
        tick_size=config.tick_size,
        lot_size=config.lot_size,
        number_format="str",
        clock=clock,
        order_id_prefix=config.symbol.replace("/", "") + "-",
    )


def find_live(markets: dict[str, Market], order_id: str) -> tuple[Market, dict[str, Any]] | None:
    """The market and the book's view of the live order ``order_id`` (resting or a waiting stop), or
    None."""
    for market in markets.values():
        if order_id in market.book:
            order = market.book.get_order(order_id)
            if order is not None:
                return market, order
    return None


def owned(markets: dict[str, Market], user_id: str | None, order_id: object) -> Market:
    """The market of ``user_id``'s live order ``order_id`` (any user's when ``user_id`` is None);
    OrderNotFound when there is none (another user's order is not found either)."""
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        raise OrderNotFound(f"order {str(order_id)[:64]!r} not found")
    found = find_live(markets, order_id)
    if found is None:
        raise OrderNotFound(f"order {order_id!r} not found")
    market, order = found
    if user_id is not None and order.get("user_id") != user_id:
        raise OrderNotFound(f"order {order_id!r} not found")
    return market
