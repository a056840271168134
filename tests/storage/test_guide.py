"""The integration guide's storage code, as users wrote it, runs against StorageManager."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from manticore_orderbook import EventManager, EventType, OrderBook
from manticore_storage import StorageError, StorageManager
from manticore_storage import schema as tables


def _wire_guide_handlers(storage: StorageManager, event_manager: EventManager) -> None:
    """The guide's handlers, verbatim in behaviour."""

    def handle_order_event(event_type: EventType, data: dict[str, Any]) -> None:
        if event_type == EventType.ORDER_ADDED:
            storage.save_order(data)
        elif event_type == EventType.ORDER_MODIFIED:
            storage.update_order(data["order_id"], data)
        elif event_type == EventType.ORDER_CANCELLED:
            storage.mark_order_cancelled(data["order_id"])
        elif event_type == EventType.ORDER_FILLED:
            storage.update_order_fill(data["order_id"], data["filled_quantity"])

    def handle_trade_event(event_type: EventType, data: dict[str, Any]) -> None:
        storage.save_trade(data)

    event_manager.subscribe(EventType.ORDER_ADDED, handle_order_event)
    event_manager.subscribe(EventType.ORDER_MODIFIED, handle_order_event)
    event_manager.subscribe(EventType.ORDER_CANCELLED, handle_order_event)
    event_manager.subscribe(EventType.ORDER_FILLED, handle_order_event)
    event_manager.subscribe(EventType.TRADE_EXECUTED, handle_trade_event)


def _count(storage: StorageManager, table: Any) -> int:
    with storage.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_guide_handlers_and_restart_loop(storage: StorageManager) -> None:
    event_manager = EventManager()
    orderbook = OrderBook(symbol="BTC/USD", event_manager=event_manager)
    _wire_guide_handlers(storage, event_manager)
    errors: list[dict[str, Any]] = []
    event_manager.subscribe(EventType.ERROR, lambda _e, d: errors.append(d))

    orderbook.add_order(side="buy", price=9000.0, quantity=1.0, user_id="alice", order_id="b1")
    orderbook.add_order(side="buy", price=8990.0, quantity=2.0, user_id="alice", order_id="b2")
    orderbook.add_order(side="sell", price=9010.0, quantity=1.5, user_id="bob", order_id="s1")
    orderbook.add_order(side="sell", price=9000.0, quantity=0.4, user_id="bob", order_id="s2")  # fills b1
    orderbook.modify_order("b2", new_quantity=1.5)
    orderbook.cancel_order("s1")
    assert errors == []

    b1 = storage.get_order("b1")
    assert b1 is not None and b1["filled_quantity"] == Decimal("0.4") and b1["status"] == "partially_filled"
    assert storage.get_order("s1")["status"] == "cancelled"  # type: ignore[index]
    assert storage.get_order("b2")["quantity"] == Decimal("1.5")  # type: ignore[index]
    assert len(storage.get_trades("BTC/USD")) == 1

    # The guide's restart: a new book, fed the stored active orders sorted by timestamp.
    restarted = OrderBook(symbol="BTC/USD", event_manager=event_manager)
    active_orders = storage.get_active_orders(symbol="BTC/USD")
    for order in sorted(active_orders, key=lambda x: x["timestamp"]):
        restarted.add_order(
            order_id=order["order_id"],
            side=order["side"],
            price=order["price"],
            quantity=order["quantity"],
            time_in_force=order["time_in_force"],
            expiry_time=order["expiry_time"],
            user_id=order["user_id"],
            order_type=order["order_type"],
        )
    assert errors == []
    assert [o["order_id"] for o in restarted.get_orders()] == ["b1", "b2"]
    assert restarted.get_order("b1")["remaining_quantity"] == 0.6  # type: ignore[index]
    assert _count(storage, tables.orders) == 4, "the restart loop created duplicate rows"


