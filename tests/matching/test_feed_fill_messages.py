"""A private ``fill`` message is ``fill_view`` of its ORDER_FILLED event (the fee as money) with the
order's progress after it, keys in that order (``feed.messages`` writes the fields out itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from manticore_orderbook import EventType
from tests.matching.exchange_streams import START, Clock, expected_fill_message, new_exchange


def test_fill_messages_are_fill_view_with_progress(tmp_path: Path) -> None:
    with new_exchange(tmp_path, Clock(START)) as exchange:
        exchange.deposit("alice", "USD", "100000")
        exchange.deposit("bob", "BTC", "10")
        exchange.place_order("alice", "BTC/USD", "buy", "1", price="100", client_order_id="a-1")
        exchange.place_order("alice", "BTC/USD", "buy", "1", price="99")
        filled: list[dict[str, Any]] = []
        exchange.book("BTC/USD").event_manager.subscribe(
            EventType.ORDER_FILLED, lambda _type, data: filled.append(data)
        )
        sent: list[dict[str, Any]] = []
        exchange.add_listener(sent.extend)
        receipt = exchange.place_order("bob", "BTC/USD", "sell", "1.5", price="99")
        exchange.wait_durable(receipt.position)
        exchange.remove_listener(sent.extend)
    fills = [message for message in sent if message["type"] == "fill"]
    expected = [expected_fill_message(data) for data in filled]
    assert len(fills) == 4  # two trades, a fill for each side
    assert fills == expected
    assert [list(message) for message in fills] == [list(message) for message in expected]
    assert {message["client_order_id"] for message in fills} == {"a-1", None}
