"""A price level's own payload templates: the events built from them are the events built without them.

The book keeps, per price level, copies of its side's PRICE_LEVEL, maker ORDER_FILLED and ORDER_ADDED
templates with the level's price already set (``PriceLevel.payload``, ``fill_payload``,
``added_payload``; docs/performance.md, session 19). These tests check that the payloads built from
them are complete and equal to those built from the side templates, that a new ``symbol`` reaches
them, and that what a handler does to a delivered payload never reaches a later one.
"""

from __future__ import annotations

from typing import Any

import pytest

from manticore_orderbook import EventType, OrderBook
from manticore_orderbook.payloads import (
    ORDER_ADDED_KEYS,
    ORDER_CANCELLED_KEYS,
    ORDER_FILLED_KEYS,
    PRICE_LEVEL_KEYS,
)

from .support import FakeClock

FORMATS: dict[str, dict[str, Any]] = {
    "float": {},
    "float, fees": {"maker_fee_rate": "0.001", "taker_fee_rate": "0.002"},
    "str": {"number_format": "str"},
    "decimal": {"number_format": "decimal"},
}

#: Keys whose values differ between two otherwise equal events of different commands.
_PER_EVENT = {"sequence", "priority", "timestamp", "order_timestamp", "order_id", "trade_id"}


def _book(
    fmt: dict[str, Any], symbol: str = "LT/USD"
) -> tuple[OrderBook, list[tuple[EventType, dict[str, Any]]]]:
    book = OrderBook(symbol, clock=FakeClock(), tick_size="0.01", lot_size="0.001", **fmt)
    events: list[tuple[EventType, dict[str, Any]]] = []
    book.event_manager.subscribe_all(lambda event_type, data: events.append((event_type, dict(data))))
    return book, events


def _of(events: list[tuple[EventType, dict[str, Any]]], event_type: EventType) -> list[dict[str, Any]]:
    return [data for kind, data in events if kind is event_type]


