"""The Binance-compatible surface on a gateway: :class:`RemoteTradeHistory`, the
:class:`~manticore_api.binance.history.TradeHistory` of a :class:`~.remote.RemoteExchange`.

The surface (``manticore_api.binance``) runs on the gateway unchanged; what it reads beside the native
API comes from the shard's leader (in a split deployment: the limits from the account shard, trades
from the market shard owning their market, see :mod:`.routed_gateway`):

* the risk limits (``risk_limits``, read once when the surface is mounted: they are configuration);
* the market list, read again at most once a second (a market created meanwhile is known to the
  surface within a second);
* at mount, every stored trade, in pages of ``trade_rows`` from each of ``remote.trade_sources`` (the
  leader flushes its storage first), for
  the candles and the executed quote amounts of orders; live trades and fills then follow from the
  shard's market-data subject. Messages that arrive while the pages load are held and applied after
  them: candles skip a trade whose book sequence they have seen, the quote amounts skip a fill whose
  trade was loaded, so nothing is counted twice or missed;
* historical trades (``stored_trades``) and a storage flush before the lists that read storage.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterable
from typing import Any, cast

from manticore_api.binance.fill_ledger import FillLedger
from manticore_api.binance.history import MarketSource, TradeHistory
from manticore_api.binance.klines import Klines
from manticore_matching import Exchange, MarketConfig
from manticore_risk import RiskLimits

from .remote import RemoteExchange
from .server import TRADE_PAGE

__all__ = ["RemoteTradeHistory"]


class _CachedMarkets:
    """The leader's market list: read (blocking) the first time, at mount; afterwards a list older
    than ``ttl`` seconds is answered as it is while a fresh one is read in the background, so the
    surface's handlers never wait for it on the event loop."""

    def __init__(self, remote: RemoteExchange, ttl: float = 1.0) -> None:
        self._remote = remote
        self._ttl = ttl
        self._read_at = 0.0
        self._markets: dict[str, MarketConfig] | None = None
        self._reading: concurrent.futures.Future[Any] | None = None

    @property
    def markets(self) -> dict[str, MarketConfig]:
        if self._markets is None:
            self._markets = self._remote.markets
            self._read_at = time.monotonic()
        elif time.monotonic() - self._read_at >= self._ttl and self._reading is None:
            self._reading = self._remote.start_read("markets")
            self._reading.add_done_callback(self._read)
        return self._markets

    def _read(self, future: concurrent.futures.Future[Any]) -> None:
        self._reading = None
        self._read_at = time.monotonic()
        if not future.cancelled() and future.exception() is None:
            answer = future.result()
            self._markets = {symbol: MarketConfig.from_dict(config) for symbol, config in answer.items()}


class _Handoff:
    """The market-data listener of the surface's candles and quote amounts: holds messages while the
    stored trades load (:meth:`release` applies them), then passes them on."""

    def __init__(self, klines: Klines, ledger: FillLedger) -> None:
        self._klines = klines
        self._ledger = ledger
        self._lock = threading.Lock()
        self._held: list[list[dict[str, Any]]] | None = []

    def on_messages(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(batch)
                return
        self._klines.on_messages(batch)
        self._ledger.on_messages(batch)

    def release(self, loaded_trades: set[str]) -> None:
        """Apply the held messages (fills of ``loaded_trades`` are counted already) and pass on the next."""
        with self._lock:
            held, self._held = self._held or [], None
            for batch in held:
                self._klines.on_messages(batch)
                self._ledger.on_messages(_new_fills(batch, loaded_trades))


def _new_fills(batch: Iterable[dict[str, Any]], loaded: set[str]) -> list[dict[str, Any]]:
    return [m for m in batch if m.get("type") == "fill" and str(m.get("trade_id")) not in loaded]


class RemoteTradeHistory(TradeHistory):
    """The surface's reads from the shard's leader (see the module doc)."""

    def __init__(self, remote: RemoteExchange) -> None:
        super().__init__(_as_exchange(remote))
        self.remote = remote
        self._markets = _CachedMarkets(remote)
        self._limits: RiskLimits | None = None

    @property
    def market_source(self) -> MarketSource:
        return self._markets

    def risk_limits(self) -> RiskLimits:
        if self._limits is None:
            self._limits = RiskLimits(**self.remote.call("risk_limits"))
        return self._limits

    def load(self, klines: Klines, ledger: FillLedger) -> None:
        handoff = _Handoff(klines, ledger)
        self.remote.add_listener(handoff.on_messages)
        loaded: set[str] = set()
        for source in self.remote.trade_sources:
            offset = 0
            while True:
                rows = source.call("trade_rows", offset=offset, limit=TRADE_PAGE)
                for symbol, price, quantity, taker_side, stamp, sequence, trade, maker, taker in rows:
                    klines.on_trade(symbol, price, quantity, stamp, taker_side, sequence, trade)
                    ledger.add_trade(maker, taker, price, quantity)
                    loaded.add(str(trade))
                offset += len(rows)
                if len(rows) < TRADE_PAGE:
                    break
        handoff.release(loaded)

    async def flush(self) -> None:
        await self.remote.read("flush_storage")

    async def stored_trades(
        self, symbol: str, from_no: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.remote.read(
            "stored_trades", symbol=symbol, from_no=from_no, start_ms=start_ms, end_ms=end_ms, limit=limit
        )
        return result


def _as_exchange(remote: RemoteExchange) -> Exchange:
    # TradeHistory's base methods are all overridden here; it keeps the remote as its exchange.
    return cast(Exchange, remote)
