"""The Binance market feed has the exchange build book diffs (and trades) only while a stream reads them,
and a mirror loaded from the live book shows nothing that is not durable.

Everything runs on one event loop against a real :class:`~manticore_matching.Exchange` whose journal
is synced with ``fsync``, patched here into a gate: while the gate is shut the journal's writer waits,
so the commands applied meanwhile stay in flight (applied to the books, not durable).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manticore_api.binance import market_feed as market_feed_module
from manticore_api.binance.klines import Klines
from manticore_api.binance.market_feed import MarketFeed
from manticore_api.binance.markets import BinanceMarkets
from manticore_api.binance.stream_names import StreamSpec, parse_stream
from manticore_matching import Demand, Exchange, MarketConfig
from tests.matching.exchange_streams import MARKETS, Clock, apply, make_stream

BTC = "BTC/USD"
ETH = "ETH/USD"


class _Gate:
    """``os.fsync`` replaced by a wait on an event: :meth:`hold` keeps the journal's next batches from
    becoming durable until :meth:`release` (no real sync: the tests never crash)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    def fsync(self, fd: int) -> None:
        assert self.open.wait(30), "the journal gate stayed shut"

    def hold(self) -> None:
        self.open.clear()

    def release(self) -> None:
        self.open.set()


@pytest.fixture(autouse=True)
def _no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's own timer never fires: the tests call :meth:`MarketFeed.tick` themselves."""
    monkeypatch.setattr(market_feed_module, "TICK_SECONDS", 3600.0)


class _Frames:
    """A subscriber: each frame decoded (unwrapped when ``combined``: its stream name kept), with the
    journal's durable position when it was pushed."""

    def __init__(self, exchange: Exchange, combined: bool = False) -> None:
        self.exchange = exchange
        self.combined = combined
        self.frames: list[tuple[Any, int]] = []
        self.streams: list[str] = []

    def push(self, message: dict[str, Any] | str) -> None:
        decoded = json.loads(message if isinstance(message, str) else json.dumps(message))
        if self.combined:
            self.streams.append(decoded["stream"])
            decoded = decoded["data"]
        self.frames.append((decoded, self.exchange.journal.durable))

    def payloads(self, stream: str | None = None) -> list[Any]:
        if stream is None:
            return [payload for payload, _ in self.frames]
        return [
            payload for (payload, _), name in zip(self.frames, self.streams, strict=True) if name == stream
        ]


class _World:
    """An exchange (two markets, three funded users) with a gated journal, a feed, and what the exchange
    builds: ``built`` collects every durable message (its listener reads nothing itself)."""

    def __init__(self, directory: Path, gate: _Gate, seed: int = 1) -> None:
        self.clock = Clock()
        self.gate = gate
        self.exchange = Exchange(directory / "data", markets=MARKETS, clock=self.clock, checkpoint_every=0)
        self.exchange.open()
        self.markets = BinanceMarkets(self.exchange)
        loop = asyncio.get_running_loop()
        self.feed = MarketFeed(self.exchange, self.markets, Klines(self.markets), lambda: loop)
        self.built: list[dict[str, Any]] = []
        self.exchange.add_listener(self.built.extend, Demand())
        self._released = 0
        self._released_changed = threading.Condition()
        self.exchange.add_durable_listener(self._on_durable)
        #: (journal position, market, book sequence, bids, asks) after every command applied.
        self.states: list[
            tuple[int, str, int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
        ] = []
        self.stream = make_stream(seed, 400)
        self.next_command = 0
        self.record()

    def _on_durable(self, position: int) -> None:  # after the stream listeners of ``position``
        with self._released_changed:
            self._released = position
            self._released_changed.notify_all()

    def record(self) -> None:
        for symbol in self.exchange.markets:
            book = self.exchange.get_snapshot(symbol)
            self.states.append(
                (
                    self.exchange.journal.appended,
                    symbol,
                    int(book["sequence"]),
                    _levels(book["bids"]),
                    _levels(book["asks"]),
                )
            )

    def run(self, count: int) -> None:
        """Apply the stream's next ``count`` commands (on the loop's thread, like the server)."""
        for command in self.stream[self.next_command : self.next_command + count]:
            apply(self.exchange, self.clock, command)
            self.record()
        self.next_command += count

    async def settle(self) -> None:
        """Open the gate and wait until every command applied is durable and its messages delivered."""
        self.gate.release()
        target = self.exchange.journal.appended
        with self._released_changed:
            assert self._released_changed.wait_for(lambda: self._released >= target, 30)
        for _ in range(3):
            await asyncio.sleep(0)

    async def deliver(self) -> None:
        """Let the loop run what the journal's thread handed over so far (durable or not)."""
        for _ in range(3):
            await asyncio.sleep(0)

    def spec(self, name: str) -> StreamSpec:
        return parse_stream(name, self.markets)

    def book_messages(self) -> list[str]:
        return [message["symbol"] for message in self.built if message["type"] == "book"]

    def close(self) -> None:
        self.gate.release()
        self.exchange.close()


def _levels(levels: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(str(level["price"])), Decimal(str(level["quantity"]))) for level in levels]


