"""One market inside the exchange: its configuration, its book, the capture of its events, its recent
trades."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from manticore_orderbook import OrderBook

from .config import MarketConfig
from .feed import CommandCapture

__all__ = ["RECENT_TRADES", "TRADE_KEYS", "Market", "find_live"]

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
