"""export_state / restore_state: a restored book is the same book (orders, priority, next events)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventManager, EventType, InvalidOrderError, OrderBook
from tests.command_streams import Clock, apply, make_stream, new_book


def _recording_book(clock: Clock) -> tuple[OrderBook, list[tuple[str, dict[str, Any]]]]:
    manager = EventManager()
    events: list[tuple[str, dict[str, Any]]] = []
    manager.subscribe_all(lambda event_type, data: events.append((event_type.value, data)))
    return new_book(clock=clock, event_manager=manager), events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9), cut=st.integers(0, 160), tail=st.integers(1, 60))
def test_restored_book_continues_exactly_like_the_original(seed: int, cut: int, tail: int) -> None:
    stream = make_stream(seed, cut + tail)
    clock = Clock()
    original, original_events = _recording_book(clock)
    for command in stream[:cut]:
        apply(original, clock, command)
    state = json.loads(json.dumps(original.export_state()))  # survives a JSON round trip

    twin_clock = Clock(clock.now)
    twin, twin_events = _recording_book(twin_clock)
    assert twin.restore_state(state) == len(original)
    assert twin_events == [], "restore published events"
    twin.check_invariants()
    assert twin.get_orders() == original.get_orders()
    assert twin.get_snapshot() == original.get_snapshot()
    assert twin.sequence == original.sequence

    del original_events[:]
    for command in stream[cut:]:
        assert apply(original, clock, command) == apply(twin, twin_clock, command)
        twin.check_invariants()
    assert json.dumps(twin_events) == json.dumps(original_events)
    assert twin.get_orders() == original.get_orders()


def test_priority_not_list_order_decides_the_queue() -> None:
    clock = Clock()
    book = new_book(clock=clock)
    for order_id in ("a", "b", "c"):
        book.add_order("buy", "99", "1", order_id=order_id)
    state = book.export_state()
    state["orders"].reverse()
    twin = new_book(clock=Clock(clock.now))
    twin.restore_state(state)
    assert [o["order_id"] for o in twin.get_orders()] == ["a", "b", "c"]
    twin.add_order("sell", "99", "1", order_id="s")
    assert twin.get_order("a") is None and twin.get_order("b") is not None


def test_iceberg_reserve_and_slice_survive() -> None:
    clock = Clock()
    book = new_book(clock=clock)
    book.add_order("sell", "100", "5", order_id="ice", order_type="iceberg", displayed_quantity="1")
    book.add_order("sell", "100", "1", order_id="plain")
    book.add_order("buy", "100", "1.5")  # eats the slice, the refill goes behind "plain"
    twin = new_book(clock=Clock(clock.now))
    twin.restore_state(book.export_state())
    assert twin.get_orders() == book.get_orders()
    ice = twin.get_order("ice")
    assert ice is not None and ice["remaining_quantity"] == 4.0 and ice["visible_quantity"] == 1.0


def test_generated_ids_and_trade_ids_continue() -> None:
    clock = Clock()
    book = new_book(clock=clock)
    first = book.add_order("buy", "99", "1")
    book.add_order("sell", "99", "0.5")
    twin = new_book(clock=Clock(clock.now))
    twin.restore_state(book.export_state())
    assert twin.add_order("buy", "98", "1") != first
    trades: list[dict[str, Any]] = []
    twin.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda _e, d: trades.append(d))
    twin.add_order("sell", "99", "0.5")
    assert trades[0]["trade_id"] != book.get_trade_history()[0]["trade_id"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o.update(priority=0), "priority"),
        (lambda o: o.update(remaining_quantity="5"), "equal quantity"),
        (lambda o: o.update(price="99.3"), "multiple"),
        (lambda o: o.update(time_in_force="IOC"), "never rest"),
        (lambda o: o.pop("order_id"), "order_id"),
        (lambda o: o.update(visible_quantity="2"), "visible"),
    ],
)
def test_bad_state_is_rejected_and_changes_nothing(mutate: Any, message: str) -> None:
    book = new_book()
    book.add_order("buy", "99", "1", order_id="a")
    book.add_order("buy", "98", "1", order_id="b")
    state = book.export_state()
    mutate(state["orders"][1])
    twin = new_book()
    with pytest.raises(InvalidOrderError, match=message):
        twin.restore_state(state)
    assert len(twin) == 0 and twin.sequence == 0 and twin.get_snapshot()["bids"] == []


def test_restore_refuses_a_non_empty_book_and_duplicates() -> None:
    book = new_book()
    book.add_order("buy", "99", "1", order_id="a")
    state = book.export_state()
    with pytest.raises(InvalidOrderError, match="empty"):
        book.restore_state(state)
    state["orders"].append(dict(state["orders"][0], priority=99))
    with pytest.raises(InvalidOrderError, match="already used"):
        new_book().restore_state(state)


def test_crossed_state_is_rejected() -> None:
    bid = new_book()
    bid.add_order("buy", "100", "1", order_id="b")
    ask = new_book()
    ask.add_order("sell", "99", "1", order_id="s")
    state = bid.export_state()
    state["orders"].append(dict(ask.export_state()["orders"][0], priority=5))
    twin = new_book()
    with pytest.raises(InvalidOrderError, match="crossed"):
        twin.restore_state(state)
    assert len(twin) == 0 and twin.get_snapshot()["asks"] == []