def _wire(levels: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(price), Decimal(quantity)) for price, quantity in levels]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gate]:
    made = _Gate()
    monkeypatch.setattr(os, "fsync", made.fsync)
    yield made
    made.release()


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _in_world(gate: _Gate, body: Any, seed: int = 1) -> None:
    """Run ``body(world)`` on a new event loop after the deposits; the feed must never have found a
    diff that does not follow its mirror (it would reload it: diffs were missed)."""

    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as directory:
            world = _World(Path(directory), gate, seed)
            try:
                world.run(9)  # the deposits
                await world.settle()
                world.built.clear()
                await body(world)
            finally:
                await world.feed.close()
                world.close()

    warnings = _Warnings()
    logger = logging.getLogger("manticore_api")
    logger.addHandler(warnings)
    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(warnings)
    assert warnings.messages == []


# ---------------------------------------------------------------------------- demand


def test_nothing_is_built_for_the_feed_while_no_stream_has_a_subscriber(gate: _Gate) -> None:
    async def body(world: _World) -> None:
        feed = world.feed
        assert (feed.demand.books, feed.demand.trades, feed.demand.users) == (set(), set(), set())
        assert feed.mirrors == {}
        world.run(120)
        await world.settle()
        assert world.built == []  # no book diff, no trade: nobody reads them

        # A trades-only stream asks for its market's trades, not its book.
        trades = _Frames(world.exchange)
        feed.subscribe(trades, world.spec("btcusd@trade"))
        assert (feed.demand.books, feed.demand.trades) == (set(), {BTC})
        assert feed.mirrors == {}
        world.run(80)
        await world.settle()
        assert world.built and {m["type"] for m in world.built} == {"trade"}
        assert {m["symbol"] for m in world.built} == {BTC}
        assert [p["e"] for p in trades.payloads()] == ["trade"] * len(world.built)
        feed.unsubscribe(trades, "btcusd@trade")
        assert (feed.demand.books, feed.demand.trades) == (set(), set())
        world.built.clear()
        world.run(60)
        await world.settle()
        assert world.built == []

    _in_world(gate, body)


