"""One market inside the exchange: its configuration, its book, the capture of its events, its recent
trades."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from manticore_orderbook import OrderBook

from .commands import ORDER_ID
from .config import MarketConfig
from .errors import OrderNotFound
from .feed import CommandCapture

__all__ = ["RECENT_TRADES", "TRADE_KEYS", "Market", "find_live", "owned"]

#: How many trades each market keeps for ``Exchange.recent_trades`` (and its checkpoint).
RECENT_TRADES = 1_000
#: The keys of a recent trade, taken from its TRADE_EXECUTED event.
TRADE_KEYS = ("trade_id", "price", "quantity", "taker_side", "timestamp", "sequence")


@dataclass
class Market:
    """A market's parts: ``trades`` holds the latest :data:`RECENT_TRADES` trades, oldest first."""

    config: MarketConfig
    book: OrderBook
    capture: CommandCapture
    trades: deque[dict[str, Any]]


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
