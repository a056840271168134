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
from .market import Market, find_live
from .recent import RecentOrders

__all__ = ["READ_FLUSH_TIMEOUT", "ExchangeReads"]

#: Seconds a storage-backed read (order history, fills) waits for storage to commit what it was given.
READ_FLUSH_TIMEOUT = 10.0


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

    def require_market(self, symbol: object) -> None:
        """Nothing if ``symbol`` is a market; UnknownMarket otherwise (as :meth:`book` raises)."""
        self._market(symbol)

    def recent_order_by_client_id(self, user_id: object, client_order_id: object) -> dict[str, Any] | None:
        """The order that ``user_id`` named ``client_order_id`` if it is live or recently finished
        (in memory: never storage), shaped like :meth:`get_order`; None otherwise."""
        with self._lock:
            order_id = self._orders.live_client_order(user_id, client_order_id)
            if order_id is None and isinstance(user_id, str) and isinstance(client_order_id, str):
                order_id = self._orders.recent_names.get((user_id, client_order_id))
            if order_id is None or not isinstance(user_id, str):
                return None
            found = find_live(self._markets, order_id)
            if found is not None:
                return queries.rest_order({"symbol": found[0].config.symbol, **found[1]}, found[0].config)
            order = self._orders.recent.get(order_id)
            return None if order is None else dict(order)

    def journal_state(self) -> dict[str, Any]:
        """The command journal: ``healthy`` (it can write), ``appended`` (last position given out) and
        ``durable`` (last position on disk); a command at position ``p`` is acknowledged once
        ``durable >= p``."""
        journal = self.journal
        return {"healthy": journal.healthy, "appended": journal.appended, "durable": journal.durable}

    def component_health(self) -> dict[str, Any]:
        """The exchange's part of the health report: ``journal`` (``ok``, ``durable_position``),
        ``storage`` (``ok``: a query works, ``pending_writes``), ``orders_resting``."""
        stats = self.statistics()
        storage = self.storage
        return {
            "journal": {"ok": self.journal.healthy, "durable_position": stats["journal_durable"]},
            "storage": {
                "ok": storage is not None and storage.check_connection(),
                "pending_writes": stats["storage_pending"],
            },
            "orders_resting": stats["orders_resting"],
        }

    def _market(self, symbol: object) -> Market:
        market = self._markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            raise UnknownMarket(f"unknown market {str(symbol)[:40]!r}")
        return market

    def _storage(self) -> StorageManager:
        if self.storage is None:
            raise ServiceUnavailable("the exchange is not open")
        return self.storage

    def _stored(self) -> StorageManager:
        """Storage, once it has committed every write queued so far (a durable command's units are
        queued before its waiters are released, so a read after an acknowledgement sees the command;
        the write-behind writer otherwise trails by its gather delay). Waits up to
        :data:`READ_FLUSH_TIMEOUT` seconds: a writer that is stuck longer leaves the read with what is
        stored (never an error: the read model is behind, not wrong)."""
        storage = self._storage()
        storage.flush(READ_FLUSH_TIMEOUT)
        return storage

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
        """The user's orders of every status from storage, newest first: storage first writes what it
        was given (:meth:`_stored`), so every command acknowledged before the call is in it."""
        return queries.order_history(self._markets, self._stored(), user_id, symbol, limit)

    def fills(self, user_id: str, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The user's fills, newest first, at most ``limit``, from storage: one per side of a trade the
        user was on (a self-trade gives two), each exactly ``trade_id, symbol, order_id,
        client_order_id, side, role`` (``maker``/``taker``), ``price, quantity, fee`` (exact strings;
        the fee is in ``fee_asset``, the market's quote asset, negative for a rebate), ``fee_asset``,
        ``timestamp``. The counterparty (its user and its order) is never shown. Every trade of a command
        acknowledged before the call is there (:meth:`_stored`)."""
        return queries.fills(self._markets, self._stored(), user_id, symbol, limit)

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