def test_a_book_stream_turns_its_markets_diffs_on_and_the_last_one_leaving_turns_them_off(
    gate: _Gate,
) -> None:
    async def body(world: _World) -> None:
        feed = world.feed
        first, second = _Frames(world.exchange), _Frames(world.exchange)
        feed.subscribe(first, world.spec("btcusd@depth@100ms"))
        feed.subscribe(second, world.spec("btcusd@depth5@100ms"))  # two subscribers of one market
        feed.subscribe(second, world.spec("btcusd@depth@100ms"))
        assert feed.demand.books == {BTC} and set(feed.mirrors) == {BTC}
        world.run(100)
        await world.settle()
        assert world.book_messages() and set(world.book_messages()) == {BTC}

        feed.unsubscribe(first, "btcusd@depth@100ms")
        feed.unsubscribe(second, "btcusd@depth@100ms")
        assert feed.demand.books == {BTC}  # the partial book still reads it
        feed.unsubscribe(second, "btcusd@depth5@100ms")
        assert feed.demand.books == set() and feed.mirrors == {}
        world.built.clear()
        world.run(100)
        await world.settle()
        assert world.book_messages() == []

        # Every kind of book stream reads its market; the all-market ticker reads every market.
        for name in ("ethusd@bookTicker", "ethusd@ticker", "ethusd@depth20", "ethusd@depth"):
            feed.subscribe(first, world.spec(name))
            assert feed.demand.books == {ETH} and set(feed.mirrors) == {ETH}, name
            feed.unsubscribe(first, name)
            assert feed.demand.books == set() and feed.mirrors == {}, name
        feed.subscribe(first, world.spec("!miniTicker@arr"))
        assert (feed.demand.books, feed.demand.trades) == (set(), None)
        feed.subscribe(first, world.spec("!ticker@arr"))
        assert (feed.demand.books, feed.demand.trades) == (None, None)
        assert set(feed.mirrors) == {BTC, ETH}
        feed.unsubscribe(first, "!ticker@arr")
        feed.unsubscribe(first, "!miniTicker@arr")
        assert (feed.demand.books, feed.demand.trades) == (set(), set()) and feed.mirrors == {}

    _in_world(gate, body)


def test_the_first_diffs_continue_the_snapshot_whatever_runs_right_after_it(
    gate: _Gate, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that runs between the mirror's snapshot and the rest of the subscription (another thread's,
    in a server) has its diff built: the demand is on before the snapshot is read."""

    async def body(world: _World) -> None:
        exchange = world.exchange
        live_snapshot = exchange.get_snapshot
        placed: list[int] = []
        loaded: list[int] = []

        def snapshot_then_a_command(symbol: str, depth: int | None = None) -> dict[str, Any]:
            book = live_snapshot(symbol, depth)
            if not placed:
                loaded.append(int(book["sequence"]))
                placed.append(exchange.place_order("alice", BTC, "buy", "1", price="90").position)
            return book

        monkeypatch.setattr(exchange, "get_snapshot", snapshot_then_a_command)
        subscriber = _Frames(exchange)
        with caplog.at_level(logging.WARNING, logger="manticore_api"):
            world.feed.subscribe(subscriber, world.spec("btcusd@depth@100ms"))
            await world.settle()
            world.feed.tick(slow=True)
        assert placed
        assert "does not follow" not in caplog.text
        (event,) = subscriber.payloads()
        assert event["U"] == loaded[0] + 1 and event["u"] == world.feed.mirrors[BTC].sequence
        assert _wire(event["b"]) == [(Decimal(90), Decimal(1))]

    _in_world(gate, body)


# ---------------------------------------------------------------------------- durable frames only


def _state_at(world: _World, symbol: str, sequence: int) -> tuple[int, Any, Any]:
    """The journal position at which ``symbol``'s book first had ``sequence``, and its sides then."""
    for position, market, seq, bids, asks in world.states:
        if market == symbol and seq == sequence:
            return position, bids, asks
    raise AssertionError(f"{symbol} never had sequence {sequence}")


def _check_book_frames(world: _World, subscriber: _Frames, symbol: str, levels: int) -> int:
    """Every partial book and bookTicker frame shows ``symbol``'s book exactly as it was at its sequence,
    and that sequence's command was durable when the frame was sent. Returns how many were checked."""
    checked = 0
    streams = subscriber.streams if subscriber.combined else [""] * len(subscriber.frames)
    for (payload, durable), stream in zip(subscriber.frames, streams, strict=True):
        if "lastUpdateId" in payload:
            if stream:
                levels = int(stream.split("@")[1][len("depth") :])
            position, bids, asks = _state_at(world, symbol, payload["lastUpdateId"])
            assert _wire(payload["bids"]) == bids[:levels]
            assert _wire(payload["asks"]) == asks[:levels]
        elif "u" in payload and "e" not in payload:  # bookTicker
            position, bids, asks = _state_at(world, symbol, payload["u"])
            top = (
                [(Decimal(payload["b"]), Decimal(payload["B"]))],
                [(Decimal(payload["a"]), Decimal(payload["A"]))],
            )
            assert top[0] == (bids[:1] or [(Decimal(0), Decimal(0))])
            assert top[1] == (asks[:1] or [(Decimal(0), Decimal(0))])
        else:
            continue
        assert position <= durable, f"frame {payload} shows position {position}, durable was {durable}"
        checked += 1
    return checked


