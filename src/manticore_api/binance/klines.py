"""Candles (Binance klines) for every Binance interval, built from the exchange's trades.

Design (docs/binance.md, "Klines"): candles are kept in memory, one sorted series per market and interval,
and are rebuilt when the server starts from the trades table in storage, which holds every durable trade
(the exchange replays its journal into storage before it serves). From then on every trade that becomes
durable updates them through an exchange listener (:meth:`Klines.attach`), so REST ``klines`` and the kline
streams read the same series and a restart loses nothing: the trades are the record, candles a view.
Trades already loaded are recognised by their book sequence and never counted twice.

Units: times are integer milliseconds since the epoch (a candle's ``close_time`` is its next open time minus
one); prices, volumes and quote volumes are decimals formatted with the market's tick and lot decimals.
Intervals are aligned to the epoch (UTC), weeks start on Monday 00:00 UTC and months on the calendar month,
as on Binance. Only intervals with at least one trade have a stored candle (see :meth:`Klines.current` for
the open candle of an interval without trades).

Thread safety: :meth:`on_trade` runs on the journal's writer thread, the readers on the event loop; one
lock guards the series.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from sqlalchemy import select

from manticore_storage import schema

from .markets import BinanceMarkets

__all__ = ["DAY_MS", "INTERVALS", "Klines", "WindowTrade", "interval_close", "interval_open"]

DAY_MS = 86_400_000

#: Every Binance interval and its length in ms (months vary: 0 marks calendar arithmetic).
INTERVALS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 0,
}
_MONDAY_OFFSET = 4 * 86_400_000  # 1970-01-01 was a Thursday; 1970-01-05 a Monday


def interval_open(interval: str, time_ms: int) -> int:
    """The open time (ms) of the ``interval`` candle that contains ``time_ms``."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(time_ms / 1000, tz=dt.timezone.utc)
        start = dt.datetime(day.year, day.month, 1, tzinfo=dt.timezone.utc)
        return int(start.timestamp()) * 1000
    length = INTERVALS[interval]
    offset = _MONDAY_OFFSET if interval == "1w" else 0
    return time_ms - (time_ms - offset) % length


def interval_close(interval: str, open_ms: int) -> int:
    """The close time (ms, inclusive) of the candle opening at ``open_ms``: the next open minus 1."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(open_ms / 1000, tz=dt.timezone.utc)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return int(dt.datetime(year, month, 1, tzinfo=dt.timezone.utc).timestamp()) * 1000 - 1
    return open_ms + INTERVALS[interval] - 1


@dataclass(slots=True)
class Candle:
    """One candle's numbers (Decimals); ``taker_buy_*`` count trades whose taker bought."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_base: Decimal
    taker_buy_quote: Decimal


class WindowTrade(NamedTuple):
    """One trade of the rolling 24 h window (for tickers): time in ms, Binance trade id, price, quantity."""

    time_ms: int
    trade_no: int
    price: Decimal
    quantity: Decimal


