"""``RecentOrders.track`` returns the order's state as a new plain dict (the payload it starts from
stays as the book published it) and keeps a finished order's event payload as a copy."""

from __future__ import annotations

from typing import Any

from manticore_matching.recent import RecentOrders
from manticore_orderbook import EventManager, EventType, OrderBook


def _book() -> tuple[OrderBook, list[tuple[EventType, dict[str, Any]]]]:
    manager = EventManager()
    events: list[tuple[EventType, dict[str, Any]]] = []
    manager.subscribe_all(lambda event_type, data: events.append((event_type, data)))
    book = OrderBook("BTC/USD", event_manager=manager, tick_size="0.5", lot_size="0.001", number_format="str")
    return book, events


def test_state_is_a_new_dict_and_the_payloads_are_unchanged() -> None:
    book, events = _book()
    book.add_order("buy", "100", "1", order_id="A", user_id="u")
    payloads = [(event_type, dict(data)) for event_type, data in events]
    view = RecentOrders()
    state = view.track(events, "A")
    assert state is not None and type(state) is dict
    assert all(state is not data for _, data in events)
    assert [(event_type, dict(data)) for event_type, data in events] == payloads
    added = next(data for event_type, data in events if event_type is EventType.ORDER_ADDED)
    assert state == {**added, "visible_quantity": added["remaining_quantity"]}


def test_a_cancelled_order_is_kept_as_a_copy_of_its_payload() -> None:
    book, events = _book()
    book.add_order("buy", "100", "1", order_id="A", user_id="u", client_order_id="mine")
    view = RecentOrders()
    view.track(events, "A")
    events.clear()
    book.cancel_order("A")
    cancelled = next(data for event_type, data in events if event_type is EventType.ORDER_CANCELLED)
    state = view.track(events, "A")
    kept = view.recent["A"]
    assert kept == cancelled and kept is not cancelled and type(kept) is dict
    assert state == cancelled and state is not kept
    assert view.recent_names[("u", "mine")] == "A"