def test_a_mirror_loaded_while_commands_are_in_flight_waits_for_them(gate: _Gate) -> None:
    async def body(world: _World) -> None:
        feed = world.feed
        world.run(60)
        await world.settle()
        gate.hold()
        world.run(40)  # applied to the books, not durable
        await world.deliver()
        in_flight = world.exchange.journal.appended
        assert world.exchange.journal.durable < in_flight
        subscriber = _Frames(world.exchange)
        for name in ("btcusd@depth5@100ms", "btcusd@bookTicker", "btcusd@ticker"):
            feed.subscribe(subscriber, world.spec(name))
        feed.tick(slow=False)
        feed.tick(slow=True)
        assert subscriber.frames == []  # nothing durable to show yet
        await world.settle()
        feed.tick(slow=False)
        kinds = [p.get("e", "bookTicker" if "u" in p else "partial") for p in subscriber.payloads()]
        assert sorted(kinds) == ["24hrTicker", "bookTicker", "partial"]
        assert _check_book_frames(world, subscriber, BTC, 5) == 2
        ticker = next(p for p in subscriber.payloads() if p.get("e") == "24hrTicker")
        _, bids, asks = _state_at(world, BTC, feed.mirrors[BTC].sequence)
        assert (Decimal(ticker["b"]), Decimal(ticker["a"])) == (bids[0][0], asks[0][0])

    _in_world(gate, body)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["run", "hold", "settle", "deliver", "tick", "slow", "subscribe", "leave"]),
            st.integers(1, 12),
        ),
        min_size=10,
        max_size=40,
    ),
)
def test_book_frames_show_durable_states_only_under_order_flow(
    gate: _Gate, seed: int, steps: list[tuple[str, int]]
) -> None:
    """Random order flow with the journal held back at random; partial books and bookTicker subscribed
    and left at random: every frame is the book at a durable sequence, and after the flow settles the
    last frames show the final book."""
    names = ["btcusd@depth10@100ms", "btcusd@bookTicker", "btcusd@depth5"]

    async def body(world: _World) -> None:
        feed = world.feed
        rng = random.Random(seed)
        subscribers = [_Frames(world.exchange, combined=True) for _ in range(2)]
        subscribed: set[tuple[int, str]] = set()
        for action, count in steps:
            if action == "run":
                world.run(count)
            elif action == "hold":
                gate.hold()
            elif action == "settle":
                await world.settle()
            elif action == "deliver":
                await world.deliver()
            elif action in ("tick", "slow"):
                feed.tick(slow=action == "slow")
            elif action == "subscribe":
                who, name = rng.randrange(2), rng.choice(names)
                feed.subscribe(subscribers[who], world.spec(name))
                subscribed.add((who, name))
            elif subscribed:
                who, name = sorted(subscribed)[count % len(subscribed)]
                feed.unsubscribe(subscribers[who], name)
                subscribed.discard((who, name))
        await world.settle()
        feed.tick(slow=True)
        for subscriber in subscribers:
            _check_book_frames(world, subscriber, BTC, 10)
        for who, name in subscribed:
            if name != "btcusd@bookTicker":  # a bookTicker sends only changes (and its first top)
                last = subscribers[who].payloads(name)[-1]
                assert last["lastUpdateId"] == world.exchange.get_snapshot(BTC)["sequence"]
        assert (feed.demand.books == {BTC}) == bool(subscribed)

    _in_world(gate, body, seed)


# ---------------------------------------------------------------------------- depth diffs


