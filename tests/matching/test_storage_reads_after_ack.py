"""Storage-backed reads (order history, fills) show every command acknowledged before the read, although
storage writes behind the journal (regression: a read right after an acknowledgement could miss it while
the writer gathered its batch, which made the gateway-vs-embedded comparison fail under load)."""

from __future__ import annotations

from pathlib import Path

from manticore_matching import Exchange
from tests.matching.exchange_streams import Clock, new_exchange


def test_a_read_right_after_the_acknowledgement_sees_the_command(tmp_path: Path) -> None:
    exchange: Exchange = new_exchange(tmp_path, Clock())
    exchange.open()
    try:
        for user in ("alice", "bob"):
            exchange.deposit(user, "USD", "10000")
            exchange.deposit(user, "BTC", "10")
        for round_number in range(5):  # each round read at once: the writer's gather delay not over
            ask = exchange.place_order("alice", "BTC/USD", "sell", "1", price="100")
            bid = exchange.place_order("bob", "BTC/USD", "buy", "1", price="100")
            assert exchange.wait_durable(bid.position, 10)  # what an acknowledgement waits for
            fills = exchange.fills("bob")
            assert len(fills) == round_number + 1
            assert fills[0]["order_id"] == bid.order_id
            history = exchange.order_history("alice")
            assert len(history) == round_number + 1
            assert (history[0]["order_id"], history[0]["status"]) == (ask.order_id, "filled")
    finally:
        exchange.close()