def _trade_no(trade_id: object) -> int:
    tail = str(trade_id).rsplit("T", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class _Series:
    __slots__ = ("candles", "opens")

    def __init__(self) -> None:
        self.opens: list[int] = []
        self.candles: list[Candle] = []


class _HasStorage(Protocol):
    storage: Any

    def add_trade_listener(self, listener: Any) -> None: ...

    def remove_trade_listener(self, listener: Any) -> None: ...


class Klines:
    """Every market's candles in every Binance interval.

    Args:
        markets: formats numbers with each market's decimals (symbols here are Manticore's ``BASE/QUOTE``).

    Feed it with :meth:`attach` (storage + live trades; what the server does) or :meth:`on_trade`.
    Read it with :meth:`klines` (REST) and :meth:`current` (streams).
    """

    def __init__(self, markets: BinanceMarkets) -> None:
        self._markets = markets
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}
        self._last_sequence: dict[str, int] = {}
        self._exchange: _HasStorage | None = None
        self._window: dict[str, deque[WindowTrade]] = {}
        self._before: dict[str, Decimal] = {}

    # ------------------------------------------------------------------ feeding

    def attach(self, exchange: _HasStorage) -> None:
        """Load every stored trade, then follow the exchange's durable trades (until :meth:`detach`).

        Call it before the exchange takes new commands (the server does so while creating the app):
        storage is flushed first, so that it holds every trade the exchange replayed."""
        storage = exchange.storage
        if storage is not None:
            storage.flush(30.0)
            trades = schema.trades
            query = select(
                trades.c.symbol,
                trades.c.price,
                trades.c.quantity,
                trades.c.taker_side,
                trades.c.timestamp,
                trades.c.sequence,
                trades.c.trade_id,
            ).order_by(trades.c.symbol, trades.c.sequence, trades.c.timestamp)
            with storage.engine.connect() as connection:
                result = connection.execution_options(yield_per=5000).execute(query)
                for row in result:
                    self.on_trade(row[0], row[1], row[2], row[4], row[3], row[5], row[6])
        # Every market's trades, as records: no trade message is built for the candles.
        exchange.add_trade_listener(self.on_trades)
        self._exchange = exchange

    def detach(self) -> None:
        """Stop following the exchange."""
        if self._exchange is not None:
            self._exchange.remove_trade_listener(self.on_trades)
            self._exchange = None

    def on_messages(self, batch: Iterable[dict[str, Any]]) -> None:
        for message in batch:
            if message.get("type") == "trade":
                self.on_trade(
                    message["symbol"],
                    message["price"],
                    message["quantity"],
                    message["timestamp"],
                    message.get("taker_side"),
                    message.get("sequence"),
                    message.get("trade_id"),
                )

    def on_trades(self, records: Iterable[tuple[Any, ...]]) -> None:
        """Add the trade records of one durable round (an exchange trade listener on the journal
        thread: ``(symbol, price, quantity, timestamp, taker_side, sequence, trade_id)`` each, the
        arguments of :meth:`on_trade` in its order): the same as :meth:`on_messages` of their
        ``trade`` messages."""
        on_trade = self.on_trade
        for symbol, price, quantity, timestamp, taker_side, sequence, trade_id in records:
            on_trade(symbol, price, quantity, timestamp, taker_side, sequence, trade_id)

    def on_trade(
        self,
        symbol: str,
        price: Decimal | str,
        quantity: Decimal | str,
        timestamp: float,
        taker_side: str | None = None,
        sequence: int | None = None,
        trade_id: str | None = None,
    ) -> None:
        """Add one trade of ``symbol`` (``BASE/QUOTE``) at ``timestamp`` (seconds) to every interval.

        A trade whose book ``sequence`` is not above the last one seen for the symbol is ignored (it is
        already counted)."""
        price = Decimal(price)
        quantity = Decimal(quantity)
        notional = price * quantity
        time_ms = int(float(timestamp) * 1000)
        taker_buys = taker_side == "buy"
        with self._lock:
            if sequence is not None:
                if sequence <= self._last_sequence.get(symbol, -1):
                    return
                self._last_sequence[symbol] = sequence
            window = self._window.get(symbol)
            if window is None:
                window = self._window[symbol] = deque()
            window.append(WindowTrade(time_ms, _trade_no(trade_id), price, quantity))
            while window and window[0].time_ms < time_ms - DAY_MS:
                self._before[symbol] = window.popleft().price
            for interval in INTERVALS:
                series = self._series.get((symbol, interval))
                if series is None:
                    series = self._series[(symbol, interval)] = _Series()
                opened = interval_open(interval, time_ms)
                if series.opens and series.opens[-1] == opened:
                    candle = series.candles[-1]
                elif not series.opens or series.opens[-1] < opened:
                    candle = Candle(opened, price, price, price, price, *_ZEROS)
                    series.opens.append(opened)
                    series.candles.append(candle)
                else:  # older than the newest candle (a clock step back): find or insert its slot
                    index = bisect.bisect_left(series.opens, opened)
                    if index < len(series.opens) and series.opens[index] == opened:
                        candle = series.candles[index]
                    else:
                        candle = Candle(opened, price, price, price, price, *_ZEROS)
                        series.opens.insert(index, opened)
                        series.candles.insert(index, candle)
                if price > candle.high:
                    candle.high = price
                if price < candle.low:
                    candle.low = price
                candle.close = price
                candle.volume += quantity
                candle.quote_volume += notional
                candle.count += 1
                if taker_buys:
                    candle.taker_buy_base += quantity
                    candle.taker_buy_quote += notional

    # ------------------------------------------------------------------ reading

    def window(
        self, symbol: str, now_ms: int, span_ms: int = DAY_MS
    ) -> tuple[list[WindowTrade], Decimal | None]:
        """The trades of ``symbol`` in ``(now_ms - span_ms, now_ms]`` (span at most a day), oldest first,
        and the price of the last trade before them (None if unknown)."""
        with self._lock:
            trades = list(self._window.get(symbol, ()))
            before = self._before.get(symbol)
        start = now_ms - span_ms
        chosen = [trade for trade in trades if start < trade.time_ms <= now_ms]
        earlier = [trade for trade in trades if trade.time_ms <= start]
        if earlier:
            before = earlier[-1].price
        return chosen, before

    def last_price(self, symbol: str) -> Decimal | None:
        """The price of the market's last trade (None if it never traded)."""
        with self._lock:
            series = self._series.get((symbol, "1s"))
            return series.candles[-1].close if series is not None and series.candles else None

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[list[Any]]:
        """Binance kline rows of ``symbol`` in ``interval``, oldest first, at most ``limit``.

        With ``start_ms`` the first ``limit`` candles opening at or after it (and at or before
        ``end_ms``); with only ``end_ms`` the last ``limit`` opening at or before it; with neither the
        newest ``limit``. KeyError for an unknown interval."""
        if interval not in INTERVALS:
            raise KeyError(interval)
        with self._lock:
            series = self._series.get((symbol, interval))
            if series is None:
                return []
            low = 0 if start_ms is None else bisect.bisect_left(series.opens, start_ms)
            high = len(series.opens) if end_ms is None else bisect.bisect_right(series.opens, end_ms)
            if start_ms is None:
                low = max(low, high - limit)
            else:
                high = min(high, low + limit)
            chosen = series.candles[low:high]
            return [self._row(symbol, interval, candle) for candle in chosen]

    def current(self, symbol: str, interval: str, now_ms: int | None = None) -> list[Any] | None:
        """The candle open at ``now_ms`` (default: now) as a Binance kline row, or None if the market has
        never traded. An interval without trades yet gives an empty candle at the last close price."""
        if now_ms is None:
            now_ms = int(dt.datetime.now(tz=dt.timezone.utc).timestamp() * 1000)
        opened = interval_open(interval, now_ms)
        with self._lock:
            series = self._series.get((symbol, interval))
            if series is None or not series.candles:
                return None
            last = series.candles[-1]
            if last.open_time >= opened:
                return self._row(symbol, interval, last)
            close = last.close
            empty = Candle(opened, close, close, close, close, *_ZEROS)
            return self._row(symbol, interval, empty)

    def _row(self, symbol: str, interval: str, candle: Candle) -> list[Any]:
        markets = self._markets
        price = markets.price
        return [
            candle.open_time,
            price(symbol, candle.open),
            price(symbol, candle.high),
            price(symbol, candle.low),
            price(symbol, candle.close),
            markets.qty(symbol, candle.volume),
            interval_close(interval, candle.open_time),
            markets.quote(symbol, candle.quote_volume),
            candle.count,
            markets.qty(symbol, candle.taker_buy_base),
            markets.quote(symbol, candle.taker_buy_quote),
            "0",
        ]


_ZEROS = (Decimal(0), Decimal(0), 0, Decimal(0), Decimal(0))
