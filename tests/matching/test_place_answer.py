"""The order a placement answers with is the order as it stands after the command: a resting order's
``visible_quantity`` is what the book shows of it (the whole open quantity, or an iceberg's slice), not
the 0 of the ``ORDER_ADDED`` / taker ``ORDER_FILLED`` events raised before it rested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from manticore_matching import Exchange
from tests.matching.exchange_streams import Clock, new_exchange


@pytest.fixture
def exchange(tmp_path: Path) -> Any:
    with new_exchange(tmp_path, Clock()) as opened:
        for user in ("alice", "bob"):
            opened.deposit(user, "USD", "100000")
            opened.deposit(user, "BTC", "100")
        yield opened


def _shown(exchange: Exchange, user: str, order_id: str) -> tuple[str, str, str]:
    order = exchange.get_order(user, order_id)
    assert order is not None
    return order["remaining_quantity"], order["visible_quantity"], order["status"]


def _answered(order: dict[str, Any] | None) -> tuple[str, str, str]:
    assert order is not None
    return order["remaining_quantity"], order["visible_quantity"], order["status"]


def test_a_resting_order_answers_with_its_visible_quantity(exchange: Exchange) -> None:
    placed = exchange.place_order("alice", "BTC/USD", "buy", "2", price="90")
    assert placed.order_id is not None
    assert _answered(placed.order) == _shown(exchange, "alice", placed.order_id)
    assert placed.order is not None and placed.order["visible_quantity"] == placed.order["remaining_quantity"]


def test_a_partly_filled_taker_that_rests_answers_with_its_visible_quantity(exchange: Exchange) -> None:
    exchange.place_order("bob", "BTC/USD", "sell", "1", price="100")
    taker = exchange.place_order("alice", "BTC/USD", "buy", "3", price="100")
    assert taker.order is not None and taker.order_id is not None
    assert taker.order["status"] == "partially_filled"
    assert _answered(taker.order) == _shown(exchange, "alice", taker.order_id)


def test_an_iceberg_answers_with_its_slice(exchange: Exchange) -> None:
    iceberg = exchange.place_order(
        "alice", "BTC/USD", "sell", "5", price="110", order_type="iceberg", displayed_quantity="1"
    )
    assert iceberg.order_id is not None
    assert _answered(iceberg.order) == _shown(exchange, "alice", iceberg.order_id)
    assert (
        iceberg.order is not None and iceberg.order["visible_quantity"] != iceberg.order["remaining_quantity"]
    )


def test_a_stop_order_not_triggered_shows_nothing(exchange: Exchange) -> None:
    stop = exchange.place_order(
        "alice", "BTC/USD", "buy", "1", price="130", order_type="stop_limit", stop_price="120"
    )
    assert stop.order_id is not None
    assert _answered(stop.order) == _shown(exchange, "alice", stop.order_id)
