"""Binance market stream payloads from the exchange's durable stream messages, fanned out to subscribers.

:class:`MarketFeed` follows the exchange like the native stream hub does (an exchange listener on the
journal's writer thread, handed to the event loop), so every payload describes durable state only:

- book diffs (``depthUpdate``) carry ``U`` = the first and ``u`` = the last book event sequence they
  cover. The exchange's diffs are contiguous per market and the feed merges them per period (100 ms or
  1000 ms) without dropping any, so each event's ``U`` is the previous event's ``u + 1`` and REST
  ``depth``'s ``lastUpdateId`` (the live book's sequence) always falls inside the stream: Binance's
  "manage a local order book" procedure works unchanged.
- partial books, ``bookTicker`` and the bid/ask of ``ticker`` come from a :class:`BookMirror` per market.
- ``trade``/``aggTrade`` per trade (one trade per aggregate: ``a = f = l`` = the trade's number),
  ``kline`` from the shared :class:`~manticore_api.binance.klines.Klines`, 24 h tickers from the same
  candles REST ``ticker/24hr`` uses.

Times (``E``, ``T``) are integer milliseconds; prices and quantities are strings with the market's decimals.
Subscribers are :class:`Subscriber` objects; each frame is encoded once per stream and wrapped as
``{"stream", "data"}`` for subscribers in combined mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from manticore_matching import Demand, Exchange

from ..handoff import LoopHandoff
from ..jsontext import dumps_text
from .book_mirror import BookMirror
from .klines import Klines
from .markets import BinanceMarkets, binance_symbol
from .orders import trade_no
from .stream_names import StreamSpec
from .tickers import ticker_24hr

__all__ = ["MarketFeed", "Subscriber"]

log = logging.getLogger("manticore_api")

TICK_SECONDS = 0.1
_SLOW_EVERY = 10  # ticks: the 1000 ms streams
_TIMED_KINDS = frozenset({"partial", "kline", "ticker", "miniTicker", "!ticker@arr", "!miniTicker@arr"})


class Subscriber(Protocol):
    """A connection that takes encoded frames; ``combined`` asks for the ``{"stream", "data"}`` wrapper."""

    combined: bool

    def push(self, message: dict[str, Any] | str) -> None: ...


def _ms(seconds: float) -> int:
    return round(float(seconds) * 1000)


class _PendingDiff:
    """Book diffs of one market collected for one period."""

    __slots__ = ("asks", "bids", "event_ms", "first", "last")

    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first - 1
        self.event_ms = 0
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}


class MarketFeed:
    """Market stream state and fan-out for every market (run on the event loop).

    Args:
        exchange: the opened exchange; its books are mirrored from their current (durable) state, so
            create the feed before the exchange takes commands.
        markets: symbol and number formats.
        klines: the candles (already following the exchange).
        loop: returns the running event loop (None before the server started).
    """

    def __init__(
        self,
        exchange: Exchange,
        markets: BinanceMarkets,
        klines: Klines,
        loop: Callable[[], asyncio.AbstractEventLoop | None],
    ) -> None:
        self._exchange = exchange
        self._markets = markets
        self._klines = klines
        self._loop = loop
        self.mirrors: dict[str, BookMirror] = {}
        for symbol in exchange.markets:
            mirror = BookMirror()
            mirror.load(exchange.get_snapshot(symbol))
            self.mirrors[symbol] = mirror
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._specs: dict[str, StreamSpec] = {}
        self._index: dict[tuple[str, str], set[str]] = {}
        self._pending: dict[tuple[str, int], _PendingDiff] = {}
        self._best_sent: dict[str, tuple[Any, ...]] = {}
        self._kline_sent: dict[str, list[Any]] = {}
        self._traded: set[str] = set()
        self._quoted: set[str] = set()
        self._fresh: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._ticks = 0
        self.frames_sent = 0
        #: What the feed reads: every market's book diffs (the mirrors follow them) and trades.
        self.demand = Demand(books=None, trades=None)
        self._handoff = LoopHandoff(loop, self.publish)
        exchange.add_listener(self._handoff.put, self.demand)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, subscriber: Subscriber, spec: StreamSpec) -> None:
        """Add ``subscriber`` to ``spec``'s stream (again is harmless). Timed streams send their first
        frame on the next tick."""
        self._specs[spec.name] = spec
        self._subscribers.setdefault(spec.name, set()).add(subscriber)
        self._index.setdefault((spec.kind, spec.native), set()).add(spec.name)
        if spec.kind in _TIMED_KINDS:
            self._fresh.add(spec.name)
        if spec.kind == "bookTicker":  # the current top at once, then on every change
            self._best_sent.pop(spec.native, None)
            mirror = self.mirrors.get(spec.native)
            if mirror is not None:
                self._send_book_ticker(spec.native, mirror)
        if self._task is None or self._task.done():
            self._traded.clear()  # changes seen while nobody listened are not news
            self._quoted.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="binance-market-feed")

    def unsubscribe(self, subscriber: Subscriber, name: str) -> None:
        """Remove ``subscriber`` from the stream ``name`` (a stream nobody watches is forgotten)."""
        subscribers = self._subscribers.get(name)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._subscribers[name]
            spec = self._specs.pop(name)
            names = self._index.get((spec.kind, spec.native))
            if names is not None:
                names.discard(name)
                if not names:
                    del self._index[(spec.kind, spec.native)]
            self._kline_sent.pop(name, None)

    @property
    def stream_count(self) -> int:
        return len(self._subscribers)

    async def close(self) -> None:
        """Stop the timer task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ sending

    def _send(self, names: set[str] | list[str], payload: Any) -> None:
        raw = dumps_text(payload)
        for name in list(names):
            subscribers = self._subscribers.get(name)
            if not subscribers:
                continue
            wrapped: str | None = None
            for subscriber in list(subscribers):
                if subscriber.combined:
                    if wrapped is None:
                        wrapped = f'{{"stream":{json.dumps(name)},"data":{raw}}}'
                    subscriber.push(wrapped)
                else:
                    subscriber.push(raw)
                self.frames_sent += 1

    def _names(self, kind: str, native: str) -> set[str]:
        return self._index.get((kind, native), set())

    # ------------------------------------------------------------------ durable messages

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Take one durable command's messages (on the loop, in journal order)."""
        for message in batch:
            kind = message.get("type")
            if kind == "book":
                self._on_book(message)
            elif kind == "trade":
                self._on_trade(message)

    def _mirror(self, native: str, diff: dict[str, Any]) -> BookMirror:
        mirror = self.mirrors.get(native)
        if mirror is None:
            mirror = self.mirrors[native] = BookMirror()
        if not mirror.apply(diff):
            # Not expected (diffs are contiguous); the live snapshot is the best recovery there is.
            log.warning(
                "binance feed: %s diff %s does not follow %s", native, diff["first_sequence"], mirror.sequence
            )
            mirror.load(self._exchange.get_snapshot(native))
        return mirror

    def _on_book(self, diff: dict[str, Any]) -> None:
        native = diff["symbol"]
        mirror = self._mirror(native, diff)
        self._quoted.add(native)
        if self._names("depth", native):
            for speed in (100, 1000):
                key = (native, speed)
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = _PendingDiff(int(diff["first_sequence"]))
                pending.last = int(diff["last_sequence"])
                pending.event_ms = _ms(diff["timestamp"])
                for level in diff["bids"]:
                    pending.bids[level["price"]] = level["quantity"]
                for level in diff["asks"]:
                    pending.asks[level["price"]] = level["quantity"]
        if self._names("bookTicker", native):
            self._send_book_ticker(native, mirror)

    def _send_book_ticker(self, native: str, mirror: BookMirror) -> None:
        bid = mirror.bids.best()
        ask = mirror.asks.best()
        if self._best_sent.get(native) == (bid, ask):
            return
        self._best_sent[native] = (bid, ask)
        price, qty = self._markets.price, self._markets.qty
        payload = {
            "u": mirror.sequence,
            "s": binance_symbol(native),
            "b": price(native, bid[0] if bid else 0),
            "B": qty(native, bid[1] if bid else 0),
            "a": price(native, ask[0] if ask else 0),
            "A": qty(native, ask[1] if ask else 0),
        }
        self._send(self._names("bookTicker", native), payload)

    def _on_trade(self, trade: dict[str, Any]) -> None:
        native = trade["symbol"]
        self._traded.add(native)
        trade_names = self._names("trade", native)
        agg_names = self._names("aggTrade", native)
        if not trade_names and not agg_names:
            return
        number = trade_no(trade["trade_id"])
        when = _ms(trade["timestamp"])
        symbol = binance_symbol(native)
        price = self._markets.price(native, trade["price"])
        qty = self._markets.qty(native, trade["quantity"])
        buyer_maker = trade["taker_side"] == "sell"
        if trade_names:
            self._send(
                trade_names,
                {
                    "e": "trade",
                    "E": when,
                    "s": symbol,
                    "t": number,
                    "p": price,
                    "q": qty,
                    "T": when,
                    "m": buyer_maker,
                    "M": True,
                },
            )
        if agg_names:
            self._send(
                agg_names,
                {
                    "e": "aggTrade",
                    "E": when,
                    "s": symbol,
                    "a": number,
                    "p": price,
                    "q": qty,
                    "f": number,
                    "l": number,
                    "T": when,
                    "m": buyer_maker,
                    "M": True,
                },
            )

    # ------------------------------------------------------------------ timed streams

    async def _run(self) -> None:
        while self._subscribers:
            await asyncio.sleep(TICK_SECONDS)
            self._ticks += 1
            try:
                self.tick(slow=self._ticks % _SLOW_EVERY == 0)
            except Exception:
                log.exception("binance market feed tick failed")

    def tick(self, slow: bool) -> None:
        """Send the 100 ms streams, and with ``slow`` the 1000 ms ones."""
        speeds = (100, 1000) if slow else (100,)
        for (native, speed), pending in list(self._pending.items()):
            if speed in speeds:
                del self._pending[(native, speed)]
                self._flush_diff(native, speed, pending)
        fresh = self._fresh
        for name in list(self._specs):
            spec = self._specs[name]
            if spec.kind == "partial" and (spec.speed_ms in speeds or name in fresh):
                self._send_partial(spec)
        if not slow and not fresh:
            return
        now = int(time.time() * 1000)
        for name in list(self._specs):
            found = self._specs.get(name)
            if found is None:
                continue
            spec = found
            if spec.kind == "kline" and (slow or name in fresh):
                self._send_kline(spec, now)
            elif spec.kind in ("ticker", "miniTicker") and (slow or name in fresh):
                self._send([name], self._ticker(spec.native, spec.kind, now))
            elif spec.kind in ("!ticker@arr", "!miniTicker@arr") and (slow or name in fresh):
                single = spec.kind[1:-4]
                changed = self._traded if single == "miniTicker" else self._traded | self._quoted
                natives = list(self._exchange.markets) if name in fresh else sorted(changed)
                if natives:
                    self._send([name], [self._ticker(native, single, now) for native in natives])
        fresh.clear()
        if slow:
            self._traded.clear()
            self._quoted.clear()

    def _flush_diff(self, native: str, speed: int, pending: _PendingDiff) -> None:
        names = [name for name in self._names("depth", native) if self._specs[name].speed_ms == speed]
        if not names:
            return
        price, qty = self._markets.price, self._markets.qty
        payload = {
            "e": "depthUpdate",
            "E": pending.event_ms,
            "s": binance_symbol(native),
            "U": pending.first,
            "u": pending.last,
            "b": [[price(native, p), qty(native, q)] for p, q in pending.bids.items()],
            "a": [[price(native, p), qty(native, q)] for p, q in pending.asks.items()],
        }
        self._send(names, payload)

    def _send_partial(self, spec: StreamSpec) -> None:
        mirror = self.mirrors.get(spec.native)
        if mirror is None:
            return
        native = spec.native
        price, qty = self._markets.price, self._markets.qty
        payload = {
            "lastUpdateId": mirror.sequence,
            "bids": [[price(native, p), qty(native, q)] for p, q in mirror.bids.top(spec.levels)],
            "asks": [[price(native, p), qty(native, q)] for p, q in mirror.asks.top(spec.levels)],
        }
        self._send([spec.name], payload)

    def _send_kline(self, spec: StreamSpec, now: int) -> None:
        row = self._klines.current(spec.native, spec.interval, now)
        if row is None:
            return
        previous = self._kline_sent.get(spec.name)
        if previous is not None and previous[0] < row[0]:
            closed = self._klines.klines(spec.native, spec.interval, start_ms=previous[0], limit=1)
            if closed and closed[0][0] == previous[0]:
                self._send([spec.name], self._kline_payload(spec, closed[0], now, True))
        self._kline_sent[spec.name] = row
        self._send([spec.name], self._kline_payload(spec, row, now, False))

    def _kline_payload(self, spec: StreamSpec, row: list[Any], now: int, closed: bool) -> dict[str, Any]:
        symbol = binance_symbol(spec.native)
        return {
            "e": "kline",
            "E": now,
            "s": symbol,
            "k": {
                "t": row[0],
                "T": row[6],
                "s": symbol,
                "i": spec.interval,
                "f": -1,
                "L": -1,
                "o": row[1],
                "c": row[4],
                "h": row[2],
                "l": row[3],
                "v": row[5],
                "n": row[8],
                "x": closed,
                "q": row[7],
                "V": row[9],
                "Q": row[10],
                "B": "0",
            },
        }

    def _ticker(self, native: str, kind: str, now: int) -> dict[str, Any]:
        stats = ticker_24hr(self._exchange, self._markets, self._klines, native, now)
        symbol = binance_symbol(native)
        if kind == "miniTicker":
            return {
                "e": "24hrMiniTicker",
                "E": now,
                "s": symbol,
                "c": stats["lastPrice"],
                "o": stats["openPrice"],
                "h": stats["highPrice"],
                "l": stats["lowPrice"],
                "v": stats["volume"],
                "q": stats["quoteVolume"],
            }
        mirror = self.mirrors.get(native)
        bid = mirror.bids.best() if mirror is not None else None
        ask = mirror.asks.best() if mirror is not None else None
        price, qty = self._markets.price, self._markets.qty
        return {
            "e": "24hrTicker",
            "E": now,
            "s": symbol,
            "p": stats["priceChange"],
            "P": stats["priceChangePercent"],
            "w": stats["weightedAvgPrice"],
            "x": stats["prevClosePrice"],
            "c": stats["lastPrice"],
            "Q": stats["lastQty"],
            "b": price(native, bid[0] if bid else Decimal(0)),
            "B": qty(native, bid[1] if bid else 0),
            "a": price(native, ask[0] if ask else Decimal(0)),
            "A": qty(native, ask[1] if ask else 0),
            "o": stats["openPrice"],
            "h": stats["highPrice"],
            "l": stats["lowPrice"],
            "v": stats["volume"],
            "q": stats["quoteVolume"],
            "O": stats["openTime"],
            "C": stats["closeTime"],
            "F": stats["firstId"],
            "L": stats["lastId"],
            "n": stats["count"],
        }
