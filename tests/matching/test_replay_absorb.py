"""Replay's one-pass handling of a place record's events (session 21, issue 17).

* ``ReplayFills.absorb`` does what ``ReplayFills.follow`` (fills not captured), then
  ``RecentOrders.track`` of its answer and the append of each trade to the market's recent trades
  did: the same facts, recent-orders view (items, their order, each payload's keys in order), client
  order id indexes and trades, for random commands of every kind on a book (a view bound of 1-6
  orders, so that it forgets orders and their names too; some places reuse an earlier order's id).
* ``Exchange._replay_place`` (the common place record, written out) is what the replay of a plain
  stream runs, and that replay rebuilds the live state (checkpoint part-way or none).
"""

from __future__ import annotations

import contextlib
import random
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_matching import recent
from manticore_matching.config import MarketConfig
from manticore_matching.exchange import Exchange
from manticore_matching.feed import CommandCapture
from manticore_matching.market import new_book
from manticore_matching.recent import RecentOrders, ReplayFills
from manticore_orderbook import EventManager, EventType, OrderBookError
from tests.matching.exchange_streams import Clock, new_exchange
from tests.matching.test_replay_view import _apply, _crash, _memory, _stream

_CONFIG = MarketConfig(
    "BTC/USD", "BTC", "USD", Decimal("0.5"), Decimal("0.1"), Decimal("-0.001"), Decimal("0.002")
)


def _command(book: Any, rng: random.Random, placed: list[str], number: int) -> None:
    """One random command on ``book``: a place of any kind (a client order id on some; an earlier
    order's id on some), a cancel or a modify of an order placed before; a refused one changes
    nothing."""
    roll = rng.random()
    with contextlib.suppress(OrderBookError, ValueError):
        if roll < 0.7 or not placed:
            order_id = f"MC-{number}"
            # the id of an earlier order again (refused while that one is live)
            if placed and rng.random() < 0.1:
                order_id = rng.choice(placed)
            kind = rng.choice(["limit"] * 6 + ["market", "ioc", "fok", "iceberg", "stop", "stop_market"])
            args: dict[str, Any] = {
                "side": rng.choice(("buy", "sell")),
                "price": str(Decimal("0.5") * rng.randint(190, 210)),
                "quantity": str(Decimal("0.1") * rng.randint(1, 30)),
                "order_id": order_id,
                "user_id": rng.choice(("alice", "bob", "carol")),
            }
            if rng.random() < 0.3:
                args["client_order_id"] = f"c{rng.randint(0, 5)}"
            if kind == "market":
                args["price"] = None
            elif kind in ("ioc", "fok"):
                args["time_in_force"] = kind.upper()
            elif kind == "iceberg":
                args["displayed_quantity"] = "0.1"
            elif kind == "stop":
                args["stop_price"] = str(Decimal("0.5") * rng.randint(190, 210))
            elif kind == "stop_market":
                args["price"] = None
                args["stop_price"] = str(Decimal("0.5") * rng.randint(190, 210))
            if rng.random() < 0.1:
                args["self_trade_prevention"] = rng.choice(("cancel_newest", "cancel_oldest", "cancel_both"))
            book.add_order(**args)
            placed.append(order_id)
        elif roll < 0.85:
            book.cancel_order(rng.choice(placed))
        else:
            book.modify_order(
                rng.choice(placed),
                new_price=str(Decimal("0.5") * rng.randint(190, 210)) if rng.random() < 0.5 else None,
                new_quantity=str(Decimal("0.1") * rng.randint(1, 30)),
            )


def _view(orders: RecentOrders) -> tuple[Any, ...]:
    return (
        [(order_id, list(order.items())) for order_id, order in orders.recent.items()],
        dict(orders.live_names),
        dict(orders.recent_names),
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 1_000_000), length=st.integers(1, 100), bound=st.integers(1, 6))
def test_absorb_is_follow_then_track_then_the_trades(seed: int, length: int, bound: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recent, "RECENT_ORDERS", bound)
        _compare_absorb(seed, length)


