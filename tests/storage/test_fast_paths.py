"""The trusted restore path and the writer's deferral to a busy producer."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import text

from manticore_orderbook import EventManager, InvalidOrderError, OrderBook
from manticore_storage import StorageError, StorageManager
from manticore_storage.restore import UnitCache


def _book(symbol: str = "BTC/USD") -> OrderBook:
    return OrderBook(
        symbol, event_manager=EventManager(), tick_size="0.01", lot_size="0.0001", clock=lambda: 1000.0
    )


def test_unit_cache_is_exact_and_rejects_values_off_the_grid() -> None:
    lots = UnitCache(Decimal("0.0001"), "quantity")
    assert lots["1.5000"] == 15000
    assert lots["1.5"] == 15000
    assert lots["0"] == 0
    assert lots[Decimal("0.00020")] == 2
    assert lots["2E-4"] == 2
    assert lots[None] is None
    with pytest.raises(InvalidOrderError):
        lots["0.00005"]
    with pytest.raises(InvalidOrderError):
        lots["NaN"]
    ticks = UnitCache(Decimal("0.5"), "price")
    assert ticks["1.5"] == 3
    with pytest.raises(InvalidOrderError):
        ticks["1.25"]


def test_restore_keeps_integer_user_ids_and_numbers_unprioritised_rows_last(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        book = _book()
        storage.attach(book)
        book.add_order("buy", "100.00", "1", order_id="a", user_id=42)
        book.add_order("buy", "100.00", "2", order_id="b", user_id="bob")
        storage.flush()
        storage.save_market("BTC/USD", "0.01", "0.0001")
        storage.save_order(
            {
                "symbol": "BTC/USD",
                "order_id": "g",
                "side": "buy",
                "price": "100",
                "quantity": "3",
                "timestamp": 5.0,
            }
        )
        twin = _book()
        assert storage.restore(twin) == 3
        assert twin.get_order("a")["user_id"] == 42
        assert twin.get_order("b")["user_id"] == "bob"
        assert [o["order_id"] for o in twin.export_state()["orders"]] == ["a", "b", "g"]
        assert twin.get_order("g")["priority"] > twin.get_order("b")["priority"]
    finally:
        storage.close()


def test_restore_refuses_inconsistent_rows_and_leaves_the_book_empty(storage_url: str) -> None:
    storage = StorageManager(storage_url)
    try:
        book = _book()
        storage.attach(book)
        book.add_order("buy", "100.00", "1", order_id="a")
        book.add_order("sell", "101.00", "1", order_id="b")
        storage.flush()
        with storage.engine.begin() as connection:
            connection.execute(text("UPDATE manticore_orders SET price = '102.00' WHERE order_id = 'a'"))
        twin = _book()
        with pytest.raises(StorageError, match="crossed"):
            storage.restore(twin)
        assert len(twin) == 0 and twin.get_snapshot()["bids"] == []
        with storage.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE manticore_orders SET price = '100.00', remaining_quantity = '0.5' "
                    "WHERE order_id = 'a'"
                )
            )
        with pytest.raises(StorageError, match="quantities"):
            storage.restore(twin)
        assert len(twin) == 0
    finally:
        storage.close()


def test_writer_holds_off_for_a_busy_book_and_writes_within_max_delay(tmp_path: object) -> None:
    storage = StorageManager(f"sqlite:///{tmp_path}/busy.db")
    try:
        book = _book()
        storage.attach(book)
        deadline = time.monotonic() + 0.3
        n = 0
        while time.monotonic() < deadline:  # a busy producer: units arrive far faster than one per ms
            book.add_order("buy", "100.00", "0.0001", order_id=f"o{n}")
            n += 1
        waited = time.monotonic()
        while storage.get_pending_write_count() and time.monotonic() - waited < 5.0:
            time.sleep(0.01)
        assert storage.get_pending_write_count() == 0  # written without a flush
        assert storage.reconcile(book).ok
    finally:
        storage.close()


def test_a_triggered_trailing_stop_restores_with_its_stop_price(storage_url: str) -> None:
    """Regression: both restore paths dropped the stop price of a trailing stop that had triggered."""
    book = _book()
    with StorageManager(storage_url) as storage:
        storage.attach(book, mode="sync")
        book.add_order("sell", "100", "1", order_id="m1", user_id="a")
        book.add_order("buy", "100", "1", order_id="t1", user_id="b")
        book.add_order(
            "buy", "99", "1", order_id="trail", user_id="c", order_type="trailing_stop", trail_value="1"
        )
        book.add_order("sell", "101", "1", order_id="m2", user_id="a")
        book.add_order("buy", "101", "1", order_id="t2", user_id="b")
        assert book.get_order("trail")["triggered"]  # type: ignore[index]
        twin = _book()
        storage.restore(twin)
    assert twin.export_state() == book.export_state()
