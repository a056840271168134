"""Binance market stream payloads from the exchange's durable stream messages, fanned out to subscribers.

:class:`MarketFeed` follows the exchange like the native stream hub does (an exchange listener on the
journal's writer thread, handed to the event loop), so every payload describes durable state only:

- book diffs (``depthUpdate``) carry ``U`` = the first and ``u`` = the last book event sequence they
  cover. The exchange's diffs are contiguous per market and the feed merges them per period (100 ms or
  1000 ms) without dropping any, so each event's ``U`` is the previous event's ``u + 1`` and REST
  ``depth``'s ``lastUpdateId`` (the live book's sequence) always falls inside the stream: Binance's
  "manage a local order book" procedure works unchanged.
- partial books, ``bookTicker`` and the bid/ask of ``ticker`` come from a :class:`BookMirror` per market.

Book diffs are built only while someone reads them (:mod:`manticore_matching.demand`): the feed names,
in :attr:`MarketFeed.demand`, the markets whose book some stream reads (``depth``, partial depth,
``bookTicker``, ``ticker``; ``!ticker@arr`` reads every market's) and those whose trades ``trade`` /
``aggTrade`` read (the all-market tickers read every market's), and nothing while no stream has a
subscriber. A market's mirror exists only while a stream reads it: its first reader turns its diffs
on, then loads the live book (:meth:`Exchange.get_snapshot`) and remembers the journal position the
book is at; diffs the snapshot already holds are skipped, the next ones continue it, and the mirror's
frames wait until the journal has made that position durable (so they never show a command that a
restart could lose). Its last reader leaving turns the diffs off and drops the mirror. An exchange
without a local journal (a cluster gateway's remote exchange, whose leader builds every message for
every gateway anyway) keeps a mirror of every market from the start, as before.
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
#: Streams that read their market's book mirror (``!ticker@arr`` reads every market's).
_BOOK_KINDS = frozenset({"depth", "partial", "bookTicker", "ticker"})
#: Streams that read their market's trades (the all-market tickers read every market's).
_TRADE_KINDS = frozenset({"trade", "aggTrade"})


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
        exchange: the opened exchange. A local :class:`Exchange` builds book diffs and trades for the
            feed only while a stream reads them (see the module doc); any other (a gateway's remote
            exchange) is followed whole from now on: create the feed before it takes commands.
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
        #: The journal whose durable position a new mirror's frames wait for (None: no local journal;
        #: every market is then followed from the start).
        self._journal = exchange.journal if isinstance(exchange, Exchange) else None
        #: The mirror of each market a stream reads (every market without a local journal).
        self.mirrors: dict[str, BookMirror] = {}
        #: Mirrors loaded from the live book, by market: the journal position their frames wait for.
        self._unconfirmed: dict[str, int] = {}
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
        #: What the feed reads: the book diffs of the markets whose mirror a stream reads and the trades
        #: of those whose trades one reads; nothing while no stream has a subscriber (every market's
        #: diffs and trades without a local journal).
        self.demand = Demand() if self._journal is not None else Demand(books=None, trades=None)
        self._handoff = LoopHandoff(loop, self.publish)
        exchange.add_listener(self._handoff.put, self.demand)
        if self._journal is None:
            for symbol in exchange.markets:
                self._open_mirror(symbol)

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, subscriber: Subscriber, spec: StreamSpec) -> None:
        """Add ``subscriber`` to ``spec``'s stream (again is harmless). A stream that reads a market's book
        turns its diffs on and loads its mirror if none does yet. Timed streams send their first frame on
        the next tick at which their mirrors show durable state, ``bookTicker`` at once if its mirror
        does (else then), then on every change of the top."""
        self._specs[spec.name] = spec
        self._subscribers.setdefault(spec.name, set()).add(subscriber)
        self._index.setdefault((spec.kind, spec.native), set()).add(spec.name)
        self._follow()
        if spec.kind in _TIMED_KINDS:
            self._fresh.add(spec.name)
        if spec.kind == "bookTicker":  # the current top at once, then on every change
            self._best_sent.pop(spec.native, None)
            mirror = self._shown(spec.native)
            if mirror is not None:
                self._send_book_ticker(spec.native, mirror)
            else:
                self._fresh.add(spec.name)  # sent by the first tick at which the mirror is durable
        if self._task is None or self._task.done():
            self._traded.clear()  # changes seen while nobody listened are not news
            self._quoted.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="binance-market-feed")

    def unsubscribe(self, subscriber: Subscriber, name: str) -> None:
        """Remove ``subscriber`` from the stream ``name`` (a stream nobody watches is forgotten, and so are
        the book diffs, trades and mirrors that only it read)."""
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
            self._fresh.discard(name)
            self._follow()

    def _follow(self) -> None:
        """Make :attr:`demand` name exactly what the subscribed streams read (telling the exchange when
        it changed), then load the mirrors newly read and drop the ones no longer read: diffs on before
        a snapshot is taken, so that every diff after it is built (no-op without a local journal)."""
        if self._journal is None:
            return
        kinds = {kind for kind, _ in self._index}
        books: set[str] | None = None
        trades: set[str] | None = None
        if "!ticker@arr" not in kinds:
            books = {native for kind, native in self._index if kind in _BOOK_KINDS}
        if "!ticker@arr" not in kinds and "!miniTicker@arr" not in kinds:
            trades = {native for kind, native in self._index if kind in _TRADE_KINDS}
        demand = self.demand
        if books != demand.books or trades != demand.trades:
            demand.books, demand.trades = books, trades
            self._exchange.demand_changed()
        read = set(self._exchange.markets) if books is None else books
        for native in [native for native in self.mirrors if native not in read]:
            self._drop_mirror(native)
        for native in read:
            if native not in self.mirrors:
                self._open_mirror(native)

    def _open_mirror(self, native: str) -> BookMirror:
        """Load ``native``'s mirror from the live book (its diffs must be on already) and start a new
        diff event for it; with a local journal its frames wait for the book's journal position."""
        mirror = BookMirror()
        mirror.load(self._exchange.get_snapshot(native))
        self.mirrors[native] = mirror
        if self._journal is not None:
            # Read after the snapshot: every command the snapshot holds is at or before it.
            self._unconfirmed[native] = self._journal.appended
        for speed in (100, 1000):
            self._pending.pop((native, speed), None)
        self._best_sent.pop(native, None)
        return mirror

    def _drop_mirror(self, native: str) -> None:
        del self.mirrors[native]
        self._unconfirmed.pop(native, None)
        for speed in (100, 1000):
            self._pending.pop((native, speed), None)
        self._best_sent.pop(native, None)

    def _shown(self, native: str) -> BookMirror | None:
        """``native``'s mirror if its state is durable (None: no mirror, or it still waits for the
        journal to make the commands of its snapshot durable)."""
        mirror = self.mirrors.get(native)
        if mirror is None:
            return None
        position = self._unconfirmed.get(native)
        if position is not None:
            assert self._journal is not None
            if self._journal.durable < position:
                return None
            del self._unconfirmed[native]
        return mirror

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

    def _on_book(self, diff: dict[str, Any]) -> None:
        native = diff["symbol"]
        mirror = self.mirrors.get(native)
        if mirror is None:
            books = self.demand.books
            if books is not None and native not in books:
                return  # nobody reads this market's book (a diff built for another listener)
            if int(diff["first_sequence"]) == 1:  # a new market's first events: its book was empty
                mirror = self.mirrors[native] = BookMirror()
            else:
                mirror = self._open_mirror(native)  # a market created since the feed started
        if int(diff["last_sequence"]) <= mirror.sequence:
            return  # the mirror's snapshot holds it already
        if not mirror.apply(diff):
            # Not expected (diffs are contiguous); the live snapshot is the best recovery there is, and
            # the next diff event starts at it (the gap shows as a U that is not the last u + 1).
            log.warning(
                "binance feed: %s diff %s does not follow %s", native, diff["first_sequence"], mirror.sequence
            )
            self._open_mirror(native)
            self._quoted.add(native)
            return
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
        if self._names("bookTicker", native) and self._shown(native) is not None:
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
        """Send the 100 ms streams, and with ``slow`` the 1000 ms ones. A frame that reads a mirror not
        showing durable state yet waits for the next tick."""
        speeds = (100, 1000) if slow else (100,)
        for (native, speed), pending in list(self._pending.items()):
            if speed in speeds:
                del self._pending[(native, speed)]
                self._flush_diff(native, speed, pending)
        fresh = self._fresh
        waiting: set[str] = set()
        for name in list(self._specs):
            spec = self._specs[name]
            if spec.kind == "partial" and (spec.speed_ms in speeds or name in fresh):
                if not self._send_partial(spec):
                    waiting.add(name)
            elif spec.kind == "bookTicker" and name in fresh:
                mirror = self._shown(spec.native)
                if mirror is None:
                    waiting.add(name)
                else:
                    self._send_book_ticker(spec.native, mirror)
        if not slow and not fresh:
            fresh.update(waiting)
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
                payload = self._ticker(spec.native, spec.kind, now)
                if payload is None:
                    waiting.add(name)
                else:
                    self._send([name], payload)
            elif spec.kind in ("!ticker@arr", "!miniTicker@arr") and (slow or name in fresh):
                single = spec.kind[1:-4]
                changed = self._traded if single == "miniTicker" else self._traded | self._quoted
                natives = list(self._exchange.markets) if name in fresh else sorted(changed)
                payloads = [self._ticker(native, single, now) for native in natives]
                if None in payloads:
                    waiting.add(name)  # every market once the mirrors are durable
                elif payloads:
                    self._send([name], payloads)
        fresh.clear()
        fresh.update(waiting)
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

    def _send_partial(self, spec: StreamSpec) -> bool:
        """Send the partial book ``spec`` asks for; False (nothing sent) while its mirror does not show
        durable state."""
        native = spec.native
        mirror = self._shown(native)
        if mirror is None:
            return False
        price, qty = self._markets.price, self._markets.qty
        payload = {
            "lastUpdateId": mirror.sequence,
            "bids": [[price(native, p), qty(native, q)] for p, q in mirror.bids.top(spec.levels)],
            "asks": [[price(native, p), qty(native, q)] for p, q in mirror.asks.top(spec.levels)],
        }
        self._send([spec.name], payload)
        return True

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

    def _ticker(self, native: str, kind: str, now: int) -> dict[str, Any] | None:
        """``native``'s ``ticker`` or ``miniTicker`` payload; None (a ticker, whose bid and ask come from
        the mirror) while the mirror does not show durable state."""
        mirror: BookMirror | None = None
        if kind != "miniTicker":
            if native not in self.mirrors and self._journal is not None:
                self._open_mirror(native)  # read by an all-market ticker: a market created since
            mirror = self.mirrors.get(native)
            if mirror is not None and self._shown(native) is None:
                return None
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
