"""The read side of the exchange: balances, books, orders, fills, recent trades, counters.

:class:`ExchangeReads` is the base of :class:`~manticore_matching.exchange.Exchange` that answers
queries; it changes nothing. Order and fill reads go to the live book first, then the recent-orders
view, then storage (:mod:`.queries`). Reads of in-memory state hold the exchange's lock; reads that
only go to storage do not.
"""

from __future__ import annotations

import threading
from typing import Any

from manticore_orderbook import OrderBook
from manticore_risk import RiskManager
from manticore_storage import StorageManager

from . import queries
from .errors import ServiceUnavailable, UnknownMarket
from .journal import CommandLog
from .market import Market
from .recent import RecentOrders

__all__ = ["ExchangeReads"]


class ExchangeReads:
    """Queries of an exchange's state (the attributes below are the exchange's)."""

    _lock: threading.RLock
    _markets: dict[str, Market]
    _orders: RecentOrders
    _checkpoint_position: int
    risk: RiskManager
    storage: StorageManager | None
    journal: CommandLog
    replayed_records: int
    handler_errors: int

    def book(self, symbol: str) -> OrderBook:
        """The live book of ``symbol`` (read it; send commands through the exchange)."""
        return self._market(symbol).book

    def _market(self, symbol: object) -> Market:
        market = self._markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            raise UnknownMarket(f"unknown market {str(symbol)[:40]!r}")
        return market

    def _storage(self) -> StorageManager:
        if self.storage is None:
            raise ServiceUnavailable("the exchange is not open")
        return self.storage

    def balances(self, user_id: str) -> dict[str, Any]:
        """``{"balances": {asset: {"available", "held"}}}`` with exact decimal strings."""
        return {"balances": self.risk.balances(user_id)}

    def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The book's snapshot (exact strings) with its ``sequence``."""
        with self._lock:
            return self._market(symbol).book.get_snapshot(depth)

    def get_order(self, user_id: str | None, order_id: str) -> dict[str, Any] | None:
        """A user's order (live, recently finished, or stored), with ``symbol``; None if not theirs."""
        with self._lock:
            return queries.get_order(self._markets, self._orders, self._storage(), user_id, order_id)

    def get_order_by_client_id(self, user_id: str, client_order_id: str) -> dict[str, Any] | None:
        """The newest order that ``user_id`` named ``client_order_id`` (live, recently finished, or
        stored), shaped like :meth:`get_order`; None if there is none (another user's are never seen)."""
        with self._lock:
            return queries.get_order_by_client_id(
                self._markets, self._orders, self._storage(), user_id, client_order_id
            )

    def open_orders(self, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
        """The user's live orders (resting and untriggered stops), per market in book order."""
        with self._lock:
            markets = [self._market(symbol)] if symbol is not None else list(self._markets.values())
            return queries.open_orders(markets, user_id)

    def order_history(
        self, user_id: str, symbol: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The user's orders of every status from storage, newest first (storage trails the journal by
        the write-behind delay, normally milliseconds)."""
        return queries.order_history(self._markets, self._storage(), user_id, symbol, limit)

    def fills(self, user_id: str, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The user's fills, newest first, at most ``limit``, from storage: one per side of a trade the
        user was on (a self-trade gives two), each exactly ``trade_id, symbol, order_id,
        client_order_id, side, role`` (``maker``/``taker``), ``price, quantity, fee`` (exact strings;
        the fee is in ``fee_asset``, the market's quote asset, negative for a rebate), ``fee_asset``,
        ``timestamp``. The counterparty (its user and its order) is never shown."""
        return queries.fills(self._markets, self._storage(), user_id, symbol, limit)

    def recent_trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        """The market's latest trades (up to 1000 kept), newest first: ``trade_id, price, quantity,
        taker_side, timestamp, sequence``."""
        with self._lock:
            trades = self._market(symbol).trades
            count = max(0, min(limit, len(trades)))
            return [trades[-1 - i] for i in range(count)]

    def statistics(self) -> dict[str, Any]:
        """Counters for health and metrics."""
        return {
            "markets": len(self._markets),
            "journal_appended": self.journal.appended,
            "journal_durable": self.journal.durable,
            "journal_batches": self.journal.batches,
            "checkpoint_position": self._checkpoint_position,
            "replayed_records": self.replayed_records,
            "handler_errors": self.handler_errors,
            "storage_pending": 0 if self.storage is None else self.storage.get_pending_write_count(),
            "orders_resting": sum(len(market.book) for market in self._markets.values()),
        }