def test_every_write_is_idempotent(storage: StorageManager) -> None:
    order = {"order_id": "x", "symbol": "S", "side": "buy", "price": "10", "quantity": "2", "timestamp": 1.0}
    trade = {"trade_id": "t1", "symbol": "S", "price": "10", "quantity": "1", "timestamp": 2.0}
    for _ in range(2):
        storage.save_order(order)
        storage.update_order_fill("x", "1")
        storage.save_trade(trade)
        storage.mark_order_cancelled("x")
    assert _count(storage, tables.orders) == 1 and _count(storage, tables.trades) == 1
    stored = storage.get_order("x")
    assert stored is not None and stored["status"] == "cancelled" and stored["filled_quantity"] == 1


def test_batches_and_market_configs(storage: StorageManager) -> None:
    storage.save_market("ETH/USD", tick_size="0.01", lot_size="0.001", maker_fee_rate="0.001")
    orders = [
        {
            "order_id": f"o{i}",
            "symbol": "ETH/USD",
            "side": "sell",
            "price": 100 + i,
            "quantity": 1,
            "timestamp": i,
        }
        for i in range(5)
    ]
    assert storage.batch_save_orders(orders) == 5
    assert storage.batch_save_trades([{"trade_id": "t", "symbol": "ETH/USD", "price": 1, "quantity": 1}]) == 1
    configs = storage.get_market_configs()
    assert configs["ETH/USD"]["tick_size"] == Decimal("0.01")
    assert [o["order_id"] for o in storage.get_active_orders("ETH/USD")] == [f"o{i}" for i in range(5)]
    assert storage.check_connection() is True
    assert storage.get_pending_write_count() == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"symbol": "S", "side": "buy", "price": "1", "quantity": "1"},  # no id
        {"order_id": "a", "symbol": "S", "side": "up", "price": "1", "quantity": "1"},
        {"order_id": "a", "symbol": "S", "side": "buy", "price": "nan", "quantity": "1"},
        {"order_id": "a", "symbol": "S", "side": "buy", "price": "1"},
    ],
)
def test_bad_orders_are_rejected_and_nothing_is_written(storage: StorageManager, bad: dict[str, Any]) -> None:
    good = {"order_id": "g", "symbol": "S", "side": "buy", "price": "1", "quantity": "1", "timestamp": 1.0}
    with pytest.raises(StorageError):
        storage.batch_save_orders([good, bad])
    assert _count(storage, tables.orders) == 0


def test_unknown_orders_answer_false(storage: StorageManager) -> None:
    assert storage.update_order_fill("nope", 1) is False
    assert storage.mark_order_cancelled("nope") is False
    assert storage.update_order("nope", {"price": 1}) is False
    assert storage.get_order("nope") is None
    storage.save_order({"order_id": "q", "symbol": "S", "side": "buy", "price": 1, "quantity": 1})
    with pytest.raises(StorageError):
        storage.update_order_fill("q", 5)


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        StorageManager("oracle://x@y/z")


