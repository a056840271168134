"""Awaitable reads of the exchange, for handlers that run on the event loop.

The API's handlers read the exchange through ``service.reads`` (``await service.reads.balances(user)``)
rather than calling the exchange directly, so that a service whose exchange is remote (a gateway,
:mod:`manticore_cluster.gateway`) awaits the round trip to the shard instead of blocking the loop for
it. :class:`AsyncReads` is the embedded exchange's: each read is the in-memory call, answered at once
(no thread, no waiting). Answers and errors are exactly the exchange's
(:class:`~manticore_matching.Exchange` documents them).
"""

from __future__ import annotations

from typing import Any

from manticore_matching import Exchange, MarketConfig

__all__ = ["AsyncReads"]


class AsyncReads:
    """The exchange's reads as coroutines (see the module doc); ``exchange`` is read in memory."""

    __slots__ = ("exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    async def markets(self) -> dict[str, MarketConfig]:
        """Market configs by symbol, in creation order."""
        return self.exchange.markets

    async def require_market(self, symbol: object) -> None:
        """UnknownMarket unless ``symbol`` is a market."""
        self.exchange.require_market(symbol)

    async def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The book of ``symbol`` (see ``Exchange.get_snapshot``)."""
        return self.exchange.get_snapshot(symbol, depth)

    async def recent_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        """The market's recent trades, newest first."""
        return self.exchange.recent_trades(symbol, limit)

    async def balances(self, user_id: str) -> dict[str, Any]:
        """The user's balances (see ``Exchange.balances``)."""
        return self.exchange.balances(user_id)

    async def open_orders(self, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
        """The user's live orders."""
        return self.exchange.open_orders(user_id, symbol)

    async def get_order(self, user_id: str | None, order_id: str) -> dict[str, Any] | None:
        """One order of the user (any user's for None), live or finished; None if not found."""
        return self.exchange.get_order(user_id, order_id)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> dict[str, Any] | None:
        """The user's newest order named ``client_order_id`` (may read storage: the native route runs
        it in a worker thread; the Binance surface has always called it here)."""
        return self.exchange.get_order_by_client_id(user_id, client_order_id)

    async def statistics(self) -> dict[str, Any]:
        """The exchange's counters."""
        return self.exchange.statistics()