def _compare_absorb(seed: int, length: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    manager = EventManager()
    book = new_book(_CONFIG, manager, clock)
    capture = CommandCapture()
    capture.attach(manager, False)

    def other(_event_type: EventType, _data: dict[str, Any]) -> None:
        """The second follower's handler (subscribed so that it can be unsubscribed)."""

    manager.subscribe(EventType.ORDER_FILLED, other)
    followed, absorbed = ReplayFills(book, capture.handler), ReplayFills(book, other)
    orders_followed, orders_absorbed = RecentOrders(), RecentOrders()
    trades_followed: deque[dict[str, Any]] = deque(maxlen=4)
    trades_absorbed: deque[dict[str, Any]] = deque(maxlen=4)
    placed: list[str] = []
    for number in range(length):
        clock.now += rng.choice((0.0, 0.25))
        _command(book, rng, placed, number)
        events = capture.take()
        outcome: list[Any] = []
        try:
            result = followed.follow(list(events), book, False)
            orders_followed.track(result, None)
            trades_followed.extend(data for kind, data in result if kind is EventType.TRADE_EXECUTED)
        except KeyError as exc:  # a fill of an order no event stated: refused alike
            outcome.append(repr(exc))
        try:
            absorbed.absorb(list(events), book, orders_absorbed, trades_absorbed)
        except KeyError as exc:
            outcome.append(repr(exc))
        assert len(outcome) in (0, 2) and (not outcome or outcome[0] == outcome[1])
        assert _view(orders_absorbed) == _view(orders_followed)
        assert list(trades_absorbed) == list(trades_followed)
        assert absorbed.facts == followed.facts
        assert absorbed.icebergs == followed.icebergs


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    checkpoint_at=st.none() | st.integers(0, 150),
    bound=st.sampled_from([recent.RECENT_ORDERS, 2, 7]),
)
def test_a_plain_stream_replays_through_replay_place_to_the_live_state(
    tmp_path_factory: pytest.TempPathFactory, seed: int, checkpoint_at: int | None, bound: int
) -> None:
    """A crash after a random stream without icebergs or command ids: most of its place records go
    through ``_replay_place``'s own path (``absorb``), and the replayed exchange holds what the live
    one did (checkpoint part-way: the state, trades, ledger and names; the view's orders alike). A
    view of ``bound`` orders (2 and 7: it forgets most finished orders, session 23)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recent, "RECENT_ORDERS", bound)
        _replay_plain_stream(tmp_path_factory, seed, checkpoint_at)


def _replay_plain_stream(
    tmp_path_factory: pytest.TempPathFactory, seed: int, checkpoint_at: int | None
) -> None:
    absorbed = 0
    absorb = ReplayFills.absorb

    def counting(self: ReplayFills, *args: Any) -> None:
        nonlocal absorbed
        absorbed += 1
        absorb(self, *args)

    stream = _stream(seed, 150, False, False)
    directory = tmp_path_factory.mktemp("replay")
    clock = Clock()
    exchange = new_exchange(directory, clock, checkpoint_every=0)
    exchange.open()
    for index, command in enumerate(stream):
        if index == checkpoint_at:
            exchange.checkpoint()
        _apply(exchange, clock, command)
    live = _memory(exchange)
    _crash(exchange)
    replayed = new_exchange(directory, clock, checkpoint_every=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReplayFills, "absorb", counting)
        replayed.open()
    try:
        after = _memory(replayed)
        if checkpoint_at is None:
            assert after == live
        else:
            for part in ("state", "trades", "ledger", "live_names", "receipts"):
                assert after[part] == live[part]
            view = dict(live["recent"])
            for order_id, items in after["recent"]:
                assert view[order_id] == items
        places = sum(1 for command in stream[checkpoint_at or 0 :] if command["op"] == "place")
        assert places < 20 or absorbed > 0
    finally:
        replayed.close()


def test_a_place_record_without_a_client_order_id_key_reads_as_before(tmp_path: Path) -> None:
    """A place record journaled before every record named its client order id: ``_replay_place``
    gives it the one its order id implies (a client-given order id), as ``_replay_book_record`` does."""
    clock = Clock()
    exchange = new_exchange(tmp_path / "data", clock, checkpoint_every=0)
    exchange.open()
    for user in ("alice", "bob"):
        exchange.deposit(user, "USD", "10000")
        exchange.deposit(user, "BTC", "10")
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")  # the market's first record
    try:
        market = exchange._markets["BTC/USD"]
        exchange._replay_fills["BTC/USD"] = ReplayFills(market.book, market.capture.handler)
        record = {
            "op": "place",
            "ts": clock.now,
            "order_id": "legacy-7",
            "user_id": "bob",
            "symbol": "BTC/USD",
            "side": "buy",
            "order_type": "limit",
            "price": "99",
            "quantity": "1",
            "time_in_force": "GTC",
            "expiry_time": None,
            "stop_price": None,
            "displayed_quantity": None,
            "trail_value": None,
            "trail_is_percent": False,
            "self_trade_prevention": None,
            "seq": market.book.sequence + 2,  # ORDER_ADDED and its price level
            "check": [len(market.book) + 1, market.book.counters()[1]],
            "n": 99,
        }
        exchange._replay_place(record)
        assert record["client_order_id"] == "legacy-7"
        order = market.book.get_order("legacy-7")
        assert order is not None and order["client_order_id"] == "legacy-7"
    finally:
        exchange._replay_fills["BTC/USD"].capture_fills(True)
        exchange._replay_fills.clear()
        exchange.close()


def test_replay_place_goes_the_general_way_for_what_it_does_not_cover(tmp_path: Path) -> None:
    """A record with a command id, an iceberg, a book holding one, or a market's first record goes
    to ``_replay_book_record`` (which captures every fill where the view needs them)."""
    calls: list[str] = []
    exchange = Exchange.__new__(Exchange)
    exchange._replay_fills = {}
    exchange._replay_book_record = lambda record, op: calls.append(record["why"])  # type: ignore[method-assign]
    base = {"symbol": "BTC/USD", "displayed_quantity": None}
    exchange._replay_place({**base, "why": "first"})
    fills = ReplayFills.__new__(ReplayFills)
    fills.icebergs = 0
    exchange._replay_fills["BTC/USD"] = fills
    exchange._replay_place({**base, "cid": "x", "why": "cid"})
    exchange._replay_place({**base, "displayed_quantity": "1", "why": "iceberg"})
    fills.icebergs = 1
    exchange._replay_place({**base, "why": "book iceberg"})
    exchange._replay_place({**base, "symbol": 5, "why": "symbol"})
    assert calls == ["first", "cid", "iceberg", "book iceberg", "symbol"]
