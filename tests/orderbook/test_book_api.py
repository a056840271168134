"""API shape (issue section 2, DESIGN.md section 3): names, spellings, copies, snapshots, batches, formats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

import manticore_orderbook
from manticore_orderbook import (
    DuplicateOrderIdError,
    EventManager,
    EventType,
    InvalidOrderError,
    Order,
    OrderBook,
    OrderBookError,
    OrderNotFoundError,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)

from .support import Recorder, dec, levels, make_book, order_of, state_of


def test_public_names_are_exported() -> None:
    for name in (
        "OrderBook",
        "EventManager",
        "EventType",
        "Side",
        "OrderType",
        "TimeInForce",
        "Order",
        "Trade",
        "OrderBookError",
    ):
        assert hasattr(manticore_orderbook, name), name
    assert Order is not None and Trade is not None


def test_exception_hierarchy() -> None:
    assert issubclass(InvalidOrderError, OrderBookError)
    assert issubclass(InvalidOrderError, ValueError)
    assert issubclass(DuplicateOrderIdError, InvalidOrderError)
    assert issubclass(OrderNotFoundError, OrderBookError)
    assert issubclass(OrderNotFoundError, KeyError)


def test_the_integration_guide_snippet_runs_unchanged() -> None:
    event_manager = EventManager()
    orderbook = OrderBook(symbol="BTC/USD", event_manager=event_manager)
    saved: list[dict[str, Any]] = []
    fills: list[tuple[str, Any]] = []

    def handle_order_event(event_type: EventType, data: dict[str, Any]) -> None:
        if event_type == EventType.ORDER_ADDED:
            saved.append(data)
        elif event_type == EventType.ORDER_FILLED:
            fills.append((data["order_id"], data["filled_quantity"]))

    event_manager.subscribe(EventType.ORDER_ADDED, handle_order_event)
    event_manager.subscribe(EventType.ORDER_FILLED, handle_order_event)
    order_id = orderbook.add_order(
        side="buy", price=9000.0, quantity=1.0, user_id="alice", time_in_force="GTC"
    )
    assert [d["order_id"] for d in saved] == [order_id]
    orderbook.add_order(side="sell", price=9000.0, quantity=0.25, user_id="bob")
    assert (order_id, 0.25) in fills
    assert orderbook.cancel_order(order_id) is True
    assert orderbook.cancel_order(order_id) is False
    json.dumps(orderbook.get_snapshot(depth=10))


def test_book_without_a_manager_has_its_own() -> None:
    book = OrderBook("X")
    recorder = Recorder()
    book.event_manager.subscribe_all(recorder)
    book.add_order("buy", 1, 1)
    assert recorder.types()[0] is EventType.ORDER_ADDED


# ---------------------------------------------------------------------------- spellings


@pytest.mark.parametrize("side", ["buy", "BUY", "Buy", "bUy", " buy ", Side.BUY])
def test_side_accepts_any_case_and_the_enum(side: object) -> None:
    book, _, _ = make_book()
    order_id = book.add_order(side, 10, 1)  # type: ignore[arg-type]
    assert order_of(book, order_id)["side"] == "buy"


@pytest.mark.parametrize("tif", ["gtc", "GTC", "Gtc", TimeInForce.GTC])
def test_time_in_force_accepts_any_case_and_the_enum(tif: object) -> None:
    book, _, _ = make_book()
    order_id = book.add_order("sell", 10, 1, time_in_force=tif)  # type: ignore[arg-type]
    assert order_of(book, order_id)["time_in_force"] == "GTC"


@pytest.mark.parametrize("tif", ["ioc", "Ioc", TimeInForce.IOC, "fok", "FOK", TimeInForce.FOK])
def test_immediate_time_in_force_spellings_never_rest(tif: object) -> None:
    book, _, _ = make_book()
    order_id = book.add_order("sell", 10, 1, time_in_force=tif)  # type: ignore[arg-type]
    assert book.get_order(order_id) is None


@pytest.mark.parametrize(
    ("order_type", "kwargs"),
    [
        ("limit", {}),
        ("Limit", {}),
        (OrderType.LIMIT, {}),
        ("post_only", {}),
        ("POST_ONLY", {}),
        (OrderType.POST_ONLY, {}),
        ("iceberg", {"displayed_quantity": 1}),
        ("Iceberg", {"displayed_quantity": 1}),
        ("stop_limit", {"stop_price": 50}),
        (OrderType.STOP_LIMIT, {"stop_price": 50}),
    ],
)
def test_order_type_accepts_any_case_and_the_enum(order_type: object, kwargs: dict[str, Any]) -> None:
    book, _, _ = make_book()
    order_id = book.add_order("buy", 10, 2, order_type=order_type, **kwargs)  # type: ignore[arg-type]
    order = book.get_order(order_id)
    assert order is not None
    expected = order_type.value if isinstance(order_type, OrderType) else str(order_type).upper()
    assert order["order_type"] == expected


@pytest.mark.parametrize("gtd", ["gtd", "GTD", TimeInForce.GTD])
def test_gtd_spellings(gtd: object) -> None:
    book, _, clock = make_book()
    order_id = book.add_order("buy", 10, 1, time_in_force=gtd, expiry_time=clock.now + 1)  # type: ignore[arg-type]
    assert order_of(book, order_id)["time_in_force"] == "GTD"


def test_market_order_spellings() -> None:
    for spelling in ("market", "MARKET", OrderType.MARKET):
        book, rec, _ = make_book()
        book.add_order("sell", 10, 1)
        book.add_order("buy", None, 1, order_type=spelling)
        assert len(rec.of(EventType.TRADE_EXECUTED)) == 1


# ---------------------------------------------------------------------------- copies and json


def test_get_order_returns_a_copy() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    before = state_of(book)
    order = book.get_order("a")
    assert order is not None
    order["price"] = 999
    order["remaining_quantity"] = 0
    order["order_id"] = "hacked"
    assert state_of(book) == before
    assert order_of(book, "a")["price"] == 10


def test_get_snapshot_returns_a_copy() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1)
    book.add_order("sell", 11, 1)
    snapshot = book.get_snapshot()
    snapshot["bids"][0]["quantity"] = 1000
    snapshot["bids"].append({"price": 9, "quantity": 1, "order_count": 1})
    snapshot["asks"].clear()
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]
    assert levels(book, "asks") == [(Decimal(11), Decimal(1), 1)]


def test_get_orders_and_trade_history_return_copies() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 2, order_id="a")
    book.add_order("sell", 10, 1)
    book.get_orders()[0]["remaining_quantity"] = 99
    book.get_trade_history()[0]["quantity"] = 99
    assert book.get_orders()[0]["remaining_quantity"] == 1
    assert book.get_trade_history()[0]["quantity"] == 1


def test_event_payload_mutation_by_a_handler_does_not_touch_the_book() -> None:
    book, _, _ = make_book()

    def vandal(event_type: EventType, data: dict[str, Any]) -> None:
        for key in list(data):
            data[key] = None

    book.event_manager.subscribe_all(vandal)
    book.add_order("buy", 10, 2, order_id="a")
    book.add_order("sell", 10, 1)
    order = book.get_order("a")
    assert order is not None and order["remaining_quantity"] == 1
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]


def test_snapshot_is_json_serialisable_and_complete() -> None:
    book, _, _ = make_book(symbol="BTC/USD")
    book.add_order("buy", 10, 1)
    book.add_order("sell", 11, 1)
    snapshot = book.get_snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert {"symbol", "timestamp", "sequence", "bids", "asks"} <= snapshot.keys()
    assert snapshot["symbol"] == "BTC/USD"
    assert snapshot["sequence"] == book.sequence
    for level in snapshot["bids"] + snapshot["asks"]:
        assert set(level) == {"price", "quantity", "order_count"}


@pytest.mark.parametrize("number_format", ["float", "str"])
def test_orders_and_trades_are_json_serialisable(number_format: str) -> None:
    book, rec, _ = make_book(number_format=number_format, maker_fee_rate="0.001")
    book.add_order("buy", 10, 2, order_id="a", user_id="alice")
    book.add_order("sell", 10, 1, user_id=7)
    json.dumps(book.get_orders())
    json.dumps(book.get_trade_history())
    json.dumps(book.get_statistics())
    json.dumps([d for _, d in rec.events])


# ---------------------------------------------------------------------------- snapshot order and depth


def test_snapshot_bids_descending_asks_ascending() -> None:
    book, _, _ = make_book()
    for price in (10, 12, 11, 9):
        book.add_order("buy", price, 1)
    for price in (15, 13, 14, 16):
        book.add_order("sell", price, 1)
    assert [p for p, _, _ in levels(book, "bids")] == [12, 11, 10, 9]
    assert [p for p, _, _ in levels(book, "asks")] == [13, 14, 15, 16]


def test_snapshot_levels_aggregate_orders() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1)
    book.add_order("buy", 10, 2.5)
    book.add_order("buy", 9, 4)
    assert levels(book, "bids") == [(Decimal(10), Decimal("3.5"), 2), (Decimal(9), Decimal(4), 1)]


@pytest.mark.parametrize(("depth", "expected"), [(None, 5), (0, 5), (1, 1), (3, 3), (10, 5)])
def test_snapshot_depth_limits_each_side(depth: int | None, expected: int) -> None:
    book, _, _ = make_book()
    for i in range(5):
        book.add_order("buy", 10 - i, 1)
        book.add_order("sell", 20 + i, 1)
    snapshot = book.get_snapshot(depth=depth)
    assert len(snapshot["bids"]) == len(snapshot["asks"]) == expected
    assert dec(snapshot["bids"][0]["price"]) == 10
    assert dec(snapshot["asks"][0]["price"]) == 20


def test_snapshot_of_an_empty_book() -> None:
    book, _, _ = make_book()
    snapshot = book.get_snapshot()
    assert snapshot["bids"] == [] and snapshot["asks"] == []
    assert snapshot["sequence"] == 0


def test_snapshot_hides_stops_and_iceberg_reserve() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 10, displayed_quantity=1)
    book.add_order("buy", 10, 1, stop_price=50)
    assert levels(book, "bids") == [(Decimal(10), Decimal(1), 1)]


def test_get_orders_lists_live_orders_in_priority_order() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="b10")
    book.add_order("buy", 11, 1, order_id="b11", user_id="alice")
    book.add_order("buy", 11, 1, order_id="b11x")
    book.add_order("sell", 13, 1, order_id="a13")
    book.add_order("sell", 12, 1, order_id="a12", user_id="alice")
    assert [o["order_id"] for o in book.get_orders()] == ["b11", "b11x", "b10", "a12", "a13"]
    assert [o["order_id"] for o in book.get_orders(side="sell")] == ["a12", "a13"]
    assert [o["order_id"] for o in book.get_orders(user_id="alice")] == ["b11", "a12"]


def test_top_of_book_queries() -> None:
    book, _, _ = make_book()
    assert book.get_best_bid() is None and book.get_best_ask() is None and book.get_spread() is None
    book.add_order("buy", "10.10", 1)
    book.add_order("sell", "10.30", 1)
    assert book.get_best_bid() == 10.1
    assert book.get_best_ask() == 10.3
    assert dec(book.get_spread()) == Decimal("0.2")
    assert dec(book.get_mid_price()) == Decimal("10.2")


def test_len_and_contains() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    book.add_order("buy", None, 1, order_id="stop", stop_price=50)
    assert len(book) == 2
    assert "a" in book and "stop" in book and "zzz" not in book


# ---------------------------------------------------------------------------- batches


def test_batch_add_returns_ids_in_order_and_applies_each() -> None:
    book, rec, _ = make_book()
    ids = book.batch_add_orders(
        [
            {"side": "sell", "price": 10, "quantity": 1, "order_id": "s"},
            {"side": "buy", "price": 10, "quantity": 1},
            {"side": "BUY", "price": 9, "quantity": 2, "time_in_force": "gtc"},
        ]
    )
    assert ids[0] == "s" and len(ids) == 3 and len(set(ids)) == 3
    assert [d["maker_order_id"] for d in rec.of(EventType.TRADE_EXECUTED)] == ["s"]
    assert [o["order_id"] for o in book.get_orders()] == [ids[2]]


def test_empty_batch_does_nothing() -> None:
    book, rec, _ = make_book()
    assert book.batch_add_orders([]) == []
    assert rec.events == []


def test_batch_cancel_returns_a_dict() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1, order_id="a")
    result = book.batch_cancel_orders(["a", "b"])
    assert result == {"a": True, "b": False}


# ---------------------------------------------------------------------------- number formats


def test_str_format_outputs_exact_strings() -> None:
    book, rec, _ = make_book(number_format="str", tick_size="0.01", lot_size="0.001", taker_fee_rate="0.001")
    book.add_order("sell", "0.1", "0.3", order_id="s")
    book.add_order("buy", "0.1", "0.1", order_id="b")
    order = book.get_order("s")
    assert order is not None
    assert order["price"] == "0.10"
    assert order["original_quantity"] == "0.300"
    assert order["quantity"] == order["remaining_quantity"] == "0.200"
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    assert trade["price"] == "0.10"
    assert trade["quantity"] == "0.100"
    assert Decimal(trade["taker_fee"]) == Decimal("0.00001")
    assert levels(book, "asks") == [(Decimal("0.1"), Decimal("0.2"), 1)]
    assert book.get_snapshot()["asks"][0]["price"] == "0.10"


def test_decimal_format_outputs_exact_decimals() -> None:
    book, rec, _ = make_book(number_format="decimal", tick_size="0.01", lot_size="0.001")
    book.add_order("sell", 0.1, 0.3, order_id="s")
    book.add_order("buy", 0.1, 0.1)
    order = book.get_order("s")
    assert order is not None
    assert isinstance(order["price"], Decimal)
    assert order["price"] == Decimal("0.1")
    assert order["remaining_quantity"] == Decimal("0.2")
    trade = rec.of(EventType.TRADE_EXECUTED)[0]
    assert trade["quantity"] == Decimal("0.1")


def test_float_format_outputs_floats() -> None:
    book, _, _ = make_book()
    book.add_order("sell", "0.10", "0.300", order_id="s")
    order = book.get_order("s")
    assert order is not None
    assert order["price"] == 0.1 and isinstance(order["price"], float)
    assert order["quantity"] == 0.3 and isinstance(order["quantity"], float)


# ---------------------------------------------------------------------------- clear and statistics


def test_clear_removes_everything_and_publishes_book_cleared() -> None:
    book, rec, _ = make_book()
    book.add_order("buy", 10, 1)
    book.add_order("sell", 11, 1)
    book.add_order("buy", None, 1, stop_price=50)
    rec.clear()
    book.clear()
    assert rec.types() == [EventType.BOOK_CLEARED]
    assert len(book) == 0
    assert book.get_snapshot()["bids"] == [] and book.get_snapshot()["asks"] == []
    book.check_invariants()
    book.add_order("buy", 10, 1, order_id="again")
    assert book.get_order("again") is not None


def test_statistics_report_the_book() -> None:
    book, _, _ = make_book()
    book.add_order("buy", 10, 1)
    book.add_order("buy", 9, 1)
    book.add_order("sell", 12, 1)
    book.add_order("buy", None, 1, stop_price=50)
    stats = book.get_statistics()
    json.dumps(stats)
    assert stats["bid_levels"] == 2
    assert stats["ask_levels"] == 1
    assert stats["best_bid"] == 10 and stats["best_ask"] == 12
    assert stats["sequence"] == book.sequence
