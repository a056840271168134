"""Regressions found by the storage crash test: states the book reaches must restore exactly."""

from __future__ import annotations

from tests.command_streams import Clock, new_book


def test_iceberg_decremented_below_its_display_size_restores() -> None:
    book = new_book(clock=Clock())
    book.add_order(
        "buy", "99.5", "1.0", order_id="ice", user_id="carol", order_type="iceberg", displayed_quantity="0.4"
    )
    book.add_order("sell", "99.5", "0.7", order_id="s", user_id="carol", self_trade_prevention="decrement")
    twin = new_book(clock=Clock())
    twin.restore_state(book.export_state())
    assert twin.export_state() == book.export_state()


def test_trailing_reference_move_is_published_even_when_the_stop_stays() -> None:
    book = new_book(clock=Clock())
    moved: list[dict[str, object]] = []
    book.event_manager.subscribe("order_modified", lambda _e, d: moved.append(d))
    book.add_order("buy", "99.5", "1", order_id="b1", user_id="alice")
    book.add_order("sell", "99.5", "0.1", order_id="s1", user_id="bob")
    book.add_order(
        "sell",
        None,
        "1",
        order_id="ts",
        user_id="carol",
        order_type="trailing_stop",
        trail_value="2.5",
        trail_is_percent=True,
    )
    book.add_order("sell", "100", "0.1", order_id="s2", user_id="bob")
    book.add_order("buy", "100", "0.1", order_id="b2", user_id="alice")
    assert moved and moved[-1]["trail_reference_price"] == 100.0
    twin = new_book(clock=Clock())
    twin.restore_state(book.export_state())
    assert twin.export_state() == book.export_state()


def test_unfilled_orders_of_a_str_book_restore() -> None:
    """A book with ``number_format="str"`` exports a zero fill as "0.0"; restoring it must not read that as
    a quantity that has to be positive."""
    book = new_book(number_format="str")
    book.add_order("buy", "99.5", "1.2", order_id="a")
    book.add_order("sell", "101", "2", order_id="b")
    book.add_order("buy", "101", "0.5", order_id="c")  # b becomes partially filled
    state = book.export_state()
    assert {o["order_id"]: o["filled_quantity"] for o in state["orders"]} == {"a": "0.0", "b": "0.5"}
    restored = new_book(number_format="str")
    assert restored.restore_state(state) == 2
    assert restored.export_state() == state


def test_a_triggered_trailing_stop_keeps_its_stop_price() -> None:
    """Found by the risk tests: restore dropped the stop price of a trailing stop that had triggered and
    rests as a limit order."""
    book = new_book(clock=Clock())
    book.add_order("sell", "100", "1", order_id="m1", user_id="a")
    book.add_order("buy", "100", "1", order_id="t1", user_id="b")  # last price 100
    book.add_order(
        "buy", "99", "1", order_id="trail", user_id="c", order_type="trailing_stop", trail_value="1"
    )
    book.add_order("sell", "101", "1", order_id="m2", user_id="a")
    book.add_order("buy", "101", "1", order_id="t2", user_id="b")  # 101 reaches the stop: it triggers
    state = book.export_state()
    (trailing,) = [order for order in state["orders"] if order["order_id"] == "trail"]
    assert trailing["triggered"] and trailing["stop_price"] is not None
    twin = new_book(clock=Clock())
    twin.restore_state(state)
    assert twin.export_state() == state
