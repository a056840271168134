"""Where the Binance surface gets what the native API does not serve: the risk limits, the stored trade
history (for candles, executed quote amounts and historical trades) and a storage flush.

:class:`TradeHistory` is the embedded server's: the exchange's own risk manager and storage. A gateway
(``manticore_cluster.gateway``) supplies one that asks the shard's leader, so the surface's code and
answers are the same on both.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from manticore_matching import Exchange, MarketConfig
from manticore_risk import RiskLimits
from manticore_storage.trade_history import stored_trades

from .fill_ledger import FillLedger
from .klines import Klines

__all__ = ["MarketSource", "TradeHistory", "trade_id"]


class MarketSource(Protocol):
    """Anything with the exchange's ``markets`` (configs by symbol, in creation order)."""

    @property
    def markets(self) -> dict[str, MarketConfig]: ...


def trade_id(exchange: Exchange, symbol: str, number: int) -> str:
    """The exchange's id of trade ``number`` of market ``symbol`` (Binance's integer trade id)."""
    return f"{exchange.book(symbol).order_id_prefix}T{number}"


class TradeHistory:
    """The embedded exchange's history (see the module doc)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    @property
    def market_source(self) -> MarketSource:
        """Where :class:`~.markets.BinanceMarkets` reads the market list (every time it looks)."""
        return self.exchange

    def risk_limits(self) -> RiskLimits:
        """The exchange's pre-trade limits."""
        return self.exchange.risk.limits

    def load(self, klines: Klines, ledger: FillLedger) -> None:
        """Load every stored trade into ``klines`` and ``ledger`` and make both follow the exchange's
        durable messages (call before the exchange takes commands)."""
        klines.attach(self.exchange)
        ledger.load(self.exchange.storage)
        # Every user's fills, as records: no fill message is built for the ledger.
        self.exchange.add_fill_listener(ledger.on_fills)

    async def flush(self) -> None:
        """Wait until storage holds everything durable (the lists read storage)."""
        storage = self.exchange.storage
        if storage is not None:
            await run_in_threadpool(storage.flush, 10.0)

    async def stored_trades(
        self, symbol: str, from_no: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Stored trades of ``symbol`` oldest first, from trade number ``from_no`` on and/or within
        ``[start_ms, end_ms]``, at most ``limit`` (:func:`manticore_storage.trade_history.stored_trades`)."""
        await self.flush()
        storage = self.exchange.storage
        assert storage is not None
        first = None if from_no is None else trade_id(self.exchange, symbol, from_no)
        return await run_in_threadpool(stored_trades, storage.engine, symbol, first, start_ms, end_ms, limit)
