"""What a user is told about their fills (``Exchange.fills`` and private ``fill`` frames): their own side,
order, client order id, role, price, quantity and fee, never the counterparty's user or order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Exchange
from manticore_matching.feed import FILL_KEYS
from tests.matching.exchange_streams import Clock, new_exchange


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    with new_exchange(tmp_path, Clock()) as opened:
        for user in ("alice", "bob"):
            opened.deposit(user, "USD", "10000")
            opened.deposit(user, "BTC", "10")
        yield opened


def _settle(exchange: Exchange, position: int) -> None:
    assert exchange.wait_durable(position, 10)
    assert exchange.storage is not None and exchange.storage.flush(10)


def test_each_user_sees_only_their_side(exchange: Exchange) -> None:
    frames: list[dict[str, Any]] = []
    exchange.add_listener(frames.extend)
    ask = exchange.place_order("alice", "BTC/USD", "sell", "1", price="100", client_order_id="a-ask")
    bid = exchange.place_order("bob", "BTC/USD", "buy", "0.4", price="100", client_order_id="b-bid")
    _settle(exchange, bid.position)
    (alice,) = exchange.fills("alice")
    (bob,) = exchange.fills("bob")
    assert tuple(alice) == tuple(bob) == FILL_KEYS
    assert alice == {
        "trade_id": alice["trade_id"],
        "symbol": "BTC/USD",
        "order_id": ask.order_id,
        "client_order_id": "a-ask",
        "side": "sell",
        "role": "maker",
        "price": alice["price"],
        "quantity": alice["quantity"],
        "fee": alice["fee"],
        "fee_asset": "USD",
        "timestamp": alice["timestamp"],
    }
    assert (bob["order_id"], bob["client_order_id"], bob["side"], bob["role"]) == (
        bid.order_id,
        "b-bid",
        "buy",
        "taker",
    )
    assert alice["trade_id"] == bob["trade_id"]
    assert Decimal(alice["price"]) == 100 and Decimal(alice["quantity"]) == Decimal("0.4")
    assert Decimal(alice["fee"]) == Decimal("0.04") and Decimal(bob["fee"]) == Decimal("0.08")
    for user, fill in (("alice", alice), ("bob", bob)):
        text = repr(fill)
        other = "bob" if user == "alice" else "alice"
        assert other not in text
        assert (bid.order_id if user == "alice" else ask.order_id) not in text
    fill_frames = [frame for frame in frames if frame["type"] == "fill"]
    assert [frame["user_id"] for frame in fill_frames] == ["alice", "bob"]
    for frame, view in zip(fill_frames, (alice, bob), strict=True):
        assert {key: frame[key] for key in FILL_KEYS} == view
        assert set(frame) == {
            "type",
            "user_id",
            *FILL_KEYS,
            "status",
            "filled_quantity",
            "remaining_quantity",
        }
    assert not any("maker_user_id" in frame or "taker_user_id" in frame for frame in frames)
    assert exchange.fills("carol") == []


def test_a_self_trade_gives_both_fills_and_limit_counts_fills(exchange: Exchange) -> None:
    exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
    receipt = exchange.place_order("alice", "BTC/USD", "buy", "1", price="100")
    _settle(exchange, receipt.position)
    fills = exchange.fills("alice")
    assert sorted((f["side"], f["role"]) for f in fills) == [("buy", "taker"), ("sell", "maker")]
    assert len(exchange.fills("alice", limit=1)) == 1
