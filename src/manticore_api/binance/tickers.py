"""Binance tickers: the rolling 24 h statistics, last prices, best bid/ask and the 5-minute average price.

Computed from the trades of the last 24 h that :class:`~.klines.Klines` keeps (loaded at start from storage,
then live) and the book's best levels. Prices use the market's tick decimals, quantities its lot decimals,
quote volumes both; ``priceChangePercent`` has three decimals like Binance's.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from .klines import DAY_MS, Klines
from .markets import BinanceMarkets

__all__ = ["avg_price", "book_ticker", "price_ticker", "ticker_24hr"]

_AVG_MINUTES = 5


class _HasSnapshot(Protocol):
    def get_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]: ...


def _now_ms(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms


def _best(exchange: _HasSnapshot, native: str) -> tuple[list[Any], list[Any]]:
    book = exchange.get_snapshot(native, 1)
    return book["bids"][:1], book["asks"][:1]


def book_ticker(exchange: _HasSnapshot, markets: BinanceMarkets, native: str) -> dict[str, Any]:
    """``{"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}`` (zeros for an empty side)."""
    bids, asks = _best(exchange, native)
    price, qty = markets.price, markets.qty
    return {
        "symbol": markets.binance_symbol(native),
        "bidPrice": price(native, bids[0]["price"] if bids else 0),
        "bidQty": qty(native, bids[0]["quantity"] if bids else 0),
        "askPrice": price(native, asks[0]["price"] if asks else 0),
        "askQty": qty(native, asks[0]["quantity"] if asks else 0),
    }


def price_ticker(markets: BinanceMarkets, klines: Klines, native: str) -> dict[str, Any]:
    """``{"symbol", "price"}``: the last trade price (0 before the first trade)."""
    last = klines.last_price(native)
    return {"symbol": markets.binance_symbol(native), "price": markets.price(native, last or 0)}


def avg_price(
    markets: BinanceMarkets, klines: Klines, native: str, now_ms: int | None = None
) -> dict[str, Any]:
    """``{"mins": 5, "price", "closeTime"}``: the volume-weighted price of the last 5 minutes' trades, or the
    last trade price when there were none."""
    now = _now_ms(now_ms)
    trades, _ = klines.window(native, now, _AVG_MINUTES * 60_000)
    volume = sum((trade.quantity for trade in trades), Decimal(0))
    if volume > 0:
        quote = sum((trade.price * trade.quantity for trade in trades), Decimal(0))
        average = (quote / volume).quantize(
            Decimal(1).scaleb(-markets.price_decimals(native)), ROUND_HALF_EVEN
        )
        close_time = trades[-1].time_ms
    else:
        average = klines.last_price(native) or Decimal(0)
        close_time = now
    return {"mins": _AVG_MINUTES, "price": markets.price(native, average), "closeTime": close_time}


def ticker_24hr(
    exchange: _HasSnapshot, markets: BinanceMarkets, klines: Klines, native: str, now_ms: int | None = None
) -> dict[str, Any]:
    """The rolling 24 h ticker of ``native`` at ``now_ms`` (default now) in ``GET /api/v3/ticker/24hr``'s
    shape. Without trades in the window the prices are the last known price and the volumes 0, and
    ``firstId``/``lastId`` are -1, as on Binance."""
    now = _now_ms(now_ms)
    trades, before = klines.window(native, now, DAY_MS)
    last_known = klines.last_price(native)
    price, qty, quote = markets.price, markets.qty, markets.quote
    if trades:
        open_price = trades[0].price
        last = trades[-1]
        high = max(trade.price for trade in trades)
        low = min(trade.price for trade in trades)
        volume = sum((trade.quantity for trade in trades), Decimal(0))
        quote_volume = sum((trade.price * trade.quantity for trade in trades), Decimal(0))
        weighted = quote_volume / volume
        last_price, last_qty = last.price, last.quantity
        first_id, last_id, count = trades[0].trade_no, last.trade_no, len(trades)
    else:
        open_price = high = low = last_price = weighted = last_known or Decimal(0)
        volume = quote_volume = last_qty = Decimal(0)
        first_id = last_id = -1
        count = 0
    change = last_price - open_price
    percent = (change * 100 / open_price) if open_price else Decimal(0)
    ticks = Decimal(1).scaleb(-markets.price_decimals(native))
    bids, asks = _best(exchange, native)
    return {
        "symbol": markets.binance_symbol(native),
        "priceChange": price(native, change),
        "priceChangePercent": f"{percent.quantize(Decimal('0.001'), ROUND_HALF_EVEN):f}",
        "weightedAvgPrice": price(native, weighted.quantize(ticks, ROUND_HALF_EVEN)),
        "prevClosePrice": price(native, before if before is not None else open_price),
        "lastPrice": price(native, last_price),
        "lastQty": qty(native, last_qty),
        "bidPrice": price(native, bids[0]["price"] if bids else 0),
        "bidQty": qty(native, bids[0]["quantity"] if bids else 0),
        "askPrice": price(native, asks[0]["price"] if asks else 0),
        "askQty": qty(native, asks[0]["quantity"] if asks else 0),
        "openPrice": price(native, open_price),
        "highPrice": price(native, high),
        "lowPrice": price(native, low),
        "volume": qty(native, volume),
        "quoteVolume": quote(native, quote_volume),
        "openTime": now - DAY_MS,
        "closeTime": now,
        "firstId": first_id,
        "lastId": last_id,
        "count": count,
    }
