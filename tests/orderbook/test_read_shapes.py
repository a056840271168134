"""What readers of the original library rely on: ``get_order``/``get_orders`` give the open quantity as
``quantity`` (the total as ``original_quantity``), and attributes read back as they were given."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from manticore_orderbook import EventManager, EventType, OrderBook


@pytest.mark.parametrize(
    ("number_format", "three", "two", "one"),
    [
        ("float", 3.0, 2.0, 1.0),
        ("str", "3.00", "2.00", "1.00"),
        ("decimal", Decimal(3), Decimal(2), Decimal(1)),
    ],
)
def test_quantity_is_the_open_quantity_and_original_quantity_the_total(
    number_format: Any, three: object, two: object, one: object
) -> None:
    events = EventManager()
    added: list[dict[str, Any]] = []
    events.subscribe(EventType.ORDER_ADDED, lambda _t, data: added.append(data))
    book = OrderBook(
        "X/Y", event_manager=events, number_format=number_format, tick_size="0.01", lot_size="0.01"
    )
    book.add_order(side="sell", price="10", quantity="3", order_id="s", user_id="alice")
    book.add_order(side="buy", price="10", quantity="1", order_id="b", user_id="bob")
    order = book.get_order("s")
    assert order is not None
    assert order["quantity"] == two and order["remaining_quantity"] == two
    assert order["original_quantity"] == three and order["filled_quantity"] == one
    assert list(order)[4:6] == ["quantity", "original_quantity"]
    assert book.get_orders() == [order]
    assert book.get_orders(side="sell", user_id="alice") == [order]
    # a modify sets a new total; quantity stays what is open
    assert book.modify_order("s", new_quantity="2.5")
    modified = book.get_order("s")
    assert modified is not None
    assert modified["original_quantity"] == book.get_order("s")["original_quantity"]  # type: ignore[index]
    assert Decimal(str(modified["original_quantity"])) == Decimal("2.5")
    assert Decimal(str(modified["quantity"])) == Decimal("1.5")
    # event payloads keep their documented shape: quantity is the total there
    assert added[0]["quantity"] == three and "original_quantity" not in added[0]


def test_a_read_order_added_back_restores_the_open_quantity() -> None:
    """The restore loop users of the original wrote: feed each read order's quantity to add_order."""
    book = OrderBook("X/Y", number_format="str", tick_size="0.01", lot_size="0.001")
    book.add_order(side="buy", price="100", quantity="1", order_id="b1", user_id="u1")
    book.add_order(side="buy", price="99", quantity="2", order_id="b2", user_id="u1")
    book.add_order(side="sell", price="100", quantity="0.4", order_id="s1", user_id="u2")
    again = OrderBook("X/Y", number_format="str", tick_size="0.01", lot_size="0.001")
    for order in sorted(book.get_orders(), key=lambda o: o["timestamp"]):
        again.add_order(
            order_id=order["order_id"],
            side=order["side"],
            price=order["price"],
            quantity=order["quantity"],
            user_id=order["user_id"],
        )
    assert again.get_snapshot()["bids"] == book.get_snapshot()["bids"]
    assert again.get_order("b1")["quantity"] == "0.600"  # type: ignore[index]


@pytest.mark.parametrize(
    ("given", "exact"),
    [
        (0.001, Decimal("0.001")),
        (0.0007, Decimal("0.0007")),
        (-0.0001, Decimal("-0.0001")),
        ("0.0020", Decimal("0.0020")),
        (Decimal("0.003"), Decimal("0.003")),
        (0, Decimal(0)),
    ],
)
def test_fee_rates_read_back_as_given(given: Any, exact: Decimal) -> None:
    book = OrderBook("X/Y", maker_fee_rate=given, taker_fee_rate=given)
    assert book.maker_fee_rate == given and type(book.maker_fee_rate) is type(given)
    assert book.taker_fee_rate == given and type(book.taker_fee_rate) is type(given)
    assert book.fee_rates == (exact, exact)
    assert all(type(rate) is Decimal for rate in book.fee_rates)


def test_default_fee_rates_are_floats_and_fees_use_the_exact_rate() -> None:
    plain = OrderBook("X/Y")
    assert plain.maker_fee_rate == 0.0 and type(plain.maker_fee_rate) is float
    trades: list[dict[str, Any]] = []
    book = OrderBook("X/Y", number_format="str", maker_fee_rate=0.001, taker_fee_rate=0.002, tick_size="0.01")
    book.event_manager.subscribe(EventType.TRADE_EXECUTED, lambda _t, data: trades.append(data))
    book.add_order(side="sell", price="100", quantity="3", order_id="s")
    book.add_order(side="buy", price="100", quantity="3", order_id="b")
    assert Decimal(trades[0]["maker_fee"]) == Decimal("0.3")  # 300 x 0.001, exactly
    assert Decimal(trades[0]["taker_fee"]) == Decimal("0.6")
    assert Decimal(trades[0]["maker_fee_rate"]) == Decimal("0.001")


def test_fee_rates_cannot_be_reassigned_behind_the_fee_computation() -> None:
    book = OrderBook("X/Y", maker_fee_rate=0.001)
    with pytest.raises(AttributeError):
        book.maker_fee_rate = 0.5  # type: ignore[misc]