def test_book_and_storage_reads_agree_on_quantity(storage: StorageManager) -> None:
    """``quantity`` is the open quantity in the book's and storage's reads, ``original_quantity`` the
    total; the guide's restore loop built on ``get_active_orders`` gives back the open quantities."""
    book = OrderBook(symbol="BTC/USD", number_format="decimal", tick_size="0.01", lot_size="0.001")
    storage.attach(book, mode="sync")
    book.add_order(side="buy", price="9000", quantity="1", user_id="alice", order_id="b1")
    book.add_order(side="buy", price="8990", quantity="2", user_id="alice", order_id="b2")
    book.add_order(side="sell", price="9000", quantity="0.4", user_id="bob", order_id="s1")  # fills b1
    book.modify_order("b2", new_quantity="1.5")
    keys = ("order_id", "quantity", "original_quantity", "filled_quantity", "remaining_quantity", "status")
    live = [tuple(order[key] for key in keys) for order in book.get_orders()]
    assert live[0] == ("b1", Decimal("0.6"), Decimal("1"), Decimal("0.4"), Decimal("0.6"), "partially_filled")
    for read in (storage.get_active_orders("BTC/USD"), [storage.get_order("b1"), storage.get_order("b2")]):
        assert [tuple(order[key] for key in keys) for order in read] == live  # type: ignore[index]
    stored = {o["order_id"]: o for o in storage.get_orders(symbol="BTC/USD")}
    assert stored["s1"]["quantity"] == 0 and stored["s1"]["original_quantity"] == Decimal("0.4")
    assert [tuple(stored[oid][key] for key in keys) for oid in ("b1", "b2")] == live

    # The guide's restore pattern, verbatim in behaviour, into a fresh book
    restarted = OrderBook(symbol="BTC/USD", number_format="decimal", tick_size="0.01", lot_size="0.001")
    for order in sorted(storage.get_active_orders(symbol="BTC/USD"), key=lambda x: x["timestamp"]):
        restarted.add_order(
            order_id=order["order_id"],
            side=order["side"],
            price=order["price"],
            quantity=order["quantity"],
            time_in_force=order["time_in_force"],
            expiry_time=order["expiry_time"],
            user_id=order["user_id"],
            order_type=order["order_type"],
        )
    assert restarted.get_snapshot()["bids"] == book.get_snapshot()["bids"]
    assert [o["quantity"] for o in restarted.get_orders()] == [Decimal("0.6"), Decimal("1.5")]


def test_a_read_order_saved_back_keeps_its_total(storage: StorageManager) -> None:
    """``save_order`` / ``update_order`` take a read's shape too: ``original_quantity`` is the total."""
    book = OrderBook(symbol="S", number_format="str", tick_size="0.01", lot_size="0.001")
    book.add_order(side="buy", price="10", quantity="1", user_id="u", order_id="b")
    book.add_order(side="sell", price="10", quantity="0.25", user_id="v", order_id="s")
    read = book.get_order("b")
    assert read is not None
    storage.save_order(read)
    stored = storage.get_order("b")
    assert stored is not None
    assert (stored["quantity"], stored["original_quantity"], stored["filled_quantity"]) == (
        Decimal("0.75"),
        Decimal("1"),
        Decimal("0.25"),
    )
    assert storage.update_order("b", stored) is True
    again = storage.get_order("b")
    assert again is not None and (again["quantity"], again["original_quantity"]) == (
        Decimal("0.75"),
        Decimal("1"),
    )


@pytest.mark.parametrize(
    ("connection_string", "says"),
    [
        ("file.db", "not a database URL"),
        ("", "not a database URL"),
        ("sqlite:/x.db", "not a database URL"),
        ("foo://x", "unsupported database 'foo'"),
        ("postgresql+psycopg2://u@127.0.0.1/d", "unsupported driver"),
        ("mysql://u@127.0.0.1/d", "use mysql+pymysql://"),
        (None, "must be a string, not NoneType"),
        (5, "must be a string, not int"),
        (b"sqlite:///x.db", "must be a string, not bytes"),
        ("sqlite:///\0", "cannot open the database"),
    ],
)
def test_malformed_connection_strings_name_the_expected_forms(connection_string: Any, says: str) -> None:
    with pytest.raises(StorageError) as refused:
        StorageManager(connection_string)
    message = str(refused.value)
    assert says in message
    for form in ("sqlite:///", "postgresql+psycopg://", "mysql+pymysql://"):
        assert form in message or says == "cannot open the database", message


def test_an_unreachable_database_is_a_storage_error_without_the_password(tmp_path: Any) -> None:
    with pytest.raises(StorageError, match="cannot open the database") as refused:
        StorageManager(f"sqlite:///{tmp_path}/missing-directory/x.db")
    assert isinstance(refused.value.__cause__, Exception)  # the driver's error stays chained
    with pytest.raises(StorageError) as hidden:
        StorageManager("postgresql+psycopg://user:secret-word@127.0.0.1:1/db?connect_timeout=2")
    assert "secret-word" not in str(hidden.value) and "***" in str(hidden.value)
