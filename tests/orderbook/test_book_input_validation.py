"""Bad input (issue section 4): a clear ValueError subclass, and a rejected command changes nothing.

"Nothing" means: the snapshot, the resting orders, ``book.sequence``, the event stream, the trade history,
and even the next generated order id are exactly what they would be had the command never been sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from manticore_orderbook import InvalidOrderError, OrderBook, OrderBookError

from .support import FakeClock, make_book, state_of

NOW = 1_000.0

BAD_ADD_ORDERS: dict[str, dict[str, Any]] = {
    "price_off_grid": {"price": "10.001"},
    "price_off_grid_float": {"price": 10.005},
    "price_nan": {"price": float("nan")},
    "price_nan_str": {"price": "nan"},
    "price_nan_decimal": {"price": Decimal("NaN")},
    "price_inf": {"price": float("inf")},
    "price_minus_inf": {"price": "-inf"},
    "price_infinity_decimal": {"price": Decimal("Infinity")},
    "price_negative_str": {"price": "-1"},
    "price_negative": {"price": -1},
    "price_zero": {"price": 0},
    "price_zero_str": {"price": "0.00"},
    "price_absurd": {"price": 1e30},
    "price_absurd_str": {"price": "1e30"},
    "price_bool": {"price": True},
    "price_list": {"price": []},
    "price_dict": {"price": {}},
    "price_text": {"price": "ten"},
    "price_empty": {"price": ""},
    "price_bytes": {"price": b"10"},
    "quantity_none": {"quantity": None},
    "quantity_zero": {"quantity": 0},
    "quantity_negative_str": {"quantity": "-1"},
    "quantity_negative": {"quantity": -0.5},
    "quantity_absurd": {"quantity": 1e30},
    "quantity_nan": {"quantity": float("nan")},
    "quantity_inf": {"quantity": float("inf")},
    "quantity_bool": {"quantity": True},
    "quantity_list": {"quantity": []},
    "quantity_off_grid": {"quantity": "0.0001"},
    "quantity_float_sum_off_grid": {"quantity": 0.1 + 0.2},
    "quantity_text": {"quantity": "one"},
    "side_unknown": {"side": "hold"},
    "side_empty": {"side": ""},
    "side_none": {"side": None},
    "side_int": {"side": 1},
    "side_list": {"side": []},
    "side_typo": {"side": "buyy"},
    "type_unknown": {"order_type": "LIMITED"},
    "type_empty": {"order_type": ""},
    "type_int": {"order_type": 5},
    "tif_unknown": {"time_in_force": "DAY"},
    "tif_empty": {"time_in_force": ""},
    "tif_int": {"time_in_force": 1},
    "gtd_without_expiry": {"time_in_force": "GTD"},
    "gtd_expiry_in_the_past": {"time_in_force": "GTD", "expiry_time": NOW - 1},
    "gtd_expiry_now": {"time_in_force": "GTD", "expiry_time": NOW},
    "expiry_in_the_past_without_tif": {"expiry_time": NOW - 10},
    "expiry_with_gtc": {"time_in_force": "GTC", "expiry_time": NOW + 10},
    "expiry_with_ioc": {"time_in_force": "IOC", "expiry_time": NOW + 10},
    "expiry_nan": {"expiry_time": float("nan")},
    "expiry_inf": {"expiry_time": float("inf")},
    "expiry_text": {"expiry_time": "tomorrow"},
    "expiry_bool": {"expiry_time": True},
    "order_id_int": {"order_id": 123},
    "order_id_empty": {"order_id": ""},
    "order_id_list": {"order_id": []},
    "order_id_bytes": {"order_id": b"abc"},
    "user_id_list": {"user_id": []},
    "stop_price_on_limit": {"order_type": "LIMIT", "stop_price": 11},
    "stop_limit_without_stop": {"order_type": "STOP_LIMIT"},
    "stop_market_without_stop": {"order_type": "STOP_MARKET", "price": None},
    "stop_price_off_grid": {"stop_price": "11.001"},
    "stop_price_negative": {"stop_price": -11},
    "trail_on_limit": {"order_type": "LIMIT", "trail_value": 1},
    "trail_percent_zero": {
        "order_type": "TRAILING_STOP",
        "price": None,
        "trail_value": 0,
        "trail_is_percent": True,
    },
    "trail_percent_hundred": {
        "order_type": "TRAILING_STOP",
        "price": None,
        "trail_value": 100,
        "trail_is_percent": True,
    },
    "trail_percent_negative": {
        "order_type": "TRAILING_STOP",
        "price": None,
        "trail_value": -5,
        "trail_is_percent": True,
    },
    "trail_absolute_off_grid": {"order_type": "TRAILING_STOP", "price": None, "trail_value": "0.001"},
    "trail_nan": {"order_type": "TRAILING_STOP", "price": None, "trail_value": "nan"},
    "price_on_market": {"order_type": "MARKET"},
    "limit_without_price": {"order_type": "LIMIT", "price": None},
    "post_only_without_price": {"order_type": "POST_ONLY", "price": None},
    "market_gtd": {"price": None, "time_in_force": "GTD", "expiry_time": NOW + 10},
    "displayed_above_quantity": {"displayed_quantity": 2},
    "displayed_zero": {"displayed_quantity": 0},
    "displayed_off_grid": {"displayed_quantity": "0.0001"},
    "displayed_on_market": {"price": None, "order_type": "MARKET", "displayed_quantity": 1},
    "stp_unknown": {"self_trade_prevention": "bogus"},
}


def twin_books() -> tuple[Any, Any]:
    """Two identical books (same clock, same history), one of which will receive a bad command."""
    made = []
    for _ in range(2):
        book, rec, _ = make_book(clock=FakeClock(NOW))
        book.add_order("buy", 9, 1, user_id="alice")
        book.add_order("sell", 12, 2, user_id="bob")
        book.add_order("sell", 11, 1, user_id="bob")
        book.add_order("buy", 11, 0.5, user_id="carol")  # a trade, so there is history
        book.add_order("buy", None, 1, stop_price=15)  # a pending stop
        made.append((book, rec))
    return made[0], made[1]


def assert_unchanged_by(command: Any) -> InvalidOrderError:
    (book, rec), (twin, twin_rec) = twin_books()
    before = state_of(book)
    events = list(rec.events)
    with pytest.raises(ValueError) as raised:
        command(book)
    assert isinstance(raised.value, OrderBookError), f"{type(raised.value).__name__} is not an OrderBookError"
    assert str(raised.value)
    assert state_of(book) == before
    assert rec.events == events
    # the next command behaves exactly as on the twin that never saw the bad one (ids, sequence, events)
    assert book.add_order("buy", 10, 1) == twin.add_order("buy", 10, 1)
    assert rec.events[len(events) :] == twin_rec.events[len(events) :]
    assert isinstance(raised.value, InvalidOrderError)
    return raised.value


@pytest.mark.parametrize("bad", list(BAD_ADD_ORDERS.values()), ids=list(BAD_ADD_ORDERS))
def test_bad_add_order_is_rejected_and_changes_nothing(bad: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"side": "buy", "price": 10, "quantity": 1}
    kwargs.update(bad)
    assert_unchanged_by(lambda book: book.add_order(**kwargs))


@pytest.mark.parametrize("bad", list(BAD_ADD_ORDERS.values()), ids=list(BAD_ADD_ORDERS))
def test_batch_with_one_bad_item_applies_nothing(bad: dict[str, Any]) -> None:
    item: dict[str, Any] = {"side": "buy", "price": 10, "quantity": 1}
    item.update(bad)
    good_before = {"side": "sell", "price": 11, "quantity": 1}  # would trade
    good_after = {"side": "buy", "price": 8, "quantity": 1, "order_id": "fine"}
    assert_unchanged_by(lambda book: book.batch_add_orders([good_before, item, good_after]))


@pytest.mark.parametrize(
    "batch",
    [
        [{"side": "buy", "price": 10, "quantity": 1, "order_id": "x"}] * 2,
        [{"side": "buy", "price": 10, "quantity": 1}, "not a mapping"],
        [{"side": "buy", "price": 10, "quantity": 1, "qty": 3}],
        [{"side": "buy", "price": 10}],
    ],
    ids=["duplicate_ids_in_batch", "not_a_mapping", "unknown_field", "missing_quantity"],
)
def test_invalid_batches_apply_nothing(batch: list[Any]) -> None:
    assert_unchanged_by(lambda book: book.batch_add_orders(batch))


def test_batch_reusing_a_live_id_applies_nothing() -> None:
    def command(book: OrderBook) -> None:
        live = book.get_orders()[0]["order_id"]
        book.batch_add_orders(
            [
                {"side": "buy", "price": 10, "quantity": 1},
                {"side": "buy", "price": 10, "quantity": 1, "order_id": live},
            ]
        )

    assert_unchanged_by(command)


BAD_MODIFIES: dict[str, dict[str, Any]] = {
    "price_off_grid": {"new_price": "9.001"},
    "price_nan": {"new_price": float("nan")},
    "price_zero": {"new_price": 0},
    "price_negative": {"new_price": "-9"},
    "price_bool": {"new_price": True},
    "price_list": {"new_price": []},
    "price_absurd": {"new_price": 1e30},
    "quantity_zero": {"new_quantity": 0},
    "quantity_negative": {"new_quantity": -1},
    "quantity_nan": {"new_quantity": "nan"},
    "quantity_inf": {"new_quantity": float("inf")},
    "quantity_off_grid": {"new_quantity": "0.0001"},
    "quantity_text": {"new_quantity": "lots"},
    "expiry_on_gtc": {"new_expiry_time": NOW + 100},
}


@pytest.mark.parametrize("bad", list(BAD_MODIFIES.values()), ids=list(BAD_MODIFIES))
def test_bad_modify_is_rejected_and_changes_nothing(bad: dict[str, Any]) -> None:
    def command(book: OrderBook) -> None:
        order_id = next(o["order_id"] for o in book.get_orders() if o["price"] == 9)
        book.modify_order(order_id, **bad)

    assert_unchanged_by(command)


@pytest.mark.parametrize("expiry", [NOW - 1, NOW, float("nan"), "soon"])
def test_bad_gtd_expiry_on_modify_is_rejected(expiry: object) -> None:
    book, _, _ = make_book(clock=FakeClock(NOW))
    book.add_order("buy", 10, 1, order_id="g", expiry_time=NOW + 10)
    before = state_of(book)
    with pytest.raises(InvalidOrderError):
        book.modify_order("g", new_expiry_time=expiry)  # type: ignore[arg-type]
    assert state_of(book) == before


@pytest.mark.parametrize("depth", [-1, 1.5, "5", True])
def test_bad_snapshot_depth_is_rejected(depth: object) -> None:
    book, _, _ = make_book()
    with pytest.raises(ValueError):
        book.get_snapshot(depth=depth)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tick_size": "0"},
        {"tick_size": "-0.01"},
        {"lot_size": "nan"},
        {"lot_size": "abc"},
        {"number_format": "hex"},
        {"max_trade_history": -1},
        {"self_trade_prevention": "maybe"},
    ],
)
def test_bad_book_configuration_is_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OrderBook("X", **kwargs)


def test_empty_symbol_is_rejected() -> None:
    with pytest.raises(ValueError):
        OrderBook("")


def test_errors_are_catchable_as_value_error_and_order_book_error() -> None:
    book, _, _ = make_book()
    with pytest.raises(ValueError):
        book.add_order("buy", "nan", 1)
    with pytest.raises(OrderBookError):
        book.add_order("buy", "nan", 1)