def _same_but_per_event(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for key in a:
        if key not in _PER_EVENT:
            assert a[key] == b[key], key
            assert type(a[key]) is type(b[key]), key


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
def test_an_order_joining_a_live_level_is_announced_as_one_opening_it(fmt: dict[str, Any]) -> None:
    joined, joined_events = _book(fmt)
    joined.add_order("buy", "99.95", "0.5", order_id="first", user_id="u0")
    joined.add_order("buy", "99.95", "0.5", order_id="second", user_id="u0")  # the level's template made
    joined_events.clear()
    joined.add_order("buy", "99.95", "1.25", order_id="o", user_id="u1", client_order_id="c-1")
    opened, opened_events = _book(fmt)
    opened.add_order("buy", "99.95", "1.25", order_id="o", user_id="u1", client_order_id="c-1")

    added = _of(joined_events, EventType.ORDER_ADDED)
    reference = _of(opened_events, EventType.ORDER_ADDED)
    assert len(added) == len(reference) == 1
    assert list(added[0]) == list(ORDER_ADDED_KEYS)
    _same_but_per_event(added[0], reference[0])
    assert added[0]["order_id"] == "o"
    assert added[0]["client_order_id"] == "c-1"
    assert added[0]["price"] == joined.get_order("o")["price"]  # type: ignore[index]
    # the level's event reports the three orders
    (level,) = _of(joined_events, EventType.PRICE_LEVEL_CHANGED)
    assert list(level) == list(PRICE_LEVEL_KEYS)
    assert level["order_count"] == 3
    assert level["price"] == added[0]["price"]


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
def test_maker_fills_at_a_level_are_complete_and_priced_at_it(fmt: dict[str, Any]) -> None:
    book, events = _book(fmt)
    book.add_order("sell", "100.10", "0.4", order_id="m1", user_id="a", client_order_id="c-m1")
    book.add_order("sell", "100.10", "0.6", order_id="m2", user_id="b")
    book.add_order("sell", "100.20", "1.0", order_id="m3")
    book.add_order("buy", "100.10", "0.4", order_id="t1", user_id="t")  # m1's level template made
    events.clear()
    book.add_order("buy", "100.20", "1.2", order_id="t2", user_id="t", time_in_force="IOC")
    fills = [data for data in _of(events, EventType.ORDER_FILLED) if data["is_maker"]]
    assert [data["order_id"] for data in fills] == ["m2", "m3"]
    trades = _of(events, EventType.TRADE_EXECUTED)
    for fill, trade in zip(fills, trades, strict=True):
        assert list(fill) == list(ORDER_FILLED_KEYS)
        assert fill["price"] == fill["fill_price"] == trade["price"]
        assert fill["client_order_id"] is None  # m1's is not carried to the next maker at its level
        assert fill["side"] == "sell"
    assert fills[0]["price"] != fills[1]["price"]
    assert fills[0]["user_id"] == "b"
    assert fills[1]["user_id"] is None


def test_a_new_symbol_reaches_the_levels_templates() -> None:
    book, events = _book({}, symbol="OLD/USD")
    book.add_order("sell", "100.10", "1.0", order_id="m1")
    book.add_order("sell", "100.10", "1.0", order_id="m2")
    book.add_order("sell", "100.10", "1.0", order_id="m0")
    book.cancel_order("m0")  # the level's cancel template made (the level stays)
    book.add_order("buy", "100.10", "0.5", order_id="t0")  # every template of the level made
    book.symbol = "NEW/USD"
    events.clear()
    book.add_order("sell", "100.10", "1.0", order_id="m3")  # joins the level
    book.add_order("buy", "100.10", "0.5", order_id="t1")  # a maker fill and a level event
    book.cancel_order("m3")
    assert {kind for kind, _ in events} >= {
        EventType.ORDER_ADDED,
        EventType.ORDER_FILLED,
        EventType.TRADE_EXECUTED,
        EventType.PRICE_LEVEL_CHANGED,
        EventType.ORDER_CANCELLED,
    }
    assert {data["symbol"] for _, data in events} == {"NEW/USD"}


def test_what_a_handler_does_to_a_payload_reaches_no_later_payload() -> None:
    book = OrderBook("LT/USD", clock=FakeClock(), tick_size="0.01", lot_size="0.001")
    seen: list[tuple[EventType, dict[str, Any]]] = []

    def vandal(event_type: EventType, data: dict[str, Any]) -> None:
        seen.append((event_type, dict(data)))
        data["price"] = "spoiled"
        data["symbol"] = "spoiled"
        data["extra"] = 1
        data.pop("side", None)

    book.event_manager.subscribe_all(vandal)
    for n in range(3):
        book.add_order("buy", "99.90", "1.0", order_id=f"b{n}", user_id="u")
        book.add_order("sell", "100.00", "1.0", order_id=f"s{n}", user_id="v")
    book.add_order("sell", "99.90", "1.5", order_id="x", user_id="w")  # two maker fills at 99.90
    book.cancel_order("b2")
    keys = {
        EventType.ORDER_ADDED: ORDER_ADDED_KEYS,
        EventType.ORDER_FILLED: ORDER_FILLED_KEYS,
        EventType.PRICE_LEVEL_ADDED: PRICE_LEVEL_KEYS,
        EventType.PRICE_LEVEL_CHANGED: PRICE_LEVEL_KEYS,
    }
    for kind, data in seen:
        assert data["symbol"] == "LT/USD"
        assert data.get("price") in (99.9, 100.0, None)
        if kind in keys:
            assert list(data) == list(keys[kind])


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
def test_orders_cancelled_from_a_level_are_reported_in_full(fmt: dict[str, Any]) -> None:
    book, events = _book(fmt)
    book.add_order("sell", "100.30", "0.7", order_id="a", user_id="u1", client_order_id="c-a")
    book.add_order("sell", "100.30", "0.9", order_id="b")
    book.add_order("buy", "100.30", "0.2", order_id="t", user_id="t")  # a trades 0.2
    added = {data["order_id"]: data for data in _of(events, EventType.ORDER_ADDED)}
    events.clear()
    book.cancel_order("a")
    book.cancel_order("b")
    cancelled = _of(events, EventType.ORDER_CANCELLED)
    assert [data["order_id"] for data in cancelled] == ["a", "b"]
    for data in cancelled:
        assert list(data) == list(ORDER_CANCELLED_KEYS)
        before = added[data["order_id"]]
        for key in ("symbol", "side", "price", "quantity", "order_type", "time_in_force", "user_id"):
            assert data[key] == before[key], key
            assert type(data[key]) is type(before[key]), key
        assert data["status"] == "cancelled"
        assert data["reason"] == "user"
        assert data["remaining_quantity"] == data["cancelled_quantity"] == data["visible_quantity"]
    a, b = cancelled
    assert a["client_order_id"] == "c-a"
    assert b["client_order_id"] is None  # a's is not carried to the next order cancelled at the level
    assert b["user_id"] is None
    assert float(b["filled_quantity"]) == 0
    assert b["cancelled_quantity"] == b["quantity"]
    assert float(a["filled_quantity"]) != 0
