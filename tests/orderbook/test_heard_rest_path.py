"""A heard GTC limit order that rests: add_order's own ORDER_ADDED equals the one ``_execute`` builds.

``add_order`` builds the ORDER_ADDED of a GTC limit order that does not cross itself (docs/performance.md,
session 24 (h1)); every other add with a heard ORDER_ADDED, and every add while a change recorder is
registered, goes through ``_execute``. A book with a change recorder is therefore the reference: fed
the same commands, both books must deliver the same events, payload for payload (keys in order,
values and their types), and answer the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from manticore_orderbook import EventType, OrderBook

from .support import FakeClock

_FORMATS: list[dict[str, Any]] = [
    {},
    {"maker_fee_rate": "0.001", "taker_fee_rate": "0.002"},
    {"number_format": "str"},
    {"number_format": "decimal"},
    {"tick_size": "0.5", "lot_size": "0.25"},
    {"self_trade_prevention": "cancel_oldest"},
]

#: One command: (kind, buy, price step, quantity step, user, client order id?, stp?, time in force)
_Command = tuple[str, bool, int, int, int, bool, bool, str]

_COMMANDS = st.tuples(
    st.sampled_from(["add", "add", "add", "market", "cancel"]),
    st.booleans(),
    st.integers(0, 6),
    st.integers(1, 4),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["GTC", "GTC", "IOC", None]),
)


def _book(fmt: dict[str, Any]) -> tuple[OrderBook, list[tuple[EventType, list[tuple[str, Any, type]]]]]:
    book = OrderBook("HR/USD", clock=FakeClock(), **fmt)
    seen: list[tuple[EventType, list[tuple[str, Any, type]]]] = []
    book.event_manager.subscribe_all(
        lambda event_type, data: seen.append((event_type, [(k, v, type(v)) for k, v in data.items()]))
    )
    return book, seen


def _run(book: OrderBook, commands: list[_Command]) -> list[Any]:
    answers: list[Any] = []
    for n, (kind, buy, price_step, qty_step, user, client, stp, tif) in enumerate(commands):
        side = "buy" if buy else "sell"
        # bids 100-103, asks 102-105: some adds cross, most rest at live, kept or new levels
        price = (100 if buy else 102) + price_step * 0.5
        quantity = qty_step * 0.25
        try:
            if kind == "cancel":
                live = sorted(book._orders)
                answers.append(book.cancel_order(live[price_step % len(live)]) if live else None)
                continue
            answers.append(
                book.add_order(
                    side,
                    None if kind == "market" else price,
                    quantity,
                    order_id=f"o{n}",
                    user_id=f"u{user}" if user else None,
                    client_order_id=f"c{n}" if client else None,
                    self_trade_prevention="decrement" if stp else None,
                    time_in_force="IOC" if kind == "market" else tif,
                )
            )
        except ValueError as exc:
            answers.append(str(exc))
    return answers


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(_FORMATS), commands=st.lists(_COMMANDS, min_size=1, max_size=30))
@example(fmt={}, commands=[("add", True, 0, 1, 1, False, False, "GTC")] * 3)
@example(
    fmt={"number_format": "str"},
    commands=[
        ("add", False, 3, 2, 1, True, True, None),
        ("add", False, 3, 1, 2, False, False, "GTC"),
        ("cancel", False, 0, 1, 0, False, False, None),
        ("cancel", False, 0, 1, 0, False, False, None),
        ("add", False, 3, 4, 0, False, True, "GTC"),
    ],
)
def test_a_heard_resting_add_publishes_what_execute_publishes(
    fmt: dict[str, Any], commands: list[_Command]
) -> None:
    """Random adds (GTC, IOC, market; users, client order ids, self-trade prevention) and cancels,
    under six number formats and fee set-ups: the inline path's events and answers are the reference's."""
    inline, inline_seen = _book(fmt)
    reference, reference_seen = _book(fmt)
    reference.add_change_recorder(lambda *args: None)  # every add through _execute
    assert _run(inline, commands) == _run(reference, commands)
    assert inline_seen == reference_seen
    assert inline.get_snapshot(depth=None) == reference.get_snapshot(depth=None)
    assert inline.get_orders() == reference.get_orders()
    assert inline.sequence == reference.sequence


@pytest.mark.pure_only  # patches a method of the class
def test_a_heard_resting_add_does_not_call_execute(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path the test above compares is the one taken: a heard GTC limit add that rests (at a new
    level, then at the live one, with a client order id) never calls ``_execute``; one that crosses does."""
    book, seen = _book({})
    calls: list[str] = []
    execute = OrderBook._execute

    def counting(self: OrderBook, order: Any, now: float, announce: bool) -> None:
        calls.append(order.order_id)
        execute(self, order, now, announce)

    monkeypatch.setattr(OrderBook, "_execute", counting)
    book.add_order("buy", 100.0, 1.0, order_id="a")
    book.add_order("buy", 100.0, 2.0, order_id="b", client_order_id="mine")
    assert calls == []
    book.add_order("sell", 100.0, 1.0, order_id="c")
    assert calls == ["c"]
    added = [data for event_type, data in seen if event_type is EventType.ORDER_ADDED]
    assert [dict((k, v) for k, v, _ in data)["client_order_id"] for data in added] == [None, "mine", None]
