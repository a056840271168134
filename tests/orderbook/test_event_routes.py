"""The manager's routes and the book's event queue (docs/performance.md, session 18 (h5)).

``EventManager.routes`` mirrors ``handlers`` item by item (None where a type has no handler, else
``(lone, event_type, handlers)``, ``lone`` the handler when there is exactly one); a book queues each
event with the route of its type at that moment, in both builds' queue layouts. These tests hold the
observable rules: an event goes to the handlers subscribed when it was queued, events queued by a
handler are delivered after the current ones, and the queue is empty after every command.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_orderbook.events import ALL_EVENT_TYPES, EVENT_INDEX


def _first(event: EventType, data: dict[str, Any]) -> None:
    pass


def _second(event: EventType, data: dict[str, Any]) -> None:
    pass


def _check_routes(manager: EventManager) -> None:
    assert len(manager.routes) == len(manager.handlers) == len(ALL_EVENT_TYPES)
    for index, event_type in enumerate(ALL_EVENT_TYPES):
        handlers = manager.handlers[index]
        route = manager.routes[index]
        if handlers:
            assert route is not None
            assert route[0] is (handlers[0] if len(handlers) == 1 else None)
            assert route[1] is event_type
            assert route[2] is handlers
        else:
            assert route is None


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["subscribe", "unsubscribe", "subscribe_all", "unsubscribe_all"]),
        st.sampled_from(list(EventType)),
        st.sampled_from([_first, _second]),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_STEPS)
def test_routes_follow_the_handlers_through_any_subscriptions(
    steps: list[tuple[str, EventType, Any]],
) -> None:
    manager = EventManager()
    _check_routes(manager)
    for action, event_type, handler in steps:
        if action == "subscribe":
            manager.subscribe(event_type, handler)
        elif action == "unsubscribe":
            manager.unsubscribe(event_type, handler)
        elif action == "subscribe_all":
            manager.subscribe_all(handler)
        else:
            manager.unsubscribe_all(handler)
        _check_routes(manager)


def test_an_event_goes_to_the_handlers_subscribed_when_it_was_queued() -> None:
    book = OrderBook("BTC/USD")
    manager = book.event_manager
    late: list[tuple[EventType, Any]] = []
    seen: list[EventType] = []

    def subscribes_another(event: EventType, data: dict[str, Any]) -> None:
        seen.append(event)
        if event is EventType.TRADE_EXECUTED and not late:
            # The taker's two fills are queued already: they were routed without this handler.
            manager.subscribe(EventType.ORDER_FILLED, lambda e, d: late.append((e, d["order_id"])))

    manager.subscribe(EventType.TRADE_EXECUTED, subscribes_another)
    manager.subscribe(EventType.ORDER_FILLED, subscribes_another)
    book.add_order("sell", 100.0, 1.0, order_id="maker")
    book.add_order("buy", 100.0, 1.0, order_id="taker")
    assert seen == [EventType.TRADE_EXECUTED, EventType.ORDER_FILLED, EventType.ORDER_FILLED]
    assert late == []
    book.add_order("sell", 101.0, 1.0, order_id="maker2")
    book.add_order("buy", 101.0, 1.0, order_id="taker2")
    assert late == [(EventType.ORDER_FILLED, "maker2"), (EventType.ORDER_FILLED, "taker2")]


def test_a_handler_unsubscribed_mid_command_still_gets_the_events_already_queued() -> None:
    book = OrderBook("BTC/USD")
    manager = book.event_manager
    got: list[EventType] = []

    def leaves(event: EventType, data: dict[str, Any]) -> None:
        got.append(event)
        manager.unsubscribe_all(leaves)

    manager.subscribe_all(leaves)
    book.add_order("sell", 100.0, 1.0, order_id="m")
    assert got == [EventType.ORDER_ADDED, EventType.PRICE_LEVEL_ADDED]
    book.add_order("sell", 100.0, 1.0, order_id="m2")
    assert len(got) == 2
    assert manager.routes[EVENT_INDEX[EventType.ORDER_ADDED]] is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(98, 102), st.integers(1, 4), st.booleans()),
        min_size=1,
        max_size=25,
    )
)
def test_events_of_nested_commands_follow_the_current_ones_and_the_queue_empties(
    orders: list[tuple[bool, int, int, bool]],
) -> None:
    """Every command's events arrive in sequence order, each exactly once; a handler's own command
    (a cancel of each order it sees added) has its events delivered after the current command's."""
    book = OrderBook("BTC/USD")
    sequences: list[int] = []
    cancelled: list[str] = []

    def handler(event: EventType, data: dict[str, Any]) -> None:
        sequences.append(data["sequence"])
        if event is EventType.ORDER_ADDED and data["order_id"] in wanted:
            wanted.discard(data["order_id"])
            cancelled.append(data["order_id"])
            book.cancel_order(data["order_id"])

    wanted: set[str] = set()
    book.event_manager.subscribe_all(handler)
    for number, (buy, price, quantity, cancel_it) in enumerate(orders):
        order_id = f"o{number}"
        if cancel_it:
            wanted.add(order_id)
        before = len(sequences)
        book.add_order("buy" if buy else "sell", float(price), float(quantity), order_id=order_id)
        assert sequences[before:] == sorted(sequences[before:])
        assert len(set(sequences)) == len(sequences)
        assert not book._pending
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    for order_id in cancelled:
        assert book.get_order(order_id) is None
