"""The Binance user feed has the exchange build the private messages of its subscribed users only
(:class:`manticore_matching.Demand`), and of a user being subscribed from before the balances read
that its events start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from manticore_api.binance.markets import BinanceMarkets
from manticore_api.binance.user_feed import UserFeed
from manticore_matching import Demand
from tests.matching.exchange_streams import Clock, apply, make_stream, new_exchange


class _Frames:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def push(self, message: dict[str, Any] | str) -> None:
        self.frames.append(str(message))


def test_private_messages_are_built_only_for_subscribed_users(tmp_path: Path) -> None:
    clock = Clock()
    exchange = new_exchange(tmp_path, clock, checkpoint_every=0)
    exchange.open()
    feed = UserFeed(exchange, BinanceMarkets(exchange), lambda: None)
    built: list[dict[str, Any]] = []  # reads nothing itself: it receives what the others' demand built
    exchange.add_listener(built.extend, Demand())
    stream = make_stream(11, 150)

    def run(commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        built.clear()
        for command in commands:
            apply(exchange, clock, command)
        exchange.wait_durable(exchange.journal.appended)
        return list(built)

    assert run(stream[:60]) == []

    subscriber = _Frames()
    with feed.following("alice"):
        assert run(stream[60:70]) and all(m.get("user_id") == "alice" for m in built)
        feed.subscribe("alice", subscriber, 1, exchange.balances("alice")["balances"])
    messages = run(stream[70:130])
    assert messages, "alice trades in this stretch of the stream"
    assert {m["user_id"] for m in messages} == {"alice"}
    assert {m["type"] for m in messages} <= {"order", "fill", "balances"}

    feed.unsubscribe("alice", subscriber, 1)
    assert run(stream[130:]) == []
    exchange.close()
