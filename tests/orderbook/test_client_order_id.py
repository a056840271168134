"""``client_order_id``: the owner's own name for an order, carried by the book on every dict and event."""

from __future__ import annotations

from typing import Any

import pytest

from manticore_orderbook import EventType, InvalidOrderError, OrderBook

from .support import FakeClock


def recording_book() -> tuple[OrderBook, list[tuple[EventType, dict[str, Any]]]]:
    book = OrderBook("BTC/USD", tick_size="1", lot_size="0.1", number_format="str", clock=FakeClock(1_000.0))
    events: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda event_type, data: events.append((event_type, dict(data))))
    return book, events


def test_plain_orders_carry_none_and_named_orders_their_id_on_every_order_event() -> None:
    book, events = recording_book()
    maker = book.add_order("sell", 100, 1, user_id="alice", client_order_id="ask-1")
    plain = book.add_order("sell", 101, 1, user_id="alice")
    book.add_order("buy", 100, "0.4", user_id="bob", client_order_id="bid.1:x")
    book.modify_order(maker, new_quantity="0.8")
    book.cancel_order(maker)
    book.cancel_order(plain)
    order_events = [(t, d) for t, d in events if "order_id" in d and t is not EventType.TRADE_EXECUTED]
    assert {t for t, _ in order_events} >= {
        EventType.ORDER_ADDED,
        EventType.ORDER_FILLED,
        EventType.ORDER_MODIFIED,
        EventType.ORDER_CANCELLED,
    }
    for _, data in order_events:
        expected = {maker: "ask-1", plain: None}.get(data["order_id"], "bid.1:x")
        assert data["client_order_id"] == expected
        assert list(data)[:2] == ["order_id", "client_order_id"]


def test_get_order_export_and_restore_keep_the_client_order_id() -> None:
    book, _ = recording_book()
    named = book.add_order("buy", 90, 1, client_order_id="mine")
    stop = book.add_order("sell", None, 1, stop_price=80, client_order_id="stop")
    plain = book.add_order("buy", 91, 1)
    assert book.get_order(named)["client_order_id"] == "mine"  # type: ignore[index]
    assert book.get_order(stop)["client_order_id"] == "stop"  # type: ignore[index]
    assert book.get_order(plain)["client_order_id"] is None  # type: ignore[index]
    state = book.export_state()
    again = OrderBook("BTC/USD", tick_size="1", lot_size="0.1", number_format="str")
    again.restore_state(state)
    assert again.export_state() == state


def test_batch_orders_take_a_client_order_id() -> None:
    book, _ = recording_book()
    ids = book.batch_add_orders([{"side": "buy", "price": 90, "quantity": 1, "client_order_id": "b1"}])
    assert book.get_order(ids[0])["client_order_id"] == "b1"  # type: ignore[index]


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "é", 7, b"bytes"])
def test_an_invalid_client_order_id_is_refused_and_changes_nothing(bad: object) -> None:
    book, events = recording_book()
    book.add_order("buy", 90, 1)
    before = (book.sequence, book.counters(), len(events))
    with pytest.raises(InvalidOrderError, match="client_order_id"):
        book.add_order("buy", 90, 1, client_order_id=bad)
    with pytest.raises(InvalidOrderError, match="client_order_id"):
        book.batch_add_orders([{"side": "buy", "price": 90, "quantity": 1, "client_order_id": bad}])
    assert (book.sequence, book.counters(), len(events)) == before


def test_the_book_does_not_make_client_order_ids_unique() -> None:
    """Uniqueness per user is the exchange's rule; the book only carries the name."""
    book, _ = recording_book()
    first = book.add_order("buy", 90, 1, client_order_id="same")
    second = book.add_order("buy", 90, 1, client_order_id="same")
    assert first != second
    assert [o["client_order_id"] for o in book.get_orders()] == ["same", "same"]