def _sync_local_book(
    events: list[dict[str, Any]], snapshot: dict[str, Any]
) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int]:
    """Binance's "manage a local order book" procedure from a REST ``depth`` answer: drop events with
    ``u <= lastUpdateId``, the first kept one must have ``U <= lastUpdateId + 1 <= u``, each next one
    ``U`` = the previous ``u + 1``. The local bids, asks and update id."""
    last = int(snapshot["sequence"])
    bids = dict(_levels(snapshot["bids"]))
    asks = dict(_levels(snapshot["asks"]))
    started = False
    for event in events:
        if event["u"] <= last:
            assert not started
            continue
        if started:
            assert event["U"] == last + 1, (event["U"], last)
        else:
            assert event["U"] <= last + 1 <= event["u"], (event["U"], last, event["u"])
            started = True
        for side, levels in ((bids, event["b"]), (asks, event["a"])):
            for price, quantity in _wire(levels):
                if quantity == 0:
                    side.pop(price, None)
                else:
                    side[price] = quantity
        last = event["u"]
    return bids, asks, last


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    before=st.integers(0, 80),
    between=st.integers(0, 40),
    after=st.integers(1, 80),
    held=st.sampled_from(["never", "before", "between", "throughout"]),
    ticks=st.integers(1, 10),
)
def test_depth_diffs_continue_a_rest_snapshot_under_order_flow(
    gate: _Gate, seed: int, before: int, between: int, after: int, held: str, ticks: int
) -> None:
    """Subscribe to ``depth@100ms`` while orders flow (some in flight), read REST ``depth`` (the live
    book) later, keep trading: the events continue the snapshot and end at the exchange's book."""

    async def body(world: _World) -> None:
        feed = world.feed
        if held in ("before", "throughout"):
            gate.hold()
        world.run(before)
        await world.deliver()
        subscriber = _Frames(world.exchange)
        feed.subscribe(subscriber, world.spec("btcusd@depth@100ms"))
        if held == "between":
            gate.hold()
        elif held == "before":
            await world.settle()
        world.run(between)
        await world.deliver()
        snapshot = world.exchange.get_snapshot(BTC)  # REST depth: the live book, maybe not durable yet
        if held == "between":
            await world.settle()
        for index in range(ticks):
            world.run(after // ticks + (index < after % ticks))
            await world.deliver()
            feed.tick(slow=False)
        await world.settle()
        feed.tick(slow=True)
        events = subscriber.payloads()
        assert all(event["e"] == "depthUpdate" for event in events)
        bids, asks, last = _sync_local_book(events, snapshot)
        final = world.exchange.get_snapshot(BTC)
        assert last == final["sequence"]
        assert sorted(bids.items(), reverse=True) == _levels(final["bids"])
        assert sorted(asks.items()) == _levels(final["asks"])

    _in_world(gate, body, seed)


def test_resubscribing_after_a_gap_starts_from_a_new_snapshot(gate: _Gate) -> None:
    """The diffs stop while nobody reads the market; a new subscriber's events start after its own
    snapshot (the gap shows as a ``U`` past the old ``u + 1``), and a REST snapshot read then syncs."""

    async def body(world: _World) -> None:
        feed = world.feed
        subscriber = _Frames(world.exchange)
        feed.subscribe(subscriber, world.spec("btcusd@depth@100ms"))
        world.run(60)
        await world.settle()
        feed.tick(slow=False)
        old = subscriber.payloads()
        assert old
        world.run(20)
        await world.settle()  # their diffs wait for the next tick: they must not reach the next subscriber
        feed.unsubscribe(subscriber, "btcusd@depth@100ms")
        gap_start = world.exchange.get_snapshot(BTC)["sequence"]
        world.built.clear()
        world.run(60)
        await world.settle()
        assert world.book_messages() == []
        assert world.exchange.get_snapshot(BTC)["sequence"] > gap_start, "the book changed in the gap"

        gate.hold()
        world.run(10)  # in flight while the new subscription loads its snapshot
        await world.deliver()
        again = _Frames(world.exchange)
        feed.subscribe(again, world.spec("btcusd@depth@100ms"))
        snapshot = world.exchange.get_snapshot(BTC)
        world.run(60)
        await world.settle()
        feed.tick(slow=False)
        events = again.payloads()
        assert events and events[0]["U"] > gap_start + 1
        bids, asks, last = _sync_local_book(events, snapshot)
        final = world.exchange.get_snapshot(BTC)
        assert last == final["sequence"]
        assert sorted(bids.items(), reverse=True) == _levels(final["bids"])
        assert sorted(asks.items()) == _levels(final["asks"])
        assert feed.mirrors[BTC].sequence == final["sequence"]
        mirror = feed.mirrors[BTC]
        assert [(p, Decimal(q)) for p, q in sorted(mirror.bids.levels.items(), reverse=True)] == _levels(
            final["bids"]
        )
        assert [(p, Decimal(q)) for p, q in sorted(mirror.asks.levels.items())] == _levels(final["asks"])

    _in_world(gate, body)


def test_diffs_that_the_snapshot_holds_are_skipped(gate: _Gate) -> None:
    """Diffs in flight when a mirror is loaded (built for another reader, such as the native hub's book
    subscriber, or for this feed's previous subscriber) are already in its snapshot: skipped, not taken
    for a gap."""

    async def body(world: _World) -> None:
        feed = world.feed
        hub_reader: list[dict[str, Any]] = []
        world.exchange.add_listener(hub_reader.extend, Demand(books=[BTC]))
        first = _Frames(world.exchange)
        feed.subscribe(first, world.spec("btcusd@depth@100ms"))
        gate.hold()
        world.run(40)  # their diffs are built, not durable
        feed.unsubscribe(first, "btcusd@depth@100ms")  # the mirror goes; the hub keeps the diffs on
        world.run(20)
        subscriber = _Frames(world.exchange)
        feed.subscribe(subscriber, world.spec("btcusd@depth@100ms"))
        feed.subscribe(subscriber, world.spec("btcusd@depth5@100ms"))
        loaded = feed.mirrors[BTC].sequence
        world.run(30)
        await world.settle()
        feed.tick(slow=False)
        assert any(m["type"] == "book" and m["last_sequence"] <= loaded for m in hub_reader)
        (event,) = [p for p in subscriber.payloads() if p.get("e") == "depthUpdate"]
        assert event["U"] == loaded + 1
        final = world.exchange.get_snapshot(BTC)
        assert event["u"] == final["sequence"] == feed.mirrors[BTC].sequence
        (partial,) = [p for p in subscriber.payloads() if "lastUpdateId" in p]
        assert partial["lastUpdateId"] == final["sequence"]
        assert _wire(partial["bids"]) == _levels(final["bids"])[:5]

    _in_world(gate, body)


def test_a_market_created_while_every_market_is_read_is_mirrored(gate: _Gate) -> None:
    """``!ticker@arr`` reads every market's book: one created after it subscribed is mirrored too (from its
    first diff), and its ticker shows its durable best bid and ask."""

    async def body(world: _World) -> None:
        feed = world.feed
        subscriber = _Frames(world.exchange)
        feed.subscribe(subscriber, world.spec("!ticker@arr"))
        assert feed.demand.books is None
        config = MarketConfig(
            "SOL/USD", "SOL", "USD", Decimal("0.01"), Decimal("0.1"), Decimal(0), Decimal(0)
        )
        world.exchange.create_market(config)
        world.exchange.deposit("alice", "SOL", "100")
        world.exchange.place_order("alice", "SOL/USD", "sell", "2", price="25")
        world.exchange.place_order("bob", "SOL/USD", "buy", "1", price="20")
        await world.settle()
        assert set(feed.mirrors) == {BTC, ETH, "SOL/USD"}
        feed.tick(slow=True)
        (frame,) = subscriber.payloads()
        ticker = {row["s"]: row for row in frame}["SOLUSD"]
        assert (Decimal(ticker["b"]), Decimal(ticker["B"])) == (Decimal(20), Decimal(1))
        assert (Decimal(ticker["a"]), Decimal(ticker["A"])) == (Decimal(25), Decimal(2))

    _in_world(gate, body)
